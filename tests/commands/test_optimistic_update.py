"""An update by id is tried optimistically (app/commands/unit_of_work.py: the head read without
lock, the one statement on its own, the version constraint as the guard) and falls back to the
locked way: what a client sees is the same as the locked way's, under contention and while a
custom parameter's index is being built. An update rewrites only the search rows of the parameters that
changed (app/projections/one_statement.py), and searches find the current version only."""

from __future__ import annotations

import asyncio

import asyncpg
import httpx

from app.api import staleness
from app.commands.update import decide_update
from app.events.model import RequestContext
from app.fhirtime import now_millis
from app.jobs.runner import run_pending
from app.projections import custom_params
from app.projections.current_state import Head
from app.projections.one_statement import append_and_project
from app.projections.search_index import COLUMNS as SEARCH_COLUMNS
from app.projections.search_index import rows_of, search_table
from tests.helpers import new_id, side_rows_sql

MARITAL = "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus"
ROUNDS = 6


def _patient(pid: str, status: str) -> dict:
    return {"resourceType": "Patient", "id": pid, "maritalStatus": {"coding": [{"system": MARITAL, "code": status}]}}


def _definition(code: str) -> dict:
    return {
        "resourceType": "SearchParameter",
        "url": f"http://fhirledger.test/sp/{code}",
        "name": code,
        "status": "active",
        "description": "Marital status of a patient",
        "code": code,
        "base": ["Patient"],
        "type": "token",
        "expression": "Patient.maritalStatus",
    }


async def _flip(client: httpx.AsyncClient, pid: str) -> None:
    """Alternate the patient between married and single, ending single."""
    for i in range(ROUNDS):
        r = await client.put(f"/fhir/Patient/{pid}", json=_patient(pid, "S" if i % 2 else "M"))
        assert r.status_code == 200, r.text


async def test_updates_during_an_index_build_leave_exact_rows(
    client: httpx.AsyncClient, app, pool: asyncpg.Pool
) -> None:
    code = f"marital-{new_id()}".lower()
    ids = [new_id() for _ in range(12)]
    for pid in ids:
        assert (await client.put(f"/fhir/Patient/{pid}", json=_patient(pid, "M"))).status_code == 201
    assert (await client.post("/fhir/SearchParameter", json=_definition(code))).status_code == 201
    await staleness.refresh(app, pool)
    await asyncio.gather(run_pending(pool), *[_flip(client, pid) for pid in ids])
    await run_pending(pool)
    await staleness.refresh(app, pool)
    married = (await client.get(f"/fhir/Patient?{code}={MARITAL}|M&_count=100")).json()
    assert not {e["resource"]["id"] for e in married.get("entry", [])} & set(ids), "no row of an older version"
    single = (await client.get(f"/fhir/Patient?{code}={MARITAL}|S&_count=100")).json()
    assert {e["resource"]["id"] for e in single.get("entry", [])} >= set(ids)
    sql = side_rows_sql("sp_patient_token", "cur_patient", "c.id, count(*) AS n", "s.param = $1 GROUP BY c.id")
    rows = await pool.fetch(sql, code)
    assert {r["id"]: r["n"] for r in rows if r["id"] in ids} == dict.fromkeys(ids, 1)


async def test_racing_updates_with_if_match_one_wins_and_the_log_holds_it_once(
    client: httpx.AsyncClient, log_count
) -> None:
    pid = new_id()
    await client.put(f"/fhir/Patient/{pid}", json=_patient(pid, "M"))
    before = await log_count()
    results = await asyncio.gather(
        *[
            client.put(f"/fhir/Patient/{pid}", json=_patient(pid, s), headers={"If-Match": 'W/"1"'})
            for s in ("S", "M", "S", "D")
        ]
    )
    assert sorted(r.status_code for r in results) == [200, 412, 412, 412]
    assert await log_count() == before + 1
    history = (await client.get(f"/fhir/Patient/{pid}/_history")).json()
    assert [e["resource"]["meta"]["versionId"] for e in history["entry"]] == ["2", "1"]


