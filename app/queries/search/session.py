"""The connection a search runs on: one read-only transaction whose statements are planned for
their actual values.

PostgreSQL plans a prepared statement (asyncpg prepares and caches every statement) for its
parameter values the first five times, then may switch to a generic plan that ignores them; for
a search that plan is blind to the per-parameter statistics (which code, which patient) and
took code + date from ~20 ms to ~180 ms at a million resources. ``SET LOCAL plan_cache_mode =
force_custom_plan`` keeps every search statement on a custom plan while the write path, whose
statements gain nothing from re-planning, keeps its cached plans. The count and the page are
read in one snapshot (``REPEATABLE READ``), so a total agrees with the page it comes with.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

BEGIN = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET LOCAL plan_cache_mode = force_custom_plan"


@asynccontextmanager
async def search_session(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    async with pool.acquire() as conn:
        await conn.execute(BEGIN)  # one round trip: both statements in one simple query
        try:
            yield conn
        except BaseException:
            if not conn.is_closed():
                await conn.execute("ROLLBACK")
            raise
        await conn.execute("COMMIT")
