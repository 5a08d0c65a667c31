"""A write on the server's request pool takes a free connection without asyncpg's acquire
machinery and hands it back as the pool's own release would (app/commands/unit_of_work.py,
app/db/pool_borrow.py): the next request gets the same session when nothing was left open, a
failed or cancelled write leaves no transaction behind, and a statement past the statement timeout
is the 400 the pool's ``acquire`` gives."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from app.commands.create import Create
from app.commands.unit_of_work import WriteTransaction, run_write
from app.db.pool import BoundedPool, create_pool
from app.errors import FhirError
from app.events.model import RequestContext
from app.settings import Settings

CONTEXT = RequestContext("POST", "Patient")


@pytest.fixture
async def one_connection(database_dsn: str) -> AsyncIterator[BoundedPool]:
    settings = Settings(database_url=database_dsn, pool_min_size=1, pool_max_size=1, statement_timeout_ms=500)
    pool = await create_pool(database_dsn, settings)
    yield pool
    await pool.close()


async def _session_is_clean(pool: BoundedPool, pid: int) -> None:
    async with pool.acquire() as conn:
        assert not conn.is_in_transaction()
        assert await conn.fetchval("SELECT pg_backend_pid()") == pid


async def test_writes_hand_their_connection_back_as_it_was(one_connection: BoundedPool) -> None:
    pid = await one_connection.fetchval("SELECT pg_backend_pid()")
    for _ in range(3):
        out = await run_write(one_connection, CONTEXT, Create("Patient", {"resourceType": "Patient"}))
        assert out.version == 1
    await _session_is_clean(one_connection, pid)


async def test_a_failed_write_rolls_back_and_the_connection_serves_on(one_connection: BoundedPool) -> None:
    pid = await one_connection.fetchval("SELECT pg_backend_pid()")

    async def fails(tx: WriteTransaction) -> None:
        conn = await tx.begin()
        await conn.execute("CREATE TEMP TABLE written_then_refused (x int)")
        raise FhirError(422, "processing", "refused")

    with pytest.raises(FhirError):
        await run_write(one_connection, CONTEXT, fails)
    await _session_is_clean(one_connection, pid)
    assert await one_connection.fetchval("SELECT to_regclass('pg_temp.written_then_refused')") is None


async def test_a_write_past_the_statement_timeout_is_400(one_connection: BoundedPool) -> None:
    async def sleeps(tx: WriteTransaction) -> None:
        await (await tx.begin()).fetchval("SELECT pg_sleep(5)")

    with pytest.raises(FhirError) as caught:
        await run_write(one_connection, CONTEXT, sleeps)
    assert caught.value.status == 400 and "500 ms" in caught.value.all_issues()[0].diagnostics
    assert await one_connection.fetchval("SELECT 5") == 5


async def test_a_write_cancelled_midway_leaves_the_pool_serving(one_connection: BoundedPool) -> None:
    async def sleeps(tx: WriteTransaction) -> None:
        await (await tx.begin()).fetchval("SELECT pg_sleep(0.4)")

    task = asyncio.create_task(run_write(one_connection, CONTEXT, sleeps))
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await asyncio.wait_for(one_connection.fetchval("SELECT 6"), 10) == 6
    async with one_connection.acquire() as conn:
        assert not conn.is_in_transaction()
