"""Rebuilding projections from the event log: equivalence with the inline projectors, writes during
a rebuild, resuming an interrupted rebuild, and stale projections refused, never served."""

from __future__ import annotations

import asyncio

import asyncpg
import httpx
import pytest

from app.api import staleness
from app.commands.create import create
from app.commands.delete import delete
from app.commands.unit_of_work import run_write
from app.commands.update import update
from app.events.model import RequestContext
from app.projections.current_state import current_table
from app.projections.rebuild import RebuildInterrupted, rebuild_type
from app.projections.search_index import KINDS, search_table
from app.projections.state import check_projections, projection_name
from tests.helpers import new_id

CTX = RequestContext("PUT", "test")
UCUM = "http://unitsofmeasure.org"


async def dump(pool: asyncpg.Pool, resource_type: str) -> dict[str, list]:
    out = {}
    cur = current_table(resource_type)
    out[cur] = [tuple(r) for r in await pool.fetch(f"SELECT * FROM {cur} ORDER BY id")]
    for kind in KINDS:
        table = search_table(resource_type, kind)
        rows = await pool.fetch(f"SELECT * FROM {table}")
        out[table] = sorted(tuple(str(v) for v in r) for r in rows)
    return out


async def _dataset(client: httpx.AsyncClient) -> None:
    """Writes touching every parameter type, with updates and deletes."""
    loinc = "http://loinc.org"
    pid = new_id()
    await client.put(
        f"/fhir/Patient/{pid}",
        json={
            "resourceType": "Patient",
            "id": pid,
            "name": [{"family": "Équipe", "given": ["Zoë"]}],
            "birthDate": "1980-02-03",
            "gender": "female",
            "identifier": [{"system": "http://mrn", "value": pid}],
            "address": [{"city": "Lyon"}],
        },
    )
    await client.put(
        f"/fhir/Patient/{pid}",
        json={
            "resourceType": "Patient",
            "id": pid,
            "name": [{"family": "Equipe"}],
            "birthDate": "1980-02",
            "gender": "female",
        },
    )
    gone = (await client.post("/fhir/Patient", json={"resourceType": "Patient", "gender": "male"})).json()["id"]
    await client.delete(f"/fhir/Patient/{gone}")
    for value in (5.4, 180):
        await client.post(
            "/fhir/Observation",
            json={
                "resourceType": "Observation",
                "status": "final",
                "subject": {"reference": f"Patient/{pid}"},
                "code": {"coding": [{"system": loinc, "code": "2339-0"}]},
                "effectiveDateTime": "2021-05-06T07:08:09Z",
                "valueQuantity": {"value": value, "system": UCUM, "code": "mg/dL"},
                "component": [
                    {
                        "code": {"coding": [{"system": loinc, "code": "8480-6"}]},
                        "valueQuantity": {"value": 120, "system": UCUM, "code": "mm[Hg]"},
                    }
                ],
            },
        )
    await client.post(
        "/fhir/RiskAssessment",
        json={
            "resourceType": "RiskAssessment",
            "status": "final",
            "subject": {"reference": f"Patient/{pid}"},
            "prediction": [{"probabilityDecimal": 0.3}],
        },
    )
    await client.post(
        "/fhir/ValueSet", json={"resourceType": "ValueSet", "status": "active", "url": f"http://example.org/vs/{pid}"}
    )


TYPES = ("Patient", "Observation", "RiskAssessment", "ValueSet")


