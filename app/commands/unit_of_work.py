"""One write = one database transaction: lock, preconditions, append, inline projectors.

``run_write`` owns the transaction and retries it when PostgreSQL reports contention (a
serialisation failure, a deadlock, or a lost race on the (type, id, version) constraint): lock
contention is never the client's error. Resources are serialised per (type, id) with a
transaction-scoped advisory lock taken before the current version is read, so the version
sequence has no gaps and no duplicates; the unique constraint is the last guard.

The transaction begins with the write's first database work. Recording one version is one
statement (:mod:`app.projections.one_statement`: append and every inline projection); when that
statement is all a write does (a create), it runs without BEGIN and COMMIT, a transaction of its
own, and the handle refuses any database work after it.

An update by id is first tried *optimistically* (``run_write(..., optimistic=True)``): two round
trips, the head read without lock or transaction, then the one statement on its own. The version
it appends is the head's + 1, and the statement appends nothing when a later version was committed
before it began (the head is stale); the ``(type, id, version)`` constraint refuses it when another
write of the resource is in flight (the insert waits for it); either way the retry takes the
locked way: no update is lost and versions stay gap-free, with the lock as the first guard on every
retry and the stale-head check and the constraint as the guards of the first try. The statement's
snapshot predates its commit, so its DELETE of the old search rows must not miss rows another
transaction wrote without appending an event: only a custom-parameter reindex job does that, and
it runs only while the loaded registry lists a parameter as building. So the optimistic way is
taken only when none is (the statement checks the loaded registry version is the stored one), when
the request has no authorization check to run, and for a single event of a type other than
SearchParameter; anything else (another statement, a registry that moved) restarts on the locked
way before anything is written.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import TypeVar

import asyncpg
from asyncpg.transaction import Transaction

from app.commands import search_parameters
from app.commands.result import WriteResult, written
from app.errors import FhirError
from app.events.model import RequestContext, VersionEvent
from app.events.store import append
from app.fhirtime import now_millis
from app.projections import custom_params
from app.projections.current_state import Head, lock_then_read_head, read_head, read_heads
from app.projections.inline import project
from app.projections.one_statement import append_and_project
from app.projections.write_batches import append_shared, batchable

T = TypeVar("T")

MAX_ATTEMPTS = 8
_MILLI = timedelta(milliseconds=1)


Matcher = Callable[[asyncpg.Connection, str, str], Awaitable[list[str]]]
"""``(conn, resource_type, query) -> ids`` of the current resources matching search criteria."""

_LOCK_MANY = (
    "SELECT count(pg_advisory_xact_lock(hashtextextended(k, 0)))"
    " FROM (SELECT k FROM unnest($1::text[]) k ORDER BY k) sorted"
)


class Relock(Exception):
    """An optimistic write met work it cannot do without the lock; nothing was written: run it again
    the locked way."""


class WriteTransaction:
    """The handle a command works with inside its transaction."""

    def __init__(
        self,
        conn: asyncpg.Connection,
        context: RequestContext,
        matcher: Matcher | None = None,
        optimistic: bool = False,
    ) -> None:
        self._conn = conn
        self.context = context
        self.now = now_millis()
        self._matcher = matcher
        # see the module's doc: the head read unlocked, the write checked by the version constraint
        self._optimistic = optimistic and context.check is None and not custom_params.loaded().building
        self._optimistic_key: tuple[str, str] | None = None
        self._read: dict[tuple[str, str], Head] = {}  # the heads read, for the search rows' diff
        # begun by the caller (tests hold one open), else begun by the first database work
        self._transaction: Transaction | None = None
        self._begun = conn.is_in_transaction()
        self._committed = False  # by a single autocommitted statement (see record)
        self._pending_lock: tuple[str, str] | None = None  # asked for, taken by the next database work

    @property
    def conn(self) -> asyncpg.Connection:
        """The connection, inside the transaction (a method such as :meth:`lock` or :meth:`head`
        begins it; using the connection before that would run outside any transaction)."""
        if self._optimistic:
            raise Relock
        if not self._begun:
            raise RuntimeError("WriteTransaction.conn used before the transaction began; call tx.begin() first")
        if self._pending_lock is not None:
            raise RuntimeError("WriteTransaction.conn used while a lock is pending; call tx.head() or tx.begin()")
        return self._conn

    async def begin(self) -> asyncpg.Connection:
        """Begin the transaction if not yet begun; returns the connection."""
        if self._committed:
            raise RuntimeError("the write was already committed as one statement; nothing may follow it")
        if self._optimistic:
            raise Relock
        if not self._begun:
            self._transaction = self._conn.transaction()
            await self._transaction.start()
            self._begun = True
        return self._conn

    async def connection(self) -> asyncpg.Connection:
        """The connection inside the transaction, with every lock asked for taken."""
        conn = await self.begin()
        await self._take_lock()
        return conn

    async def finish(self, ok: bool) -> None:
        """Commit (``ok``) or roll back the transaction this handle began."""
        transaction, self._transaction = self._transaction, None
        if transaction is not None:
            await (transaction.commit() if ok else transaction.rollback())

    async def lock(self, resource_type: str, resource_id: str) -> None:
        """Lock one resource for this transaction. The lock is taken by the next database work:
        when that is :meth:`head` of the same resource, lock and read are one round trip (optimistic:
        not taken, see the module's doc)."""
        if self._optimistic and self._optimistic_key is None:
            self._optimistic_key = (resource_type, resource_id)
            return
        await self.begin()
        await self._take_lock()
        self._pending_lock = (resource_type, resource_id)

    async def _take_lock(self) -> None:
        if self._pending_lock is not None:
            resource_type, resource_id = self._pending_lock
            self._pending_lock = None
            await self._conn.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", f"{resource_type}/{resource_id}"
            )

    async def lock_keys(self, keys: list[str]) -> None:
        """Take several advisory locks in one sorted order (so two writers cannot deadlock)."""
        conn = await self.begin()
        await self._take_lock()
        if keys:
            await conn.execute(_LOCK_MANY, sorted(set(keys)))

    async def match(self, resource_type: str, query: str) -> list[str]:
        """Ids of the current resources matching ``query``; the caller holds the criteria lock."""
        if self._matcher is None:
            raise FhirError(400, "not-supported", "Conditional operations need the search engine, not configured")
        conn = await self.begin()
        await self._take_lock()
        return await self._matcher(conn, resource_type, query)

    async def heads(self, resource_type: str, ids: list[str]) -> dict[str, Head]:
        conn = await self.begin()
        await self._take_lock()
        return await read_heads(conn, resource_type, ids)

    async def head(self, resource_type: str, resource_id: str) -> Head | None:
        key = (resource_type, resource_id)
        if self._optimistic and self._optimistic_key == key:
            head = await read_head(self._conn, resource_type, resource_id)  # autocommitted
        elif self._pending_lock == key:
            conn = await self.begin()
            self._pending_lock = None
            head = await lock_then_read_head(conn, f"{resource_type}/{resource_id}", resource_type, resource_id)
        else:
            conn = await self.begin()
            await self._take_lock()
            head = await read_head(conn, resource_type, resource_id)
        if head is not None:
            self._read[key] = head
        return head

    def _previous(self, event: VersionEvent) -> bytes | None:
        """The bytes of the version ``event`` follows, when this write read them."""
        head = self._read.get((event.resource_type, event.resource_id))
        return head.resource if head is not None and head.version == event.version - 1 else None

    def recorded_at(self, head: Head | None) -> datetime:
        """The time of a new version: now, but never before the version it follows."""
        if head is not None and head.last_updated >= self.now:
            return head.last_updated + _MILLI
        return self.now

    async def record(self, events: Sequence[VersionEvent]) -> list[int]:
        """Append and project ``events``; the request's authorization check (``context.check``)
        sees the state they replace before, and the state they make after (a refusal rolls back)."""
        check = self.context.check
        if self._optimistic:
            return [await self._record_optimistic(events)]
        if check is None and len(events) == 1 and events[0].resource_type != "SearchParameter":
            # one statement; when it is the write's only database work (a create), without
            # BEGIN and COMMIT: a single statement is a transaction of its own
            alone = not self._begun
            await self._take_lock()
            position = await self._one_statement(events[0])
            if position is not None:
                self._committed = alone
                return [position]
            # the custom parameters changed since this process loaded them: the long way loads them
        await self.connection()
        if check is not None:
            await check(self, events, False)
        definitions = await search_parameters.before_append(self.conn, events)
        positions = await append(self.conn, events)
        await project(self.conn, events, positions)
        await search_parameters.after_projection(self.conn, definitions)
        if check is not None:
            await check(self, events, True)
        return positions

    async def _record_optimistic(self, events: Sequence[VersionEvent]) -> int:
        """The one statement on its own; :class:`Relock` when the write needs more (nothing written)."""
        if len(events) != 1 or events[0].resource_type == "SearchParameter":
            raise Relock
        position = await self._one_statement(events[0])
        if position is None:  # the custom parameters moved (the locked way loads them) or the head is stale
            raise Relock
        self._committed, self._optimistic = True, False
        return position

    async def _one_statement(self, event: VersionEvent) -> int | None:
        """The event appended and projected by one statement: outside a transaction, a create or an
        update shares it with the writes of its type that arrived meanwhile
        (:mod:`app.projections.write_batches`)."""
        previous = self._previous(event)
        if not self._begun and batchable(event, previous):
            return await append_shared(self._conn, event, previous)
        return await append_and_project(self._conn, event, previous)

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


