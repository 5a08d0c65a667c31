"""The files of a bulk export: parts of at most a given number of lines, names the file route accepts."""

from __future__ import annotations

from pathlib import Path

from app.jobs.export import group_members
from app.jobs.export_files import TypeWriter, file_path, remove_type_files


def test_a_type_is_split_into_parts(tmp_path: Path) -> None:
    writer = TypeWriter(tmp_path, "Patient", limit=2)
    for n in range(5):
        writer.write(b'{"resourceType":"Patient","id":"%d"}' % n)
    writer.close()
    assert writer.files == [("Patient-1.ndjson", 2), ("Patient-2.ndjson", 2), ("Patient-3.ndjson", 1)]
    assert (tmp_path / "Patient-3.ndjson").read_bytes() == b'{"resourceType":"Patient","id":"4"}\n'
    remove_type_files(tmp_path, "Patient")
    assert list(tmp_path.iterdir()) == []


def test_only_the_names_written_are_served(tmp_path: Path) -> None:
    assert file_path(str(tmp_path), "Observation-12.ndjson") == tmp_path / "Observation-12.ndjson"
    assert file_path(str(tmp_path), "errors.ndjson") == tmp_path / "errors.ndjson"
    for name in ("../x.ndjson", "Observation-1.ndjson/..", ".hidden", "Patient-1.json"):
        assert file_path(str(tmp_path), name) is None


def test_group_members_are_its_active_patients() -> None:
    group = {
        "member": [
            {"entity": {"reference": "Patient/a"}},
            {"entity": {"reference": "http://example.org/fhir/Patient/b"}},
            {"entity": {"reference": "Patient/c/_history/2"}},
            {"entity": {"reference": "Patient/d"}, "inactive": True},
            {"entity": {"reference": "Group/g"}},
        ]
    }
    members, notes = group_members(group)
    assert members == {"a", "b", "c"}
    assert len(notes) == 1 and "Group/g" in notes[0].diagnostics


def test_lines_written_together_are_split_the_same_way(tmp_path: Path) -> None:
    writer = TypeWriter(tmp_path, "Goal", limit=2)
    writer.write_all([b"1", b"2", b"3"])
    writer.write_all([b"4", b"5"])
    writer.close()
    assert writer.files == [("Goal-1.ndjson", 2), ("Goal-2.ndjson", 2), ("Goal-3.ndjson", 1)]
    assert (tmp_path / "Goal-2.ndjson").read_bytes() == b"3\n4\n"
