"""Each request's database work is bounded: a statement over FHIRLEDGER_STATEMENT_TIMEOUT_MS
answers 400 too-costly (nothing written), waiting for a free connection over
FHIRLEDGER_POOL_TIMEOUT_MS answers 503 with Retry-After, and a client that goes away has its query
cancelled. Slow statements are made real by holding a lock the request's SQL must wait for."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest

from app.api.app import create_app
from app.db.pool import BoundedPool, create_pool
from app.projections.current_state import current_table
from app.settings import Settings
from tests.helpers import FHIR, new_id, patient


@pytest.fixture(scope="module")
async def bounded(database_dsn: str) -> AsyncIterator[tuple[BoundedPool, httpx.AsyncClient]]:
    settings = Settings(database_url=database_dsn, statement_timeout_ms=400, pool_timeout_ms=300, pool_max_size=2)
    pool = await create_pool(database_dsn, settings)
    app = create_app(settings, pool)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
        yield pool, client
    await pool.close()


async def test_a_search_waiting_past_the_statement_timeout_is_400_too_costly(bounded, database_dsn: str) -> None:
    _, client = bounded
    holder = await asyncpg.connect(database_dsn)
    try:
        async with holder.transaction():
            await holder.execute(f"LOCK TABLE {current_table('Patient')} IN ACCESS EXCLUSIVE MODE")
            started = time.monotonic()
            r = await client.get("/fhir/Patient?family=Doe")
            elapsed = time.monotonic() - started
    finally:
        await holder.close()
    assert r.status_code == 400, r.text
    issue = r.json()["issue"][0]
    assert issue["code"] == "too-costly"
    assert "400 ms" in issue["diagnostics"] and "FHIRLEDGER_STATEMENT_TIMEOUT_MS" in issue["diagnostics"]
    assert elapsed < 5
    # the connection is usable again afterwards
    assert (await client.get("/fhir/Patient?family=Doe")).status_code == 200


async def test_a_write_cancelled_by_the_statement_timeout_writes_nothing(bounded, database_dsn: str, log_count) -> None:
    _, client = bounded
    pid = new_id()
    before = await log_count()
    holder = await asyncpg.connect(database_dsn)
    try:
        async with holder.transaction():
            # every write takes the registry version's lock shared (the optimistic path takes no
            # per-resource lock): held exclusive, the PUT waits until its statement timeout
            await holder.execute("SELECT search_param_version_locked(true)")
            r = await client.put(f"/fhir/Patient/{pid}", json=patient(pid), headers=FHIR)
    finally:
        await holder.close()
    assert r.status_code == 400 and r.json()["issue"][0]["code"] == "too-costly", r.text
    assert await log_count() == before
    assert (await client.put(f"/fhir/Patient/{pid}", json=patient(pid), headers=FHIR)).status_code == 201


async def test_waiting_for_a_connection_is_bounded_503_with_retry_after(bounded) -> None:
    pool, client = bounded
    held = [await pool.acquire(), await pool.acquire()]  # every connection of the pool is busy
    try:
        started = time.monotonic()
        r = await client.get("/fhir/Patient?family=Doe")
        elapsed = time.monotonic() - started
    finally:
        for conn in held:
            await pool.release(conn)
    assert r.status_code == 503, r.text
    assert r.headers["retry-after"] == "1"
    issue = r.json()["issue"][0]
    assert issue["code"] == "transient" and "FHIRLEDGER_POOL_TIMEOUT_MS" in issue["diagnostics"]
    assert elapsed < 2
    assert (await client.get("/fhir/Patient?family=Doe")).status_code == 200


async def _waiting_backends(database_dsn: str) -> int:
    conn = await asyncpg.connect(database_dsn)
    try:
        return await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND state = 'active' AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
        )
    finally:
        await conn.close()


async def test_a_query_is_cancelled_when_its_client_goes_away(database_dsn: str) -> None:
    settings = Settings(database_url=database_dsn, statement_timeout_ms=60_000)
    pool = await create_pool(database_dsn, settings)
    app = create_app(settings, pool)
    messages: list[dict] = []
    gone = asyncio.Event()

    async def receive() -> dict:
        if not messages:
            messages.append({"type": "http.request", "body": b"", "more_body": False})
            return messages[-1]
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        messages.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/fhir/Patient",
        "raw_path": b"/fhir/Patient",
        "query_string": b"family=Doe",
        "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
        "root_path": "",
    }
    holder = await asyncpg.connect(database_dsn)
    try:
        async with holder.transaction():
            await holder.execute(f"LOCK TABLE {current_table('Patient')} IN ACCESS EXCLUSIVE MODE")
            request = asyncio.create_task(app(scope, receive, send))
            for _ in range(100):  # the search now waits for the lock
                if await _waiting_backends(database_dsn):
                    break
                await asyncio.sleep(0.05)
            assert await _waiting_backends(database_dsn) == 1
            gone.set()  # the client hangs up
            await asyncio.wait_for(request, 5)
            await asyncio.sleep(0.2)
            assert await _waiting_backends(database_dsn) == 0  # its query no longer waits in PostgreSQL
    finally:
        await holder.close()
        await pool.close()
    assert not [m for m in messages if m.get("type") == "http.response.start"]


async def test_a_free_connection_is_taken_at_once_and_a_busy_pool_still_bounds_the_wait(bounded) -> None:
    pool, _ = bounded
    conn = await pool.acquire()  # a live connection free: the pool's fast way in
    try:
        assert await conn.fetchval("SELECT 1") == 1
        other = await pool.acquire()
        try:
            with pytest.raises(Exception) as refused:  # both busy: the bounded wait, then 503
                await pool.acquire()
            assert getattr(refused.value, "status", None) == 503
        finally:
            await pool.release(other)
    finally:
        await pool.release(conn)
    again = await pool.acquire()
    await pool.release(again)
