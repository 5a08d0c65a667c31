"""The scale benchmark's copies of a Synthea Bundle: every UUID rewritten, consistently within a
copy and differently between copies, whether the UUIDs' offsets are found anew or remembered."""

from __future__ import annotations

import uuid

import orjson

from bench.scale_build import NAMESPACE, copy_bytes, layout

PATIENT = "3f2c6a1e-0b4d-4e55-9a7e-2f1d3c4b5a69"
ENCOUNTER = "8e1b2c3d-4f5a-4b6c-8d7e-9f0a1b2c3d4e"
BUNDLE = orjson.dumps(
    {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"fullUrl": f"urn:uuid:{PATIENT}", "resource": {"resourceType": "Patient", "id": PATIENT}},
            {
                "fullUrl": f"urn:uuid:{ENCOUNTER}",
                "resource": {
                    "resourceType": "Encounter",
                    "id": ENCOUNTER,
                    "subject": {"reference": f"urn:uuid:{PATIENT}"},
                    "identifier": [{"value": ENCOUNTER.upper()}],  # not a lower-case UUID: kept
                },
            },
        ],
    }
)


def test_copy_zero_is_the_file_itself() -> None:
    assert copy_bytes(BUNDLE, 0) is BUNDLE


def test_a_copy_rewrites_each_uuid_to_the_same_new_one() -> None:
    copy = orjson.loads(copy_bytes(BUNDLE, 2))
    patient, encounter = (e["resource"] for e in copy["entry"])
    new_patient = str(uuid.uuid5(NAMESPACE, f"2:{PATIENT}"))
    assert patient["id"] == new_patient
    assert copy["entry"][0]["fullUrl"] == f"urn:uuid:{new_patient}"
    assert encounter["subject"]["reference"] == f"urn:uuid:{new_patient}"
    assert encounter["id"] == str(uuid.uuid5(NAMESPACE, f"2:{ENCOUNTER}"))
    assert encounter["identifier"][0]["value"] == ENCOUNTER.upper()
    assert PATIENT.encode() not in copy_bytes(BUNDLE, 2)


def test_copies_differ_and_remembered_offsets_give_the_same_bytes() -> None:
    known = layout("test-bundle.json.gz", BUNDLE)
    assert known.entries == 2
    assert len(known.starts) == 5
    assert copy_bytes(BUNDLE, 3, known.starts) == copy_bytes(BUNDLE, 3)
    assert copy_bytes(BUNDLE, 3) != copy_bytes(BUNDLE, 4)
