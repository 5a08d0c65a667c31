"""Replay's catch-up reads the log with the gap-free reader: a write that took a lower position but
commits after a later one is neither passed by the checkpoint nor lost at the swap (which has no
reconcile step)."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import orjson

from app.commands.create import create
from app.commands.unit_of_work import WriteTransaction, run_write
from app.events.model import RequestContext
from app.projections.current_state import current_table
from app.projections.rebuild import rebuild_type
from app.projections.state import projection_name

CTX = RequestContext("POST", "Substance")
TYPE = "Substance"


async def _swap_waits(pool: asyncpg.Pool) -> bool:
    """Whether the rebuild's swap is waiting for the live current-state table's lock."""
    return await pool.fetchval(
        "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE relation = $1::regclass AND mode = 'AccessExclusiveLock'"
        " AND NOT granted)",
        current_table(TYPE),
    )


async def _wait_for_swap(pool: asyncpg.Pool, rebuild: asyncio.Task) -> None:
    deadline = time.monotonic() + 60
    while not await _swap_waits(pool):
        assert not rebuild.done(), "the swap finished while a writer of the type held its table"
        assert time.monotonic() < deadline, "the rebuild never reached the swap"
        await asyncio.sleep(0.05)


async def test_a_write_committing_after_a_later_one_is_replayed(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        try:
            a = await create(WriteTransaction(conn, CTX), TYPE, {"resourceType": TYPE, "description": "A"})
            b = await run_write(pool, CTX, lambda tx: create(tx, TYPE, {"resourceType": TYPE, "description": "B"}))
            assert a.position < b.position
            rebuild = asyncio.create_task(rebuild_type(pool, TYPE, batch=2))
            await _wait_for_swap(pool, rebuild)  # catch-up done; A, still open, holds the table
            state = await pool.fetchval(
                "SELECT rebuild FROM projection_state WHERE name = $1", projection_name("current_state", TYPE)
            )
            assert orjson.loads(state)["checkpoint"] < a.position, "the catch-up must not pass A's position"
            await transaction.commit()
        finally:
            if conn.is_in_transaction():
                await transaction.rollback()
    await asyncio.wait_for(rebuild, 60)
    rows = await pool.fetch(
        f"SELECT id, version FROM {current_table(TYPE)} WHERE id = ANY($1)", [a.resource_id, b.resource_id]
    )
    assert sorted((r["id"], r["version"]) for r in rows) == sorted([(a.resource_id, 1), (b.resource_id, 1)])
    status = await pool.fetchval(
        "SELECT status FROM projection_state WHERE name = $1", projection_name("current_state", TYPE)
    )
    assert status == "ready"
