"""``fhirledger import`` on ndjson, gzip and Bundle files: what a user sees afterwards through the
API (read, search, history, audit), the problems it reports, and a second run that resumes."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import httpx
import orjson
from rich.console import Console

from app.cli import main
from app.cli_import import run_import
from tests.helpers import new_id


def _patient(pid: str, family: str = "Importson") -> dict:
    return {"resourceType": "Patient", "id": pid, "name": [{"family": family}], "gender": "female"}


def _observation(oid: str, pid: str) -> dict:
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8302-2"}]},
        "subject": {"reference": f"Patient/{pid}"},
        "valueQuantity": {"value": 170, "unit": "cm", "system": "http://unitsofmeasure.org", "code": "cm"},
    }


def _ndjson(resources: list) -> bytes:
    return b"".join(orjson.dumps(r) + b"\n" for r in resources)


async def _import(dsn: str, *paths: Path, batch: int = 2000):
    out = io.StringIO()
    summary = await run_import(dsn, [str(p) for p in paths], Console(file=out, width=300), batch=batch, workers=1)
    return summary, out.getvalue()


async def test_ndjson_and_gzip_import_keeps_ids_and_is_searchable(
    tmp_path: Path, database_dsn: str, client: httpx.AsyncClient
) -> None:
    family = new_id("fam").replace("-", "").translate(str.maketrans("0123456789", "ghijklmnop"))  # one word
    p1, p2 = new_id(), new_id()
    (tmp_path / "Patient.ndjson").write_bytes(_ndjson([_patient(p1, family), _patient(p2, family)]))
    (tmp_path / "Observation.ndjson.gz").write_bytes(gzip.compress(_ndjson([_observation(new_id(), p1)])))
    summary, _ = await _import(database_dsn, tmp_path)
    assert (summary.imported, summary.rejected, summary.conflicts) == (3, 0, 0)
    r = await client.get(f"/fhir/Patient/{p1}")
    assert r.status_code == 200 and r.json()["meta"]["versionId"] == "1"
    assert r.headers["ETag"] == 'W/"1"'
    found = (await client.get(f"/fhir/Patient?family={family}")).json()
    assert sorted(e["resource"]["id"] for e in found["entry"]) == sorted([p1, p2])
    texts = (await client.get(f"/fhir/Patient?_content={family}")).json()  # the full-text rows and documents
    assert sorted(e["resource"]["id"] for e in texts.get("entry", [])) == sorted([p1, p2])
    obs = (await client.get(f"/fhir/Observation?subject=Patient/{p1}&code=http://loinc.org|8302-2")).json()
    assert obs["total"] == 1
    history = (await client.get(f"/fhir/Patient/{p1}/_history")).json()
    assert [e["resource"]["meta"]["versionId"] for e in history["entry"]] == ["1"]
    assert history["entry"][0]["request"] == {"method": "PUT", "url": f"Patient/{p1}"}
    audit = (await client.get("/fhir/Patient/_history?client=fhirledger-import&_count=1000")).json()
    assert p1 in {e["resource"]["id"] for e in audit["entry"]}


async def test_bad_line_reported_with_file_and_line_rest_loaded(
    tmp_path: Path, database_dsn: str, client: httpx.AsyncClient
) -> None:
    good1, good2 = new_id(), new_id()
    lines = [
        orjson.dumps(_patient(good1)),
        b'{"resourceType": "Patient", "id": "bad-gender", "gender": "sometimes"}',
        b"{not json",
        orjson.dumps(_patient(good2)),
    ]
    path = tmp_path / "mixed.ndjson"
    path.write_bytes(b"\n".join(lines) + b"\n")
    summary, output = await _import(database_dsn, path)
    assert (summary.imported, summary.rejected) == (2, 2)
    assert f"{path}:2:" in output and "gender" in output
    assert f"{path}:3:" in output and "not JSON" in output
    assert (await client.get(f"/fhir/Patient/{good2}")).status_code == 200
    assert (await client.get("/fhir/Patient/bad-gender")).status_code == 404


async def test_bundle_urn_uuid_references_resolved(
    tmp_path: Path, database_dsn: str, client: httpx.AsyncClient
) -> None:
    pid, oid = new_id("u"), new_id("u")
    patient = {"resourceType": "Patient", "name": [{"family": "Urnson"}]}
    obs = _observation(oid, "x")
    del obs["id"]
    obs["subject"] = {"reference": f"urn:uuid:{pid}"}
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"fullUrl": f"urn:uuid:{pid}", "resource": patient, "request": {"method": "POST", "url": "Patient"}},
            {"fullUrl": f"urn:uuid:{oid}", "resource": obs, "request": {"method": "POST", "url": "Observation"}},
        ],
    }
    path = tmp_path / "bundle.json.gz"
    path.write_bytes(gzip.compress(orjson.dumps(bundle)))
    summary, _ = await _import(database_dsn, path)
    assert summary.imported == 2
    stored = (await client.get(f"/fhir/Observation/{oid}")).json()
    assert stored["subject"] == {"reference": f"Patient/{pid}"}
    assert (await client.get(f"/fhir/Observation?subject=Patient/{pid}")).json()["total"] == 1


async def test_rerun_skips_what_is_there_and_reports_changed_content(
    tmp_path: Path, database_dsn: str, client: httpx.AsyncClient, log_count
) -> None:
    ids = [new_id() for _ in range(7)]
    path = tmp_path / "p.ndjson"
    path.write_bytes(_ndjson([_patient(i) for i in ids]))
    first, _ = await _import(database_dsn, path, batch=3)
    assert first.imported == 7
    before = await log_count()
    again, _ = await _import(database_dsn, path, batch=3)
    assert (again.imported, again.skipped, again.conflicts) == (0, 7, 0)
    assert await log_count() == before
    changed = tmp_path / "changed.ndjson"
    changed.write_bytes(_ndjson([_patient(ids[0], "Other"), _patient(new_id())]))
    third, output = await _import(database_dsn, changed)
    assert (third.imported, third.conflicts) == (1, 1)
    assert f"Patient/{ids[0]} is stored with other content" in output
    assert (await client.get(f"/fhir/Patient/{ids[0]}")).json()["name"][0]["family"] == "Importson"


def test_missing_path_is_a_usage_error(capsys) -> None:
    assert main(["import", "/nonexistent/file.ndjson", "--database-url", "postgresql://x@/y"]) == 2
    assert "no such file or directory" in capsys.readouterr().err


SYNTHEA = Path(__file__).resolve().parents[1] / "data" / "synthea"  # two real patients, in the repo


async def test_synthea_bundles_load_whole(tmp_path: Path, database_dsn: str, client: httpx.AsyncClient) -> None:
    """Two real Synthea transaction Bundles (gzip): every entry imported, their urn:uuid links
    resolved to the ids the files give, the patient's compartment searchable."""
    bundles = sorted(SYNTHEA.glob("*.json.gz"))
    assert len(bundles) == 2
    entries = [orjson.loads(gzip.decompress(b.read_bytes()))["entry"] for b in bundles]
    for b in bundles:
        (tmp_path / b.name).write_bytes(b.read_bytes())
    summary, output = await _import(database_dsn, tmp_path)
    assert summary.rejected == 0 and summary.conflicts == 0, output
    assert summary.imported + summary.skipped == sum(len(e) for e in entries)
    patient = next(e["resource"]["id"] for e in entries[0] if e["resource"]["resourceType"] == "Patient")
    observations = [e["resource"] for e in entries[0] if e["resource"]["resourceType"] == "Observation"]
    found = (await client.get(f"/fhir/Observation?subject=Patient/{patient}&_summary=count")).json()
    assert found["total"] == len(observations)
    stored = (await client.get(f"/fhir/Observation/{observations[0]['id']}")).json()
    assert stored["subject"] == {"reference": f"Patient/{patient}"}


