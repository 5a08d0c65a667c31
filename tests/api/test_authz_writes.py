"""Writes under confining scopes (patient compartment, v2 scope queries), transactions (all or
nothing) and batches (403 per entry), with real tokens."""

from __future__ import annotations

import asyncpg
import httpx

from tests.api.authz_helpers import assert_refused, bearer_for, seed
from tests.helpers import new_id, patient


def observation(pid: str, oid: str | None = None, category: str = "laboratory") -> dict:
    body: dict = {
        "resourceType": "Observation",
        "status": "final",
        "category": [
            {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": category}]}
        ],
        "code": {"text": "glucose"},
        "subject": {"reference": f"Patient/{pid}"},
    }
    if oid:
        body["id"] = oid
    return body


async def _two_patients(pool: asyncpg.Pool, client: httpx.AsyncClient) -> tuple[str, str]:
    mine, other = new_id("me"), new_id("other")
    await seed(pool, client, patient(mine))
    await seed(pool, client, patient(other))
    return mine, other


async def test_patient_scope_writes_in_compartment_only(auth_client: httpx.AsyncClient, pool, log_count) -> None:
    mine, other = await _two_patients(pool, auth_client)
    token = bearer_for("patient/Observation.cruds patient/Patient.rus", patient=mine)
    r = await auth_client.post("/fhir/Observation", json=observation(mine), headers=token)
    assert r.status_code == 201, r.text
    oid = r.json()["id"]
    before = await log_count()
    r = await auth_client.post("/fhir/Observation", json=observation(other), headers=token)
    assert_refused(r, 403, "forbidden", f"compartment of Patient/{mine}", "as it would be written")
    # moving my observation to another patient, and touching another patient's data: refused
    r = await auth_client.put(f"/fhir/Observation/{oid}", json=observation(other, oid), headers=token)
    assert_refused(r, 403, "forbidden", "as it would be written")
    theirs = await seed(pool, auth_client, observation(other))
    r = await auth_client.put(f"/fhir/Observation/{theirs['id']}", json=observation(mine, theirs["id"]), headers=token)
    assert_refused(r, 403, "forbidden", "as stored now")
    r = await auth_client.delete(f"/fhir/Observation/{theirs['id']}", headers=token)
    assert_refused(r, 403, "forbidden", "as stored now")
    patch = [{"op": "replace", "path": "/status", "value": "amended"}]
    r = await auth_client.patch(
        f"/fhir/Observation/{theirs['id']}",
        json=patch,
        headers={**token, "Content-Type": "application/json-patch+json"},
    )
    assert_refused(r, 403, "forbidden", "as stored now")
    assert await log_count() == before + 1  # only the seeded observation of the other patient
    r = await auth_client.put(f"/fhir/Observation/{oid}", json=observation(mine, oid, "vital-signs"), headers=token)
    assert r.status_code == 200, r.text
    assert (await auth_client.delete(f"/fhir/Observation/{oid}", headers=token)).status_code == 200


async def test_patient_scope_patient_resources(auth_client: httpx.AsyncClient, pool, log_count) -> None:
    mine, other = await _two_patients(pool, auth_client)
    token = bearer_for("patient/Patient.cruds", patient=mine)
    before = await log_count()
    linked = patient(link=[{"other": {"reference": f"Patient/{mine}"}, "type": "seealso"}])
    r = await auth_client.post("/fhir/Patient", json=linked, headers=token)
    assert_refused(r, 403, "forbidden", f"compartment of Patient/{mine}")
    r = await auth_client.put(f"/fhir/Patient/{other}", json=patient(other, family="X"), headers=token)
    assert_refused(r, 403, "forbidden")
    assert await log_count() == before
    r = await auth_client.put(f"/fhir/Patient/{mine}", json=patient(mine, family="Mine"), headers=token)
    assert r.status_code == 200, r.text


async def test_patient_scope_cannot_write_outside_compartment_types(auth_client: httpx.AsyncClient) -> None:
    token = bearer_for("patient/*.cruds", patient="p1")
    r = await auth_client.post("/fhir/Organization", json={"resourceType": "Organization", "name": "x"}, headers=token)
    assert_refused(r, 403, "forbidden", "outside the Patient compartment")


async def test_query_restricted_scope_on_writes(auth_client: httpx.AsyncClient, pool, log_count) -> None:
    pid = new_id("q")
    await seed(pool, auth_client, patient(pid))
    token = bearer_for("user/Observation.cu?category=laboratory")
    r = await auth_client.post("/fhir/Observation", json=observation(pid), headers=token)
    assert r.status_code == 201, r.text
    oid = r.json()["id"]
    before = await log_count()
    r = await auth_client.post("/fhir/Observation", json=observation(pid, category="vital-signs"), headers=token)
    assert_refused(r, 403, "forbidden", "matching category=laboratory")
    r = await auth_client.put(f"/fhir/Observation/{oid}", json=observation(pid, oid, "vital-signs"), headers=token)
    assert_refused(r, 403, "forbidden", "matching category=laboratory")
    assert await log_count() == before


def _bundle(kind: str, *entries: tuple[str, str, dict | None]) -> dict:
    out = []
    for method, url, resource in entries:
        entry: dict = {"request": {"method": method, "url": url}}
        if resource is not None:
            entry["resource"] = resource
        out.append(entry)
    return {"resourceType": "Bundle", "type": kind, "entry": out}


async def test_transaction_is_all_or_nothing(auth_client: httpx.AsyncClient, pool, log_count) -> None:
    pid = new_id("tx")
    bundle = _bundle(
        "transaction",
        ("PUT", f"Patient/{pid}", patient(pid)),
        ("POST", "Observation", observation(pid)),
    )
    before = await log_count()
    r = await auth_client.post("/fhir", json=bundle, headers=bearer_for("user/Patient.u user/Observation.r"))
    assert_refused(r, 403, "forbidden", "Bundle.entry[1] (POST Observation)", "user/Observation.c")
    assert await log_count() == before
    assert (await pool.fetchval("SELECT count(*) FROM event_log WHERE resource_id = $1", pid)) == 0
    r = await auth_client.post("/fhir", json=bundle, headers=bearer_for("user/Patient.u user/Observation.c"))
    assert r.status_code == 200, r.text
    assert await log_count() == before + 2


async def test_transaction_patient_scope_out_of_compartment_writes_nothing(
    auth_client: httpx.AsyncClient, pool, log_count
) -> None:
    mine, other = await _two_patients(pool, auth_client)
    entries = [("POST", "Observation", observation(mine)), ("POST", "Observation", observation(other))]
    bundle = _bundle("transaction", *entries)
    before = await log_count()
    r = await auth_client.post("/fhir", json=bundle, headers=bearer_for("patient/Observation.c", patient=mine))
    assert_refused(r, 403, "forbidden", f"compartment of Patient/{mine}")
    assert await log_count() == before


async def test_batch_answers_403_per_entry(auth_client: httpx.AsyncClient, pool, log_count) -> None:
    pid = new_id("b")
    await seed(pool, auth_client, patient(pid))
    bundle = _bundle(
        "batch",
        ("POST", "Observation", observation(pid)),
        ("POST", "Patient", patient()),
        ("GET", f"Patient/{pid}", None),
        ("DELETE", f"Patient/{pid}", None),
        ("GET", f"Observation?subject=Patient/{pid}", None),
    )
    before = await log_count()
    r = await auth_client.post("/fhir", json=bundle, headers=bearer_for("user/Observation.c user/Patient.r"))
    assert r.status_code == 200, r.text
    responses = [e["response"] for e in r.json()["entry"]]
    assert [x["status"].split()[0] for x in responses] == ["201", "403", "200", "403", "403"]
    refused = responses[1]["outcome"]["issue"][0]
    assert refused["code"] == "forbidden" and "user/Patient.c" in refused["diagnostics"]
    assert await log_count() == before + 1
