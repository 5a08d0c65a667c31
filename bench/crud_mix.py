"""The CRUD mix of bench/crud.py: create 10%, read 60%, update 25%, delete 5% over Patient,
Observation, Condition, Encounter and MedicationRequest, each client on its own keep-alive
connection; every answer's status is checked (a delete of a resource another client deleted
first is still a 200, deletes being idempotent)."""

from __future__ import annotations

import random

import orjson

from bench.common import Result, run_load
from bench.rawhttp import RawConnection

SUBJECT = {"reference": "Patient/bench-subject"}
RESOURCES: dict[str, dict] = {
    "Patient": {
        "resourceType": "Patient",
        "identifier": [{"system": "http://hospital.example/mrn", "value": "12345"}],
        "name": [{"family": "Chalmers", "given": ["Peter"]}],
        "gender": "male",
        "birthDate": "1974-12-25",
    },
    "Observation": {
        "resourceType": "Observation",
        "status": "final",
        "category": [
            {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}
                ]
            }
        ],
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}]},
        "subject": SUBJECT,
        "effectiveDateTime": "2020-01-01T10:00:00Z",
        "valueQuantity": {"value": 72, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"},
    },
    "Condition": {
        "resourceType": "Condition",
        "clinicalStatus": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]
        },
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "44054006", "display": "Diabetes"}]},
        "subject": SUBJECT,
        "onsetDateTime": "2019-01-01",
    },
    "Encounter": {
        "resourceType": "Encounter",
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "subject": SUBJECT,
        "period": {"start": "2020-01-01T10:00:00Z", "end": "2020-01-01T11:00:00Z"},
    },
    "MedicationRequest": {
        "resourceType": "MedicationRequest",
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": {
            "coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "834061"}]
        },
        "subject": SUBJECT,
        "authoredOn": "2020-01-01",
    },
}
WEIGHTS = (("create", 10), ("read", 60), ("update", 25), ("delete", 5))
HEADERS = {"Content-Type": "application/fhir+json"}


async def mix_phase(base: str, concurrency: int, ops: int, seed_per_type: int = 100) -> Result:
    rng = random.Random(12)
    idle = [RawConnection(base) for _ in range(concurrency)]
    live: dict[str, list[str]] = {t: [] for t in RESOURCES}
    kinds = [k for k, w in WEIGHTS for _ in range(w)]

    async def call(method: str, path: str, body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
        conn = idle.pop()
        try:
            return await conn.request(method, path, body, HEADERS if body else None)
        finally:
            idle.append(conn)

    async def create(t: str) -> None:
        status, head, data = await call("POST", f"/{t}", orjson.dumps(RESOURCES[t]))
        assert status == 201, data[:300]
        live[t].append(head["location"].split("/")[-3])

    async def op(_: int) -> None:
        t = rng.choice(list(RESOURCES))
        kind = rng.choice(kinds)
        if kind == "create" or len(live[t]) < 10:
            await create(t)
            return
        rid = rng.choice(live[t])
        if kind == "read":
            status, _, data = await call("GET", f"/{t}/{rid}")
            assert status in (200, 410), data[:300]  # 410: deleted by another client meanwhile
        elif kind == "update":
            status, _, data = await call("PUT", f"/{t}/{rid}", orjson.dumps({**RESOURCES[t], "id": rid}))
            assert status in (200, 201), data[:300]
        else:
            if rid in live[t]:
                live[t].remove(rid)
            status, _, data = await call("DELETE", f"/{t}/{rid}")
            assert status in (200, 204), data[:300]

    try:
        for t in RESOURCES:
            for _ in range(seed_per_type):
                await create(t)
        return await run_load("http CRUD mix", concurrency, ops, op)
    finally:
        for conn in idle:
            await conn.close()
