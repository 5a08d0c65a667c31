"""Migration 13 brings side tables of the layout before per-parameter hashes up to date: the table
is emptied (its projection is stale and rebuilt from the log), given the generated columns, the
new lookup indexes and dependency statistics, and the old indexes go; run again, it does nothing."""

from __future__ import annotations

import asyncpg

from app.projections.search_layout import upgrade_hash_statistics, upgrade_search_layout
from app.search_types.protocol import HASH_STATISTICS

TABLE = "sp_vision_prescription_token"


async def _indexes(conn: asyncpg.Connection) -> set[str]:
    return {r["indexname"] for r in await conn.fetch("SELECT indexname FROM pg_indexes WHERE tablename = $1", TABLE)}


async def test_an_old_layout_table_is_upgraded_once(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        assert await upgrade_search_layout(conn) == []  # a database this code created: nothing to do
        async with conn.transaction():
            await conn.execute(f"DROP STATISTICS IF EXISTS {TABLE}_deps")
            await conn.execute(f"ALTER TABLE {TABLE} DROP COLUMN hash")  # its index goes with it
            await conn.execute(f"CREATE INDEX {TABLE}_0 ON {TABLE} (param, code, system_hash) INCLUDE (key)")
            await conn.execute(f"INSERT INTO {TABLE} (key, param, code) VALUES (-7, 'status', 'active')")
            applied = await upgrade_search_layout(conn)
        assert f"TRUNCATE {TABLE};" in applied
        assert await conn.fetchval(f"SELECT count(*) FROM {TABLE}") == 0
        assert await _indexes(conn) == {f"{TABLE}_key", f"{TABLE}_hashes"}
        deps = await conn.fetchval("SELECT count(*) FROM pg_statistic_ext WHERE stxname = $1", f"{TABLE}_deps")
        assert deps == 1
        await conn.execute(f"INSERT INTO {TABLE} (key, param, code) VALUES (-7, 'status', 'active')")
        expected = await conn.fetchval("SELECT hashtextextended('status' || E'\\x1f' || 'active', 0)")
        assert await conn.fetchval(f"SELECT hash FROM {TABLE} WHERE key = -7") == expected
        await conn.execute(f"DELETE FROM {TABLE} WHERE key = -7")
        assert await upgrade_search_layout(conn) == []


async def test_a_token_table_of_the_system_text_is_made_anew_with_the_system_hash(pool: asyncpg.Pool) -> None:
    """Migration 27: a token table that stored the system's text (and carried it in its code index)
    is dropped and created anew, empty, with ``system_hash``, the narrower index and statistics
    naming the new column; run again, it does nothing."""
    async with pool.acquire() as conn:
        async with conn.transaction():
            await conn.execute(f"DROP STATISTICS {TABLE}_deps")
            await conn.execute(f"ALTER TABLE {TABLE} DROP COLUMN system_hash")  # its index goes with it
            await conn.execute(f"ALTER TABLE {TABLE} ADD COLUMN system text")
            await conn.execute(f"CREATE INDEX {TABLE}_hash ON {TABLE} (hash, key) INCLUDE (system)")
            await conn.execute(f"CREATE STATISTICS {TABLE}_deps (dependencies) ON hash, system FROM {TABLE}")
            await conn.execute(f"INSERT INTO {TABLE} (key, param, system, code) VALUES (-7, 'status', 's', 'active')")
            applied = await upgrade_search_layout(conn)
        assert f"DROP TABLE {TABLE};" in applied
        assert await conn.fetchval(f"SELECT count(*) FROM {TABLE}") == 0
        assert await _indexes(conn) == {f"{TABLE}_key", f"{TABLE}_hashes"}
        columns = await conn.fetch(
            "SELECT attname FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped"
            " ORDER BY attnum",
            TABLE,
        )
        assert [r["attname"] for r in columns] == ["key", "param", "system_hash", "code", "of_type", "hash"]
        statistics = await conn.fetchval(
            "SELECT stxkeys::text FROM pg_statistic_ext WHERE stxname = $1", f"{TABLE}_deps"
        )
        assert statistics == "3 6"  # hash, system_hash
        assert await upgrade_search_layout(conn) == []


async def test_a_date_table_loses_its_stored_range_for_an_index_expression(pool: asyncpg.Pool) -> None:
    """Migration 27: the date table's generated ``span`` column goes; the GiST index holds the same
    range as an expression of the row (``<table>_range``); run again, it does nothing."""
    table = "sp_vision_prescription_date"
    async with pool.acquire() as conn:
        async with conn.transaction():
            await conn.execute(f"DROP INDEX {table}_range")
            await conn.execute(
                f"ALTER TABLE {table} ADD COLUMN span int8range GENERATED ALWAYS AS (int8range(1, 2)) STORED"
            )
            await conn.execute(f"CREATE INDEX {table}_span ON {table} USING gist (span)")
            applied = await upgrade_search_layout(conn)
        assert f"ALTER TABLE {table} DROP COLUMN span;" in applied
        indexes = {
            r["indexname"] for r in await conn.fetch("SELECT indexname FROM pg_indexes WHERE tablename = $1", table)
        }
        assert indexes == {f"{table}_key", f"{table}_range"}
        assert await upgrade_search_layout(conn) == []


async def _hash_target(conn: asyncpg.Connection, table: str) -> int | None:
    return await conn.fetchval(
        "SELECT attstattarget FROM pg_attribute WHERE attrelid = $1::regclass AND attname = 'hash'", table
    )


async def test_hash_columns_of_the_old_statistics_target_get_the_current_one_once(pool: asyncpg.Pool) -> None:
    """Migrations 29 and 30: side tables whose hash column has a statistics target of before (1,000:
    every ANALYZE sampled 300,000 rows; 300: 90,000) are given :data:`HASH_STATISTICS` (30,000); the
    others are left alone, and a database this code created has nothing to change."""
    others = ["sp_vision_prescription_reference", "sp_patient_token"]
    async with pool.acquire() as conn:
        assert await upgrade_hash_statistics(conn) == []
        async with conn.transaction():
            await conn.execute(f"ALTER TABLE {TABLE} ALTER COLUMN hash SET STATISTICS 1000")
            await conn.execute(f"ALTER TABLE {others[0]} ALTER COLUMN hash SET STATISTICS 300")
            applied = await upgrade_hash_statistics(conn)
            wanted = sorted([TABLE, others[0]])
            assert sorted(applied) == [f"ALTER TABLE {t} ALTER COLUMN hash SET STATISTICS 100;" for t in wanted]
            for table in (TABLE, *others):
                assert await _hash_target(conn, table) == HASH_STATISTICS == 100
        assert await upgrade_hash_statistics(conn) == []
