"""Custom SearchParameters: registered over HTTP, indexed from existing data by a background job,
searchable and listed once ready, dropped when retired; $reindex schedules a rebuild."""

from __future__ import annotations

import asyncpg
import httpx

from app.api import staleness
from app.jobs.runner import run_pending
from tests.helpers import new_id

MARITAL = "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus"


def _definition(code: str, status: str = "active") -> dict:
    return {
        "resourceType": "SearchParameter",
        "url": f"http://fhirledger.test/sp/{code}",
        "name": code,
        "status": status,
        "description": "Marital status of a patient",
        "code": code,
        "base": ["Patient"],
        "type": "token",
        "expression": "Patient.maritalStatus",
    }


async def test_custom_parameter_lifecycle(client: httpx.AsyncClient, app, pool: asyncpg.Pool) -> None:
    code = f"marital-{new_id()}".lower()
    married = {"resourceType": "Patient", "maritalStatus": {"coding": [{"system": MARITAL, "code": "M"}]}}
    before = (await client.post("/fhir/Patient", json=married)).json()["id"]
    r = await client.post("/fhir/SearchParameter", json=_definition(code))
    assert r.status_code == 201, r.text
    sp_id = r.json()["id"]
    await staleness.refresh(app, pool)
    building = await client.get(f"/fhir/Patient?{code}=M")
    assert building.status_code == 503
    assert "still being built" in building.json()["issue"][0]["diagnostics"]
    assert "building" in (await client.get(f"/fhir/SearchParameter/{sp_id}")).headers["x-fhirledger-index"]
    assert await run_pending(pool) >= 1
    await staleness.refresh(app, pool)
    assert (await client.get(f"/fhir/SearchParameter/{sp_id}")).headers["x-fhirledger-index"].startswith("ready")
    after = (await client.post("/fhir/Patient", json=married)).json()["id"]
    found = (await client.get(f"/fhir/Patient?{code}={MARITAL}|M&_count=1000")).json()
    ids = {e["resource"]["id"] for e in found.get("entry", [])}
    assert {before, after} <= ids, "indexed from existing data by the job, and inline for new writes"
    cs = (await client.get("/fhir/metadata")).json()
    patient = next(x for x in cs["rest"][0]["resource"] if x["type"] == "Patient")
    assert code in {p["name"] for p in patient["searchParam"]}
    retired = {**_definition(code, "retired"), "id": sp_id}
    assert (await client.put(f"/fhir/SearchParameter/{sp_id}", json=retired)).status_code == 200
    await run_pending(pool)
    await staleness.refresh(app, pool)
    gone = await client.get(f"/fhir/Patient?{code}=M", headers={"Prefer": "handling=strict"})
    assert gone.status_code == 400
    assert await pool.fetchval("SELECT count(*) FROM sp_patient_token WHERE param = $1", code) == 0


async def test_unindexable_definition_is_rejected_and_writes_nothing(client: httpx.AsyncClient, log_count) -> None:
    before = await log_count()
    clash = {**_definition("gender"), "url": "http://fhirledger.test/sp/gender-again"}
    r = await client.post("/fhir/SearchParameter", json=clash)
    assert r.status_code == 422 and "already R4's" in r.text
    bad = {**_definition(f"x{new_id()}".lower()), "expression": "Patient.name.where("}
    r = await client.post("/fhir/SearchParameter", json=bad)
    assert r.status_code == 422
    assert await log_count() == before


async def test_reindex_operation_schedules_a_rebuild(client: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    r = await client.post("/fhir/Basic/$reindex")
    assert r.status_code == 202
    job = int(r.headers["content-location"].split("/")[-1])
    await run_pending(pool)
    row = await pool.fetchrow("SELECT status, progress FROM jobs WHERE id = $1", job)
    assert row["status"] == "done"


async def test_redefining_the_code_moves_the_index(client: httpx.AsyncClient, app, pool: asyncpg.Pool) -> None:
    old, new = f"ms-{new_id()}".lower(), f"ms2-{new_id()}".lower()
    married = {"resourceType": "Patient", "maritalStatus": {"coding": [{"system": MARITAL, "code": "M"}]}}
    pid = (await client.post("/fhir/Patient", json=married)).json()["id"]
    sp = (await client.post("/fhir/SearchParameter", json=_definition(old))).json()
    await run_pending(pool)
    redefined = {**_definition(old), "id": sp["id"], "code": new, "name": new}
    assert (await client.put(f"/fhir/SearchParameter/{sp['id']}", json=redefined)).status_code == 200
    await run_pending(pool)
    await staleness.refresh(app, pool)
    assert await pool.fetchval("SELECT count(*) FROM sp_patient_token WHERE param = $1", old) == 0
    found = (await client.get(f"/fhir/Patient?{new}=M&_count=1000")).json()
    assert pid in {e["resource"]["id"] for e in found.get("entry", [])}
    assert (await client.delete(f"/fhir/SearchParameter/{sp['id']}")).status_code == 200  # leave no custom param
    await run_pending(pool)
    await staleness.refresh(app, pool)
