"""The gap-free reader of the log: the events after a feed cursor, in an order no reader can miss
(ARCHITECTURE.md invariant 7). The change feed, replay's catch-up and subscriptions read it.

Why not simply ``position > P``: positions are allocated when a transaction appends, not when it
commits, so a reader could pass position 11 (committed) while 10 is still in flight and never come
back for it. Instead the reader returns only events of *finished* transactions, those whose
``tx_id`` is below ``pg_snapshot_xmin(pg_current_snapshot())`` (every transaction below the
snapshot's xmin has committed or aborted), in ``(tx_id, position)`` order, after a cursor
``(tx_id, position)``. A transaction that commits after a page was read has a ``tx_id`` at or above
the xmin of that page's snapshot, hence above every ``tx_id`` on the page, so it lands in a later
page. The price: one long-running transaction (in any database of the cluster) holds the reader
back until it ends; it lags, never skips.

Per resource the order is still the version order: a writer takes the resource's lock before its
transaction's first write (which assigns its ``tx_id``), so the writer of a later version gets a
higher ``tx_id``.

``writers_excluded``: the caller holds a lock that no writer of ``resource_type`` can pass (replay's
swap holds the type's current-state table in ACCESS EXCLUSIVE mode, which every writer of the type
needs before it commits). Then every committed event of the type is final and visible, and the
horizon, which unrelated transactions (and the caller's own) hold back, is lifted.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from app.events.model import EventKind, RequestContext, StoredEvent, VersionEvent
from app.events.store import EVENT_COLUMNS, stored_event

REPLAY_CONTEXT = RequestContext("REPLAY", "")

# the horizon is an InitPlan, computed once per statement from the statement's own snapshot
_FINISHED = "tx_id < (SELECT pg_snapshot_xmin(pg_current_snapshot()))"
_AFTER = "(tx_id, position) > (${}::text::xid8, ${}::bigint)"

Conn = asyncpg.Connection | asyncpg.Pool


@dataclass(frozen=True, order=True, slots=True)
class FeedCursor:
    """A place in the gap-free order: after the event ``position`` of transaction ``tx``."""

    tx: int
    position: int

    def __str__(self) -> str:
        return f"{self.tx}.{self.position}"


def cursor_of(e: StoredEvent) -> FeedCursor:
    """The feed position of an event read by this module: (transaction id, log position)."""
    assert e.tx is not None, "read the event with its tx column"
    return FeedCursor(e.tx, e.position)


def _where(after: FeedCursor | None, resource_type: str | None, writers_excluded: bool) -> tuple[str, list]:
    where: list[str] = []
    args: list = []
    if resource_type is not None:
        args.append(resource_type)
        where.append(f"resource_type = ${len(args)}")
    if not writers_excluded:
        where.append(_FINISHED)
    if after is not None:
        args += [str(after.tx), after.position]
        where.append(_AFTER.format(len(args) - 1, len(args)))
    return (" WHERE " + " AND ".join(where) if where else ""), args


async def read_after(
    conn: Conn,
    after: FeedCursor | None,
    limit: int,
    resource_type: str | None = None,
    writers_excluded: bool = False,
) -> list[StoredEvent]:
    """Up to ``limit`` events of finished transactions after ``after`` (None: from the start of the
    log), of one type if ``resource_type`` is given, in ``(tx_id, position)`` order."""
    where, args = _where(after, resource_type, writers_excluded)
    args.append(limit)
    sql = f"SELECT {EVENT_COLUMNS} FROM event_log{where} ORDER BY tx_id, position LIMIT ${len(args)}"
    return [stored_event(r) for r in await conn.fetch(sql, *args)]


async def count_after(conn: Conn, after: FeedCursor | None, resource_type: str | None = None) -> int:
    """How many events of finished transactions (of one type if given) lie after ``after``."""
    where, args = _where(after, resource_type, False)
    return await conn.fetchval(f"SELECT count(*) FROM event_log{where}", *args)


def version_events(events: list[StoredEvent]) -> tuple[list[VersionEvent], list[int]]:
    """Stored events as the projectors take them (replayed: no request context), with positions."""
    out = [
        VersionEvent(
            e.resource_type, e.resource_id, e.version, EventKind(e.kind), e.resource, e.recorded_at, REPLAY_CONTEXT
        )
        for e in events
    ]
    return out, [e.position for e in events]
