"""The request pool hands a released connection on as the next request needs it: the same session
when nothing is left open, and a clean one when a transaction was left open, its statements
rolled back (app/db/pool.py). Each test runs twice: with the short ways of app/db/pool_borrow.py
and as on an asyncpg release they were not verified against (asyncpg's own ways)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from app.db import pool_borrow
from app.db.pool import BoundedPool, create_pool
from app.errors import FhirError
from app.settings import Settings


@pytest.fixture(autouse=True, params=["short ways", "asyncpg's ways"])
def pool_ways(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param != "short ways":
        monkeypatch.setattr(pool_borrow, "SHORT_WAYS", False)
    return request.param


@pytest.fixture
async def one_connection(database_dsn: str) -> AsyncIterator[BoundedPool]:
    settings = Settings(database_url=database_dsn, pool_min_size=1, pool_max_size=1)
    pool = await create_pool(database_dsn, settings)
    yield pool
    await pool.close()


async def test_a_connection_released_idle_serves_the_next_request(one_connection: BoundedPool) -> None:
    first = await one_connection.fetchval("SELECT pg_backend_pid()")
    for _ in range(3):
        assert await one_connection.fetchval("SELECT pg_backend_pid()") == first
    async with one_connection.acquire() as conn:
        assert not conn.is_in_transaction()
        assert await conn.fetchval("SHOW statement_timeout") != "0"


async def test_a_transaction_left_open_is_rolled_back_before_the_next_request(one_connection: BoundedPool) -> None:
    async with one_connection.acquire() as conn:
        await conn.execute("BEGIN")
        await conn.execute("CREATE TEMP TABLE left_open (x int)")
    async with one_connection.acquire() as conn:
        assert not conn.is_in_transaction()
        assert await conn.fetchval("SELECT to_regclass('pg_temp.left_open')") is None


async def test_a_failed_transaction_leaves_the_connection_usable(one_connection: BoundedPool) -> None:
    with pytest.raises(Exception, match="division by zero"):
        async with one_connection.acquire() as conn, conn.transaction():
            await conn.fetchval("SELECT 1 / 0")
    assert await one_connection.fetchval("SELECT 2") == 2


async def test_a_row_fetch_past_the_statement_timeout_is_400_and_the_connection_serves_on(database_dsn: str) -> None:
    settings = Settings(database_url=database_dsn, pool_min_size=1, pool_max_size=1, statement_timeout_ms=200)
    pool = await create_pool(database_dsn, settings)
    try:
        with pytest.raises(FhirError) as caught:
            await pool.fetchrow("SELECT pg_sleep(5)")
        assert caught.value.status == 400 and "200 ms" in caught.value.all_issues()[0].diagnostics
        assert (await pool.fetchrow("SELECT 3 AS n"))["n"] == 3
    finally:
        await pool.close()


async def test_a_row_fetch_cancelled_midway_leaves_the_pool_serving(one_connection: BoundedPool) -> None:
    task = asyncio.create_task(one_connection.fetchrow("SELECT pg_sleep(30)"))
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    row = await asyncio.wait_for(one_connection.fetchrow("SELECT 4 AS n"), 10)
    assert row["n"] == 4
    async with one_connection.acquire() as conn:
        assert not conn.is_in_transaction()


async def test_a_borrowed_read_hands_its_connection_back_only_by_the_short_way(
    one_connection: BoundedPool, pool_ways: str
) -> None:
    """A plain read borrows a free connection without asyncpg's acquire when the short ways are on,
    and never touches the pool's queue directly otherwise."""
    holder = pool_borrow.borrow(one_connection)
    assert (holder is not None) is (pool_ways == "short ways")
    if holder is not None:
        assert pool_borrow.hand_back(holder)
    assert await one_connection.fetchval("SELECT 5") == 5
