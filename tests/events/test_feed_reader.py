"""The gap-free reader of the log never skips an event that commits later with a lower position:
it waits for the earlier transaction, then returns both events in the order of their transactions."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import asyncpg
import pytest

from app.commands.create import create
from app.commands.unit_of_work import WriteTransaction, run_write
from app.events.feed import FeedCursor, cursor_of, read_after
from app.events.model import RequestContext, StoredEvent

CTX = RequestContext("POST", "Substance")
TYPE = "Substance"


async def _end_of_log(pool: asyncpg.Pool, resource_type: str | None) -> FeedCursor | None:
    """The cursor after every event the reader returns now."""
    cursor = None
    while page := await read_after(pool, cursor, 1000, resource_type):
        cursor = cursor_of(page[-1])
    return cursor


async def _ours(pool: asyncpg.Pool, after: FeedCursor | None, ids: set[str], resource_type: str | None) -> list[str]:
    events: list[StoredEvent] = []
    cursor = after
    while page := await read_after(pool, cursor, 2, resource_type):  # small pages: the cursor is exercised
        events += page
        cursor = cursor_of(page[-1])
    return [e.resource_id for e in events if e.resource_id in ids]


@pytest.fixture
async def open_write(pool: asyncpg.Pool) -> AsyncIterator[tuple[WriteTransaction, asyncpg.transaction.Transaction]]:
    """A write transaction left open by the test (rolled back if the test does not commit it)."""
    async with pool.acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        try:
            yield WriteTransaction(conn, CTX), transaction
        finally:
            if conn.is_in_transaction():
                await transaction.rollback()


@pytest.mark.parametrize("resource_type", [None, TYPE], ids=["whole log", "one type"])
async def test_a_later_commit_with_a_lower_position_is_not_skipped(
    pool: asyncpg.Pool, open_write: tuple[WriteTransaction, asyncpg.transaction.Transaction], resource_type: str | None
) -> None:
    start = await _end_of_log(pool, resource_type)
    tx_a, transaction_a = open_write
    a = await create(tx_a, TYPE, {"resourceType": TYPE, "description": "A"})  # appended, not committed
    b = await run_write(pool, CTX, lambda tx: create(tx, TYPE, {"resourceType": TYPE, "description": "B"}))
    assert a.position < b.position, "A took its position first"
    ids = {a.resource_id, b.resource_id}

    assert await _ours(pool, start, ids, resource_type) == [], "B is held back while A, below it, may still commit"

    await transaction_a.commit()
    deadline = time.monotonic() + 20  # other transactions of the cluster may hold the horizon a moment
    while (seen := await _ours(pool, start, ids, resource_type)) != [a.resource_id, b.resource_id]:
        assert len(seen) < 2 and time.monotonic() < deadline, f"read {seen}, expected A then B"
        await asyncio.sleep(0.05)


async def test_an_aborted_transaction_does_not_hold_the_reader_back(
    pool: asyncpg.Pool, open_write: tuple[WriteTransaction, asyncpg.transaction.Transaction]
) -> None:
    start = await _end_of_log(pool, TYPE)
    tx_a, transaction_a = open_write
    a = await create(tx_a, TYPE, {"resourceType": TYPE, "description": "A"})
    b = await run_write(pool, CTX, lambda tx: create(tx, TYPE, {"resourceType": TYPE, "description": "B"}))
    await transaction_a.rollback()
    deadline = time.monotonic() + 20
    while (seen := await _ours(pool, start, {a.resource_id, b.resource_id}, TYPE)) != [b.resource_id]:
        assert time.monotonic() < deadline, f"read {seen}, expected only B"
        await asyncio.sleep(0.05)


async def test_with_writers_excluded_the_horizon_is_lifted(
    pool: asyncpg.Pool, open_write: tuple[WriteTransaction, asyncpg.transaction.Transaction]
) -> None:
    """Replay's swap reads under a lock no writer of the type passes: an unrelated open transaction
    (here one writing another type) must not hold the type's committed events back."""
    start = await _end_of_log(pool, TYPE)
    tx_other, _ = open_write
    await create(tx_other, "Basic", {"resourceType": "Basic", "code": {"text": "other"}})  # holds the horizon
    b = await run_write(pool, CTX, lambda tx: create(tx, TYPE, {"resourceType": TYPE, "description": "B"}))
    assert [e.resource_id for e in await read_after(pool, start, 10, TYPE)] == []
    lifted = await read_after(pool, start, 10, TYPE, writers_excluded=True)
    assert [e.resource_id for e in lifted] == [b.resource_id]
