"""The connection a search runs on: its statements are planned for their actual values.

PostgreSQL plans a prepared statement (asyncpg prepares and caches every statement) for its
parameter values the first five times, then may switch to a generic plan that ignores them; for
a search that plan is blind to the per-parameter statistics (which code, which patient) and
took code + date from ~20 ms to ~180 ms at a million resources. ``plan_cache_mode =
force_custom_plan`` keeps every search statement on a custom plan, while the write path, whose
statements gain nothing from re-planning, keeps its cached plans: the setting is made for the
search's session only, and the pool's ``RESET ALL`` on release takes it back. No transaction is
held across the search's statements (each locks its tables for itself, as before), so a
rebuild's swap can never deadlock with a search that holds one table and waits for another.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg


@asynccontextmanager
async def search_session(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    async with pool.acquire() as conn:  # released with RESET ALL (asyncpg's pool reset)
        await conn.execute("SET plan_cache_mode = force_custom_plan")
        yield conn