async def test_update_after_a_delete_recreates_and_counts_on(client: httpx.AsyncClient) -> None:
    pid = new_id()
    await client.put(f"/fhir/Patient/{pid}", json=_patient(pid, "M"))
    assert (await client.delete(f"/fhir/Patient/{pid}")).status_code in (200, 204)
    again = await client.put(f"/fhir/Patient/{pid}", json={**_patient(pid, "S"), "gender": "female"})
    assert again.status_code == 201
    assert again.headers["etag"] == 'W/"3"'
    found = (await client.get(f"/fhir/Patient?_id={pid}&gender=female")).json()
    assert [e["resource"]["meta"]["versionId"] for e in found["entry"]] == ["3"]


async def _row_counts(pool: asyncpg.Pool, rid: str) -> dict[str, int]:
    return {
        kind: await pool.fetchval(
            side_rows_sql(search_table("Patient", kind), "cur_patient", "count(*)", "c.id = $1"), rid
        )
        for kind in SEARCH_COLUMNS
    }


async def test_an_update_replaces_exactly_the_search_rows_that_changed(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    pid, family, other = new_id(), f"Diff{new_id()[:8]}", f"Other{new_id()[:8]}"
    ident = {"system": "http://hospital.example/mrn", "value": new_id()}
    versions = [
        {"resourceType": "Patient", "id": pid, "identifier": [ident], "name": [{"family": family}], "gender": "male"},
        {"resourceType": "Patient", "id": pid, "identifier": [ident], "name": [{"family": family}], "gender": "male"},
        {"resourceType": "Patient", "id": pid, "identifier": [ident], "name": [{"family": family}], "gender": "female"},
        {"resourceType": "Patient", "id": pid, "identifier": [ident], "name": [{"family": other}], "gender": "female"},
        {"resourceType": "Patient", "id": pid, "name": [{"family": other}], "birthDate": "1970-01-02"},
    ]
    for body in versions:
        assert (await client.put(f"/fhir/Patient/{pid}", json=body)).status_code in (200, 201)
        current = (await client.get(f"/fhir/Patient/{pid}")).json()
        expected = {k: len(v) for k, v in rows_of(current).items() if k in SEARCH_COLUMNS}
        assert await _row_counts(pool, pid) == {k: expected.get(k, 0) for k in SEARCH_COLUMNS}, body

    async def ids(query: str) -> list[str]:
        found = (await client.get(f"/fhir/Patient?{query}")).json()
        return [e["resource"]["id"] for e in found.get("entry", [])]

    assert await ids(f"family={family}") == []
    assert await ids(f"family={other}&birthdate=1970-01-02") == [pid]
    assert await ids(f"identifier={ident['system']}|{ident['value']}") == []
    assert await ids(f"_id={pid}&gender=female") == []
    assert await ids(f"_id={pid}&_lastUpdated=gt2000-01-01") == [pid]


async def test_a_write_decided_on_a_stale_head_appends_nothing(
    client: httpx.AsyncClient, pool: asyncpg.Pool, log_count
) -> None:
    pid = new_id()
    await client.put(f"/fhir/Patient/{pid}", json=_patient(pid, "M"))
    await client.put(f"/fhir/Patient/{pid}", json=_patient(pid, "S"))  # version 2 is committed
    stale = Head(1, False, now_millis(), None)
    event = decide_update(stale, "Patient", pid, _patient(pid, "D"), None, now_millis(), RequestContext("PUT", "x"))
    before = await log_count()
    async with pool.acquire() as conn:
        await custom_params.sync(conn)
        assert await append_and_project(conn, event) is None
    assert await log_count() == before
    assert (await client.get(f"/fhir/Patient/{pid}")).json()["maritalStatus"]["coding"][0]["code"] == "S"
