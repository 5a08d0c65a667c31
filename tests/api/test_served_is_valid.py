"""Everything the server serves parses as valid R4: Bundles of every kind and OperationOutcomes
pass the same validator that guards writes."""

from __future__ import annotations

import uuid

import httpx

from app.validation import validate_resource
from tests.helpers import new_id, patient


def _errors(body: dict) -> list:
    return [(i.expression, i.diagnostics) for i in validate_resource(body) if i.severity == "error"]


async def test_bundles_and_outcomes_are_valid_r4(client: httpx.AsyncClient) -> None:
    pid = new_id()
    await client.put(f"/fhir/Patient/{pid}", json=patient(pid, gender="male"))
    await client.put(f"/fhir/Patient/{pid}", json=patient(pid, gender="female"))
    await client.post(
        "/fhir/Observation",
        json={
            "resourceType": "Observation",
            "status": "final",
            "code": {"text": "v"},
            "subject": {"reference": f"Patient/{pid}"},
        },
    )
    gone = new_id()
    await client.put(f"/fhir/Patient/{gone}", json=patient(gone))
    await client.delete(f"/fhir/Patient/{gone}")
    urn = f"urn:uuid:{uuid.uuid4()}"
    tx = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"fullUrl": urn, "resource": patient(), "request": {"method": "POST", "url": "Patient"}},
            {"request": {"method": "GET", "url": f"Patient/{pid}"}},
            {"request": {"method": "GET", "url": "Patient?gender=female&_count=2"}},
        ],
    }
    batch = {**tx, "type": "batch", "entry": [*tx["entry"][1:], {"request": {"method": "GET", "url": "Patient/nope"}}]}
    served = {
        "history instance": await client.get(f"/fhir/Patient/{gone}/_history"),
        "history type": await client.get("/fhir/Patient/_history?_count=5"),
        "history system": await client.get("/fhir/_history?_count=5"),
        "search": await client.get(f"/fhir/Observation?subject=Patient/{pid}&_include=Observation:subject&bogus=1"),
        "search summary": await client.get("/fhir/Patient?_summary=true&_count=3"),
        "search count": await client.get("/fhir/Patient?_summary=count"),
        "system search": await client.get("/fhir?_type=Patient&_count=2"),
        "transaction": await client.post("/fhir", json=tx, headers={"Prefer": "return=representation"}),
        "batch": await client.post("/fhir", json=batch),
        "change feed": await client.get("/fhir/_events?_count=5"),
        "outcome 404": await client.get("/fhir/Patient/nope-nope"),
        "outcome 422": await client.post("/fhir/Patient", json={"resourceType": "Patient", "gender": "x"}),
        "outcome delete": await client.delete(f"/fhir/Patient/{new_id()}"),
        "validate": await client.post("/fhir/Patient/$validate", json=patient()),
    }
    for name, response in served.items():
        body = response.json()
        assert _errors(body) == [], (name, body)