async def test_rebuild_equals_inline_projection(client: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    await _dataset(client)
    before = {t: await dump(pool, t) for t in TYPES}
    for t in TYPES:
        result = await rebuild_type(pool, t, batch=7)
        assert result.events > 0
    after = {t: await dump(pool, t) for t in TYPES}
    assert after == before
    names = [projection_name(k, t) for t in TYPES for k in ("current_state", "search_index")]
    rows = await pool.fetch("SELECT status, rebuild FROM projection_state WHERE name = ANY($1)", names)
    assert {r["status"] for r in rows} == {"ready"} and all(r["rebuild"] is None for r in rows)
    # searches still work on the swapped tables
    r = await client.get("/fhir/Observation?value-quantity=gt100&_total=accurate")
    assert r.status_code == 200 and r.json()["total"] >= 1


async def test_writes_during_a_rebuild_are_not_lost(pool: asyncpg.Pool) -> None:
    seed = [
        (
            await run_write(
                pool, CTX, lambda tx: create(tx, "Basic", {"resourceType": "Basic", "code": {"text": "seed"}})
            )
        ).resource_id
        for _ in range(60)
    ]
    written: list[str] = []
    stop = asyncio.Event()

    async def writer(n: int) -> None:
        i = 0
        while not stop.is_set():
            i += 1
            rid = f"w{n}-{i}-{new_id()}"
            body = {"resourceType": "Basic", "id": rid, "code": {"text": f"during {n}"}}
            await run_write(pool, CTX, lambda tx, rid=rid, body=body: update(tx, "Basic", rid, body))
            written.append(rid)
            if i % 3 == 0:
                victim = seed[(n * 7 + i) % len(seed)]
                await run_write(pool, CTX, lambda tx, v=victim: delete(tx, "Basic", v))
            await asyncio.sleep(0)

    tasks = [asyncio.create_task(writer(n)) for n in range(3)]
    await asyncio.sleep(0.05)
    await rebuild_type(pool, "Basic", batch=10)
    stop.set()
    await asyncio.gather(*tasks)
    assert written
    live = {r["id"]: r["version"] for r in await pool.fetch("SELECT id, version FROM cur_basic")}
    assert set(written) <= set(live)
    latest = {
        (r["resource_id"]): r["v"]
        for r in await pool.fetch(
            "SELECT resource_id, max(version) AS v FROM event_log WHERE resource_type = 'Basic' GROUP BY resource_id"
        )
    }
    assert live == latest, "every resource's current version is its newest event"
    indexed = await dump(pool, "Basic")
    await rebuild_type(pool, "Basic")
    assert await dump(pool, "Basic") == indexed, "a quiet rebuild reproduces what was built under writes"


async def test_interrupted_rebuild_resumes_and_never_touches_live_tables(pool: asyncpg.Pool) -> None:
    for _ in range(30):
        await run_write(
            pool,
            CTX,
            lambda tx: create(
                tx,
                "Flag",
                {
                    "resourceType": "Flag",
                    "status": "active",
                    "code": {"text": "f"},
                    "subject": {"reference": "Patient/x"},
                },
            ),
        )
    before = await dump(pool, "Flag")
    with pytest.raises(RebuildInterrupted):
        await rebuild_type(pool, "Flag", batch=10, stop_after_batches=2)
    assert await dump(pool, "Flag") == before, "the live projection is untouched by a half-done rebuild"
    state = await pool.fetchval("SELECT rebuild FROM projection_state WHERE name = 'current_state:Flag'")
    assert state is not None
    result = await rebuild_type(pool, "Flag", batch=10)
    assert result.resumed_from > 0
    assert await dump(pool, "Flag") == before


async def test_stale_projection_is_refused_until_rebuilt(client: httpx.AsyncClient, app, pool: asyncpg.Pool) -> None:
    await pool.execute("UPDATE projection_state SET version = 'sp-0-old' WHERE name = 'search_index:Device'")
    async with pool.acquire() as conn:
        stale = await check_projections(conn)
    assert "search_index:Device" in stale
    await staleness.refresh(app, pool)
    try:
        r = await client.get("/fhir/Device?status=active")
        assert r.status_code == 503
        assert "projections rebuild --type Device" in r.json()["issue"][0]["diagnostics"]
        assert (await client.get("/fhir/Patient?gender=male&_count=1")).status_code == 200
        await rebuild_type(pool, "Device")
        await staleness.refresh(app, pool)
        assert (await client.get("/fhir/Device?status=active")).status_code == 200
    finally:
        await pool.execute("UPDATE projection_state SET status = 'ready' WHERE name = 'search_index:Device'")
        await staleness.refresh(app, pool)


async def test_bulk_replay_with_worker_processes_equals_inline(
    client: httpx.AsyncClient, pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fast path (search values extracted in worker processes, rows copied with COPY, lookup
    indexes built at the end) gives exactly the rows the inline projectors wrote."""
    from app.projections import bulk_load
    from app.projections.rebuild import custom_definitions, replay_executor

    await _dataset(client)
    before = {t: await dump(pool, t) for t in ("Patient", "Observation")}
    monkeypatch.setattr(bulk_load, "BULK_MIN", 1)
    with replay_executor(await custom_definitions(pool)) as executor:
        for t in ("Patient", "Observation"):
            await rebuild_type(pool, t, batch=5, executor=executor)
    assert {t: await dump(pool, t) for t in ("Patient", "Observation")} == before


async def test_a_ready_projection_is_served_while_it_is_rebuilt(
    client: httpx.AsyncClient, app, pool: asyncpg.Pool
) -> None:
    for _ in range(12):
        await client.post(
            "/fhir/Flag",
            json={
                "resourceType": "Flag",
                "status": "inactive",
                "code": {"text": "served"},
                "subject": {"reference": "Patient/y"},
            },
        )
    with pytest.raises(RebuildInterrupted):
        await rebuild_type(pool, "Flag", batch=5, stop_after_batches=1)
    await staleness.refresh(app, pool)
    assert (await client.get("/fhir/Flag?subject=Patient/y")).status_code == 200  # Flag has no status parameter
    flag = (await client.get("/fhir/Flag?_count=1")).json()["entry"][0]["resource"]["id"]
    assert (await client.get(f"/fhir/Flag/{flag}")).status_code == 200
    await rebuild_type(pool, "Flag")
