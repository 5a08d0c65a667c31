"""History pages read from the event log: the versions of one resource, of a type or of the whole
system, newest first, with the filters of a history request (``_since``, ``_at``, actor, client)
and a keyset cursor (a version for one resource, a position otherwise), never an OFFSET."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from app.events.model import StoredEvent
from app.events.store import COLUMNS, stored_event


@dataclass(frozen=True)
class HistoryFilter:
    """What a history request asks for. ``key`` is the keyset cursor: a version for one resource,
    a position otherwise. ``forward`` pages towards newer entries (a ``previous`` link).
    ``actor`` keeps only the events that actor recorded, ``client`` those written through that
    client (``client_id`` of the token; audit)."""

    resource_type: str | None = None
    resource_id: str | None = None
    since: datetime | None = None
    at: tuple[datetime, datetime] | None = None
    key: int | None = None
    forward: bool = False
    limit: int = 50
    actor: str | None = None
    client: str | None = None


def _history_sql(f: HistoryFilter) -> tuple[str, list]:
    args: list = []
    where: list[str] = []

    def arg(value: object) -> str:
        args.append(value)
        return f"${len(args)}"

    instance = f.resource_id is not None
    key_col = "e.version" if instance else "e.position"
    if f.resource_type is not None:
        where.append(f"e.resource_type = {arg(f.resource_type)}")
    if instance:
        where.append(f"e.resource_id = {arg(f.resource_id)}")
    if f.since is not None:
        where.append(f"e.recorded_at >= {arg(f.since)}")
    if f.actor is not None:
        where.append(f"e.actor = {arg(f.actor)}")
    if f.client is not None:
        where.append(f"e.client_id = {arg(f.client)}")
    if f.at is not None:
        low, high = f.at
        # the version was current at some moment of [low, high): it began before high and its
        # successor (if any) began after low
        where.append(f"e.recorded_at < {arg(high)}")
        where.append(
            "NOT EXISTS (SELECT 1 FROM event_log n WHERE n.resource_type = e.resource_type"
            f" AND n.resource_id = e.resource_id AND n.version = e.version + 1 AND n.recorded_at <= {arg(low)})"
        )
    if f.key is not None:
        where.append(f"{key_col} {'>' if f.forward else '<'} {arg(f.key)}")
    order = "ASC" if f.forward else "DESC"
    cols = ", ".join(f"e.{c.strip()}" for c in COLUMNS.split(","))
    sql = f"SELECT {cols} FROM event_log e"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += f" ORDER BY {key_col} {order} LIMIT {arg(f.limit + 1)}"
    return sql, args


async def read_history(conn: asyncpg.Connection | asyncpg.Pool, f: HistoryFilter) -> tuple[list[StoredEvent], bool]:
    """One page of history, newest first, and whether more entries lie beyond it (in the paging
    direction)."""
    sql, args = _history_sql(f)
    rows = await conn.fetch(sql, *args)
    more = len(rows) > f.limit
    events = [stored_event(r) for r in rows[: f.limit]]
    if f.forward:
        events.reverse()
    return events, more
