"""The asyncpg connection pools: the request pool, whose work is bounded, and the jobs pool.

The request pool (:class:`BoundedPool`) bounds each request's database work in one place:

- every connection runs with PostgreSQL's ``statement_timeout`` (``FHIRLEDGER_STATEMENT_TIMEOUT_MS``);
  a statement it cancels surfaces as a 400 ``too-costly`` :class:`FhirError` (a retry of the same
  request would cost as much again, so the client must narrow it; 5xx would invite automatic retries);
- waiting for a free connection is bounded (``FHIRLEDGER_POOL_TIMEOUT_MS``); past it the request
  answers 503 with ``Retry-After`` (the server is busy, the request itself is fine).

Both translations happen when the connection is handed back (``async with pool.acquire()``, which
``pool.fetch`` and friends use too), so no caller needs to know about them. A task cancelled while
it awaits a query (the client went away, see app/api/guards.py) makes asyncpg cancel the query.

Handing connections out and back is cut to what a request needs (app/db/pool_borrow.py): a
released connection with nothing to reset goes back to the queue at once, and ``fetchrow`` (a
plain read's one query) and ``fetch`` borrow a free connection without asyncpg's acquire machinery.

Background jobs and migrations (reindex, projection audit) use :func:`create_jobs_pool`: no
statement timeout, since building an index over a large table may rightly take minutes.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import TypeVar

import asyncpg
from asyncpg.pool import PoolAcquireContext, PoolConnectionHolder

from app.db import pool_borrow
from app.db.pool_borrow import borrow, connection_of, hand_back, release_at_once, release_with_asyncpg
from app.errors import FhirError
from app.settings import Settings

T = TypeVar("T")
CLIENT_COMMAND_TIMEOUT = 300  # seconds; a last resort should the server-side timeout be off


def statement_timed_out(timeout_ms: int) -> FhirError:
    return FhirError(
        400,
        "too-costly",
        f"The request's database work ran longer than this server's statement timeout of {timeout_ms} ms "
        "(setting FHIRLEDGER_STATEMENT_TIMEOUT_MS) and was cancelled; nothing was changed. "
        "Narrow the request (fewer criteria, sort keys or includes, a smaller _count or Bundle)",
    )


def pool_busy(timeout_ms: int) -> FhirError:
    retry = max(1, math.ceil(timeout_ms / 1000))
    return FhirError(
        503,
        "transient",
        f"The server is busy: no database connection became free within {timeout_ms} ms "
        f"(setting FHIRLEDGER_POOL_TIMEOUT_MS); retry in {retry} s",
        headers={"Retry-After": str(retry)},
    )


class _BoundedAcquire(PoolAcquireContext):
    """``async with pool.acquire()``: a statement cancelled by the statement timeout becomes 400."""

    pool: BoundedPool

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await super().__aexit__(exc_type, exc, tb)
        if isinstance(exc, asyncpg.QueryCanceledError) and "statement timeout" in str(exc):
            raise statement_timed_out(self.pool.statement_timeout_ms) from exc


class BoundedPool(asyncpg.Pool):
    """An asyncpg pool whose connection waits are bounded and whose timeouts answer FHIR errors."""

    statement_timeout_ms: int = 0
    pool_timeout_ms: int = 0

    def acquire(self, *, timeout: float | None = None) -> PoolAcquireContext:
        return _BoundedAcquire(self, timeout)

    async def _acquire(self, timeout: float | None) -> asyncpg.Connection:  # asyncpg's one way in
        if timeout is None and self._live_connection_free():
            # taken at once (no wait, no connect), so no timeout context is set up and torn down:
            # a few per cent of a plain read's CPU. Waiting and connecting stay bounded below.
            return await super()._acquire(None)
        wait = timeout if timeout is not None else (self.pool_timeout_ms / 1000 or None)
        try:
            return await super()._acquire(wait)
        except TimeoutError:
            raise pool_busy(self.pool_timeout_ms) from None

    async def fetchrow(
        self, query: str, *args: object, timeout: float | None = None, record_class: type | None = None
    ) -> asyncpg.Record | None:
        """As asyncpg's, on a connection borrowed and handed back at once when one is free
        (app/db/pool_borrow.py): a plain read's one query."""
        holder = self.borrow()
        if holder is None:
            return await super().fetchrow(query, *args, timeout=timeout, record_class=record_class)
        return await self._on_borrowed(
            holder, connection_of(holder).fetchrow(query, *args, timeout=timeout, record_class=record_class)
        )

    async def fetch(
        self, query: str, *args: object, timeout: float | None = None, record_class: type | None = None
    ) -> list[asyncpg.Record]:
        """As asyncpg's, on a borrowed connection as :meth:`fetchrow` (plain reads taken together)."""
        holder = self.borrow()
        if holder is None:
            return await super().fetch(query, *args, timeout=timeout, record_class=record_class)
        return await self._on_borrowed(
            holder, connection_of(holder).fetch(query, *args, timeout=timeout, record_class=record_class)
        )

    def borrow(self) -> PoolConnectionHolder | None:
        """A free connection's holder taken at once without asyncpg's acquire (app/db/pool_borrow.py),
        for work that leaves nothing to reset; None when none is free (the caller then acquires)."""
        return borrow(self) if self._reset is _nothing_to_reset else None

    async def run_on_connection(self, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        """``work`` on a free connection borrowed at once, else on one acquired (the bounded wait):
        a write's one transaction, which leaves nothing to reset."""
        holder = self.borrow()
        if holder is None:
            async with self.acquire() as conn:
                return await work(conn)
        return await self._on_borrowed(holder, work(connection_of(holder)))

    async def _on_borrowed(self, holder: PoolConnectionHolder, query: Awaitable[T]) -> T:
        """``query`` (running on ``holder``'s connection), the holder handed back after it; a
        statement cancelled by the statement timeout answered as ``acquire`` answers it (400)."""
        try:
            return await query
        except asyncpg.QueryCanceledError as exc:
            if "statement timeout" in str(exc):
                raise statement_timed_out(self.statement_timeout_ms) from exc
            raise
        finally:
            if not hand_back(holder):
                await release_with_asyncpg(self, holder)

    async def release(self, connection: asyncpg.Connection, *, timeout: float | None = None) -> None:
        if timeout is None and self._reset is _nothing_to_reset and release_at_once(connection):  # type: ignore[arg-type]
            return
        await super().release(connection, timeout=timeout)

    def _live_connection_free(self) -> bool:
        # asyncpg's holder queue hands out a connected holder first, the last one put back first
        if not pool_borrow.SHORT_WAYS:  # an asyncpg release whose queue this was not read against
            return False
        free = self._queue._queue  # type: ignore[union-attr]
        return bool(free) and free[-1].is_connected()


async def _nothing_to_reset(conn: asyncpg.Connection) -> None:
    """A released connection is handed on as it is: request work keeps no session state (no SET,
    session advisory locks, LISTEN or cursors outside a transaction; an open transaction is still
    rolled back by asyncpg), so asyncpg's reset query, one more round trip per request, is skipped."""


async def create_pool(dsn: str, settings: Settings) -> BoundedPool:
    """The request pool: ``statement_timeout`` on every connection, bounded connection waits."""
    server_settings = {"statement_timeout": str(settings.statement_timeout_ms)}
    pool = BoundedPool(
        dsn,
        connection_class=asyncpg.Connection,
        record_class=asyncpg.Record,
        min_size=settings.pool_min_size,
        max_size=settings.pool_max_size,
        max_queries=50000,
        max_inactive_connection_lifetime=300.0,
        loop=None,
        connect=None,
        setup=None,
        init=None,
        reset=_nothing_to_reset,
        command_timeout=CLIENT_COMMAND_TIMEOUT,
        server_settings=server_settings,
    )
    pool.statement_timeout_ms = settings.statement_timeout_ms
    pool.pool_timeout_ms = settings.pool_timeout_ms
    await pool
    return pool


async def create_jobs_pool(dsn: str) -> asyncpg.Pool:
    """A small pool for background jobs and migrations: no statement timeout, waits unbounded."""
    return await asyncpg.create_pool(dsn, min_size=1, max_size=2, command_timeout=None)