async def _attempt(tx: WriteTransaction, work: Callable[[WriteTransaction], Awaitable[T]]) -> T:
    """Run ``work`` and commit what it began; roll it back on any error or cancellation."""
    try:
        result = await work(tx)
    except BaseException:
        await tx.finish(ok=False)
        raise
    await tx.finish(ok=True)
    return result


async def run_write(
    pool: asyncpg.Pool,
    context: RequestContext,
    work: Callable[[WriteTransaction], Awaitable[T]],
    matcher: Matcher | None = None,
    optimistic: bool = False,
) -> T:
    """Run ``work`` in a write transaction, again on contention; ``optimistic``: try it first the
    optimistic way (see the module's doc), then the locked way."""
    if optimistic:
        try:
            return await _on_connection(pool, context, work, matcher, True)
        except Relock:
            pass
        except asyncpg.PostgresError as exc:
            if not _is_contention(exc):
                raise
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            return await _on_connection(pool, context, work, matcher, False)
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


async def _on_connection(
    pool: asyncpg.Pool,
    context: RequestContext,
    work: Callable[[WriteTransaction], Awaitable[T]],
    matcher: Matcher | None,
    optimistic: bool,
) -> T:
    """One attempt on a connection of the pool: the server's pool (``app.db.pool.BoundedPool``)
    borrows a free one without asyncpg's acquire context, proxy and shielded release, answering a
    statement timeout as ``acquire`` does; a plain asyncpg pool (some tests pass one) acquires."""

    async def attempt(conn: asyncpg.Connection) -> T:
        return await _attempt(WriteTransaction(conn, context, matcher, optimistic), work)

    on_connection = getattr(pool, "run_on_connection", None)
    if on_connection is not None:
        return await on_connection(attempt)
    async with pool.acquire() as conn:
        return await attempt(conn)
