"""The connection a search runs on: its statements are planned for their actual values.

PostgreSQL plans a prepared statement (asyncpg prepares and caches every statement) for its
parameter values the first five times, then may switch to a generic plan that ignores them; for
a search that plan is blind to the per-parameter statistics (which code, which patient) and
took code + date from ~20 ms to ~180 ms at a million resources. ``plan_cache_mode =
force_custom_plan`` keeps every search statement on a custom plan, while the write path, whose
statements gain nothing from re-planning, keeps its cached plans: the setting is made for the
search's session only (a search of one type, a search across types, ``$everything``'s pages) and
reset when the search is done (the request pool skips asyncpg's
``RESET ALL`` on release, app/db/pool.py; without the reset, every later write on the connection
would be planned anew, ~0.4 ms of PostgreSQL per write). No transaction is
held across the search's statements (each locks its tables for itself, as before), so a
rebuild's swap can never deadlock with a search that holds one table and waits for another.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

_CUSTOM_PLANS = "SET plan_cache_mode = force_custom_plan"


@asynccontextmanager
async def search_session(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    async with pool.acquire() as conn:
        await conn.execute(_CUSTOM_PLANS)
        try:
            yield conn
        finally:
            await _reset(conn)


@asynccontextmanager
async def planned_for_values(conn: asyncpg.Connection) -> AsyncIterator[asyncpg.Connection]:
    """The statements run in the block on ``conn``, a connection inside the caller's transaction (a
    conditional write matching its criteria), planned for their values, as a search's are. A
    ``SET`` inside a transaction is undone by its rollback: after a failure the setting is left to
    it (a failed transaction takes no more statements); else it is taken back at once, so the
    write's own statements keep their cached plans."""
    if not conn.is_in_transaction():
        raise RuntimeError("planned_for_values needs the caller's transaction")
    await conn.execute(_CUSTOM_PLANS)
    yield conn
    await conn.execute("RESET plan_cache_mode")


async def _reset(conn: asyncpg.Connection) -> None:
    """Take the setting back; a connection that cannot be reset is closed, never handed on with it."""
    if conn.is_closed():
        return
    try:
        await conn.execute("RESET plan_cache_mode")
    except asyncio.CancelledError:
        conn.terminate()
        raise
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
        conn.terminate()
