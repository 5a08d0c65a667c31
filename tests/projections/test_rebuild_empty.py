"""Rebuilding a type the log holds no event of (app/projections/rebuild_empty.py): its tables come
back empty with the live DDL and its projections ready, in one transaction (or are left as they
are when they already are so); a first event that commits while the rebuild waits for the table is
replayed, never lost."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import orjson

from app.commands.create import create
from app.commands.unit_of_work import WriteTransaction
from app.events.model import RequestContext
from app.events.store import max_position
from app.projections.current_state import current_table, table_ddl
from app.projections.rebuild import rebuild_type
from app.projections.rebuild_empty import live_tables
from app.projections.rebuild_state import SHADOW
from app.projections.search_index import search_table
from app.projections.state import KINDS, expected_version, projection_name

EMPTY = "RiskEvidenceSynthesis"  # no other test writes these three types
RACED = "MolecularSequence"
UNTOUCHED = "EffectEvidenceSynthesis"


async def _layout(pool: asyncpg.Pool, resource_type: str) -> list[tuple]:
    """The definitions of the type's indexes and the names of its statistics objects."""
    tables = live_tables(resource_type)
    indexes = await pool.fetch(
        "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE tablename = ANY($1::text[])", tables
    )
    statistics = await pool.fetch(
        "SELECT stxname FROM pg_statistic_ext WHERE stxrelid::regclass::text = ANY($1::text[])", tables
    )
    return sorted(tuple(r) for r in indexes) + sorted(tuple(r) for r in statistics)


async def _states(pool: asyncpg.Pool, resource_type: str) -> list[tuple]:
    rows = await pool.fetch(
        "SELECT name, version, status, checkpoint, rebuild FROM projection_state WHERE name = ANY($1::text[])"
        " ORDER BY name",
        [projection_name(kind, resource_type) for kind in KINDS],
    )
    return [tuple(r) for r in rows]


async def test_an_empty_type_comes_back_empty_with_its_indexes_and_ready(pool: asyncpg.Pool) -> None:
    assert await max_position(pool, EMPTY) == 0, f"this test needs a type without events; {EMPTY} has some"
    layout = await _layout(pool, EMPTY)
    assert len(layout) > 2 * len(live_tables(EMPTY)), "the migration's tables have their key and lookup indexes"
    # drift: rows no event stands for, a stale version, and a shadow left by an interrupted rebuild
    cur, token = current_table(EMPTY), search_table(EMPTY, "token")
    await pool.execute(
        f"INSERT INTO {cur} (id, version, deleted, last_updated, position, key)"
        " VALUES ('planted', 1, false, now(), 1, 1)"
    )
    await pool.execute(f"INSERT INTO {token} (key, param, code) VALUES (1, 'status', 'planted')")
    await pool.execute(table_ddl(EMPTY, SHADOW))
    await pool.execute(
        "UPDATE projection_state SET version = 'old', status = 'stale', rebuild = $2 WHERE name = $1",
        projection_name("search_index", EMPTY),
        orjson.dumps({"checkpoint": 7}).decode(),
    )
    log_before = await pool.fetchval("SELECT count(*) FROM event_log")

    result = await rebuild_type(pool, EMPTY)

    assert (result.events, result.checkpoint) == (0, 0)
    assert await pool.fetchval(f"SELECT count(*) FROM {cur}") == 0, "the planted current row is gone"
    assert await pool.fetchval(f"SELECT count(*) FROM {token}") == 0, "the planted search row is gone"
    assert await pool.fetchval("SELECT to_regclass($1)", cur + SHADOW) is None, "the old shadow is dropped"
    assert await _layout(pool, EMPTY) == layout, "the same indexes and statistics as the migration made"
    assert await _states(pool, EMPTY) == [
        (projection_name(kind, EMPTY), expected_version(kind, EMPTY), "ready", 0, None) for kind in KINDS
    ]
    assert await pool.fetchval("SELECT count(*) FROM event_log") == log_before, "the log is untouched"


async def _waiting_for_lock(pool: asyncpg.Pool, table: str) -> bool:
    return await pool.fetchval(
        "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE relation = $1::regclass AND mode = 'AccessExclusiveLock'"
        " AND NOT granted)",
        table,
    )


async def test_a_first_event_committing_while_the_rebuild_waits_is_replayed(pool: asyncpg.Pool) -> None:
    assert await max_position(pool, RACED) == 0, f"this test needs a type without events; {RACED} has some"
    ctx = RequestContext("POST", RACED)
    async with pool.acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        try:
            # the first event of the type, appended and projected, not committed: it holds the table
            first = await create(WriteTransaction(conn, ctx), RACED, {"resourceType": RACED, "coordinateSystem": 0})
            rebuild = asyncio.create_task(rebuild_type(pool, RACED, batch=2))
            deadline = time.monotonic() + 60
            while not await _waiting_for_lock(pool, current_table(RACED)):
                assert not rebuild.done(), "the rebuild finished while a writer of the type held its table"
                assert time.monotonic() < deadline, "the rebuild never asked for the table"
                await asyncio.sleep(0.05)
            await transaction.commit()
        finally:
            if conn.is_in_transaction():
                await transaction.rollback()
    result = await asyncio.wait_for(rebuild, 60)
    assert result.events == 1, "the event that committed meanwhile is replayed"
    rows = await pool.fetch(f"SELECT id, version FROM {current_table(RACED)}")
    assert [tuple(r) for r in rows] == [(first.resource_id, 1)]
    states = await _states(pool, RACED)
    assert [s[2] for s in states] == ["ready", "ready"]
    assert [s[3] for s in states] == [first.position, first.position]


async def _oids(pool: asyncpg.Pool, resource_type: str) -> list[int]:
    return [await pool.fetchval("SELECT $1::regclass::oid", t) for t in live_tables(resource_type)]


async def test_an_empty_type_already_as_rebuilt_is_left_as_it_is(pool: asyncpg.Pool) -> None:
    assert await max_position(pool, UNTOUCHED) == 0, f"this test needs a type without events; {UNTOUCHED} has some"
    await rebuild_type(pool, UNTOUCHED)  # ready at the current versions, whatever other tests left
    oids = await _oids(pool, UNTOUCHED)
    result = await rebuild_type(pool, UNTOUCHED)
    assert (result.events, result.checkpoint) == (0, 0)
    assert await _oids(pool, UNTOUCHED) == oids, "nothing to rebuild: the same tables"
    # one row no event stands for, the versions current: the tables are made again
    token = search_table(UNTOUCHED, "token")
    await pool.execute(f"INSERT INTO {token} (key, param, code) VALUES (1, 'status', 'planted')")
    await rebuild_type(pool, UNTOUCHED)
    assert await pool.fetchval(f"SELECT count(*) FROM {token}") == 0, "the planted search row is gone"
    assert await _oids(pool, UNTOUCHED) != oids