async def test_repeated_ids_in_one_import(tmp_path: Path, database_dsn: str, client: httpx.AsyncClient) -> None:
    pid, other = new_id(), new_id()
    path = tmp_path / "dups.ndjson"
    path.write_bytes(_ndjson([_patient(pid), _patient(other), _patient(pid), _patient(pid, "Changed")]))
    summary, output = await _import(database_dsn, path)
    assert (summary.imported, summary.skipped, summary.conflicts) == (2, 1, 1)
    assert f"{path}:4:" in output and "appears earlier in this import with other content" in output
    assert (await client.get(f"/fhir/Patient/{pid}")).json()["name"][0]["family"] == "Importson"


def test_command_line_with_worker_processes(tmp_path: Path, database_dsn: str, capsys) -> None:
    """``fhirledger import`` as typed: worker processes prepare the resources, every problem is
    printed as file:line, and the exit status says some were not imported."""
    ids = [new_id() for _ in range(40)]
    path = tmp_path / "cli.ndjson.gz"
    lines = [orjson.dumps(_patient(i)) for i in ids] + [b'{"resourceType": "Patient", "id": "no good"}']
    path.write_bytes(gzip.compress(b"\n".join(lines)))
    assert main(["import", str(path), "--database-url", database_dsn, "--batch", "16", "--workers", "2"]) == 1
    out = capsys.readouterr().out
    assert f"{path}:41:" in out and "imported 40 resources" in out and "1 rejected" in out
    assert main(["import", str(tmp_path), "--database-url", database_dsn, "--workers", "2"]) == 1
    assert "40 already there" in capsys.readouterr().out


async def test_meta_kept_or_refused(tmp_path: Path, database_dsn: str, client: httpx.AsyncClient) -> None:
    """meta.versionId (digits) and meta.lastUpdated are kept; an opaque versionId gives version 1;
    a lastUpdated in the future is refused (the event would be recorded after every later write)."""
    kept, opaque, future = new_id(), new_id(), new_id()
    meta = {"versionId": "4", "lastUpdated": "2020-02-03T04:05:06.789Z"}
    resources = [
        {**_patient(kept), "meta": meta},
        {**_patient(opaque), "meta": {"versionId": "abc-x"}},
        {**_patient(future), "meta": {"versionId": "1", "lastUpdated": "2999-01-01T00:00:00.000Z"}},
    ]
    path = tmp_path / "meta.ndjson"
    path.write_bytes(_ndjson(resources))
    summary, output = await _import(database_dsn, path)
    assert (summary.imported, summary.rejected) == (2, 1)
    assert f"{path}:3:" in output and "in the future" in output
    r = await client.get(f"/fhir/Patient/{kept}")
    assert r.json()["meta"] == meta and r.headers["ETag"] == 'W/"4"'
    assert (await client.get(f"/fhir/Patient/{kept}/_history/4")).status_code == 200
    assert (await client.get(f"/fhir/Patient/{opaque}")).json()["meta"]["versionId"] == "1"
    updated = await client.put(f"/fhir/Patient/{kept}", json=_patient(kept, "Later"))
    assert updated.headers["ETag"] == 'W/"5"'
    history = (await client.get(f"/fhir/Patient/{kept}/_history")).json()
    # the history starts at the imported version: its total counts the versions held, not the newest
    assert history["total"] == 2 and [e["resource"]["meta"]["versionId"] for e in history["entry"]] == ["5", "4"]
