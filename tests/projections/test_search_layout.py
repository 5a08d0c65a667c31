"""Migration 13 brings side tables of the layout before per-parameter hashes up to date: the table
is emptied (its projection is stale and rebuilt from the log), given the generated columns, the
new lookup indexes and dependency statistics, and the old indexes go; run again, it does nothing."""

from __future__ import annotations

import asyncpg

from app.projections.search_layout import upgrade_search_layout

TABLE = "sp_vision_prescription_token"


async def _indexes(conn: asyncpg.Connection) -> set[str]:
    return {r["indexname"] for r in await conn.fetch("SELECT indexname FROM pg_indexes WHERE tablename = $1", TABLE)}


async def test_an_old_layout_table_is_upgraded_once(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        assert await upgrade_search_layout(conn) == []  # a database this code created: nothing to do
        async with conn.transaction():
            await conn.execute(f"DROP STATISTICS IF EXISTS {TABLE}_deps")
            await conn.execute(f"ALTER TABLE {TABLE} DROP COLUMN hash")  # its index goes with it
            await conn.execute(f"CREATE INDEX {TABLE}_0 ON {TABLE} (param, code, system) INCLUDE (key)")
            await conn.execute(f"INSERT INTO {TABLE} (key, param, code) VALUES (-7, 'status', 'active')")
            applied = await upgrade_search_layout(conn)
        assert f"TRUNCATE {TABLE};" in applied
        assert await conn.fetchval(f"SELECT count(*) FROM {TABLE}") == 0
        assert await _indexes(conn) == {f"{TABLE}_key", f"{TABLE}_hash"}
        deps = await conn.fetchval("SELECT count(*) FROM pg_statistic_ext WHERE stxname = $1", f"{TABLE}_deps")
        assert deps == 1
        await conn.execute(f"INSERT INTO {TABLE} (key, param, code) VALUES (-7, 'status', 'active')")
        expected = await conn.fetchval("SELECT hashtextextended('status' || E'\\x1f' || 'active', 0)")
        assert await conn.fetchval(f"SELECT hash FROM {TABLE} WHERE key = -7") == expected
        await conn.execute(f"DELETE FROM {TABLE} WHERE key = -7")
        assert await upgrade_search_layout(conn) == []
