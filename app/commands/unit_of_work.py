"""One write = one database transaction: lock, preconditions, append, inline projectors.

``run_write`` owns the transaction and retries it when PostgreSQL reports contention (a
serialisation failure, a deadlock, or a lost race on the (type, id, version) constraint): lock
contention is never the client's error. Resources are serialised per (type, id) with a
transaction-scoped advisory lock taken before the current version is read, so the version
sequence has no gaps and no duplicates; the unique constraint is the last guard.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import TypeVar

import asyncpg

from app.commands import search_parameters
from app.commands.result import WriteResult, written
from app.errors import FhirError
from app.events.model import RequestContext, VersionEvent
from app.events.store import append
from app.fhirtime import now_millis
from app.projections.current_state import Head, read_head, read_heads
from app.projections.inline import project

T = TypeVar("T")

MAX_ATTEMPTS = 8
_MILLI = timedelta(milliseconds=1)


Matcher = Callable[[asyncpg.Connection, str, str], Awaitable[list[str]]]
"""``(conn, resource_type, query) -> ids`` of the current resources matching search criteria."""

_LOCK_MANY = (
    "SELECT count(pg_advisory_xact_lock(hashtextextended(k, 0)))"
    " FROM (SELECT k FROM unnest($1::text[]) k ORDER BY k) sorted"
)


class WriteTransaction:
    """The handle a command works with inside its transaction."""

    def __init__(self, conn: asyncpg.Connection, context: RequestContext, matcher: Matcher | None = None) -> None:
        self.conn = conn
        self.context = context
        self.now = now_millis()
        self._matcher = matcher

    async def lock(self, resource_type: str, resource_id: str) -> None:
        await self.conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", f"{resource_type}/{resource_id}"
        )

    async def lock_keys(self, keys: list[str]) -> None:
        """Take several advisory locks in one sorted order (so two writers cannot deadlock)."""
        if keys:
            await self.conn.execute(_LOCK_MANY, sorted(set(keys)))

    async def match(self, resource_type: str, query: str) -> list[str]:
        """Ids of the current resources matching ``query``; the caller holds the criteria lock."""
        if self._matcher is None:
            raise FhirError(400, "not-supported", "Conditional operations need the search engine, not configured")
        return await self._matcher(self.conn, resource_type, query)

    async def heads(self, resource_type: str, ids: list[str]) -> dict[str, Head]:
        return await read_heads(self.conn, resource_type, ids)

    async def head(self, resource_type: str, resource_id: str) -> Head | None:
        return await read_head(self.conn, resource_type, resource_id)

    def recorded_at(self, head: Head | None) -> datetime:
        """The time of a new version: now, but never before the version it follows."""
        if head is not None and head.last_updated >= self.now:
            return head.last_updated + _MILLI
        return self.now

    async def record(self, events: Sequence[VersionEvent]) -> list[int]:
        """Append and project ``events``; the request's authorization check (``context.check``)
        sees the state they replace before, and the state they make after (a refusal rolls back)."""
        check = self.context.check
        if check is not None:
            await check(self, events, False)
        definitions = await search_parameters.before_append(self.conn, events)
        positions = await append(self.conn, events)
        await project(self.conn, events, positions)
        await search_parameters.after_projection(self.conn, definitions)
        if check is not None:
            await check(self, events, True)
        return positions

    async def write(self, event: VersionEvent) -> WriteResult:
        """Record one command's event (see ``record``) and describe the write."""
        (position,) = await self.record([event])
        return written(event, position)


def _is_contention(exc: BaseException) -> bool:
    if isinstance(exc, asyncpg.SerializationError | asyncpg.DeadlockDetectedError):
        return True
    if isinstance(exc, asyncpg.UniqueViolationError):
        name = exc.constraint_name or ""
        return name == "event_log_version_unique" or name.startswith("cur_")
    return False


async def run_write(
    pool: asyncpg.Pool,
    context: RequestContext,
    work: Callable[[WriteTransaction], Awaitable[T]],
    matcher: Matcher | None = None,
) -> T:
    for attempt in range(1, MAX_ATTEMPTS + 1):
        async with pool.acquire() as conn:
            try:
                async with conn.transaction():
                    return await work(WriteTransaction(conn, context, matcher))
            except asyncpg.PostgresError as exc:
                if not _is_contention(exc) or attempt == MAX_ATTEMPTS:
                    if _is_contention(exc):
                        raise FhirError(
                            409,
                            "transient",
                            f"The write kept colliding with concurrent writes ({attempt} attempts); retry it",
                        ) from exc
                    raise
        await asyncio.sleep(random.uniform(0, 0.005 * attempt))
    raise AssertionError("unreachable")
