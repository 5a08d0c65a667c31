"""A write's check that no later version was committed reads the resource's newest version by the
(type, id, version) index whatever the log's statistics say: a log analyzed while empty, then
grown under a connection's cached plan, used to be walked whole (and sorted) on every write."""

from __future__ import annotations

import asyncpg
import orjson

from app.db.migrations import MIGRATIONS
from app.events.store import no_later_version_sql

ROWS = 5000
GROWN = f"""
INSERT INTO event_log (resource_type, resource_id, version, kind, resource, recorded_at, method, url)
SELECT 'Patient', 'head-' || g, 1, 'created', '\\x00', now(), 'POST', 'Patient' FROM generate_series(1, {ROWS}) g
"""


async def _buffers(conn: asyncpg.Connection) -> int:
    """The buffers the check's cached generic plan reads for a new resource id."""
    plan = await conn.fetchval("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) EXECUTE head_check('Patient', 'new-id', 1)")
    top = orjson.loads(plan)[0]["Plan"]
    return top["Shared Hit Blocks"] + top["Shared Read Blocks"]


async def test_head_check_reads_the_version_index_after_an_empty_analyze(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await conn.execute("CREATE SCHEMA head_check; SET search_path = head_check, public")
        try:
            await conn.execute("CREATE TABLE head_check.event_log (LIKE public.event_log INCLUDING ALL)")
            await conn.execute("ANALYZE head_check.event_log")  # statistics of an empty log
            await conn.execute("SET plan_cache_mode = force_generic_plan")
            await conn.execute(f"PREPARE head_check(text, text, int) AS SELECT {no_later_version_sql(1)}")
            await _buffers(conn)  # planned now, on the empty log's statistics
            await conn.execute(GROWN)
            assert await conn.fetchval(f"EXECUTE head_check('Patient', 'head-{ROWS}', 1)") is False
            assert await _buffers(conn) < 10  # a walk over the grown log reads tens of pages
        finally:
            await conn.execute(
                "DEALLOCATE head_check; RESET plan_cache_mode; RESET search_path; DROP SCHEMA head_check CASCADE"
            )


async def test_migration_28_adds_the_function(pool: asyncpg.Pool) -> None:
    step = next(m for v, _, m in MIGRATIONS if v == 28)
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("DROP FUNCTION event_log_head(text, text)")
        await step(conn)
        assert await conn.fetchval(f"SELECT {no_later_version_sql(1)}", "Patient", "absent", 1) is True
