"""The event log store: append, read one version, read a page of history.

Reads take a keyset cursor (position, or version for one resource), never an OFFSET.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from app.events.model import EventKind, StoredEvent, VersionEvent

_APPEND = """
INSERT INTO event_log (resource_type, resource_id, version, kind, resource, recorded_at,
                       method, url, actor, client_addr, request_id, client_id, scope_kind)
SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::bytea[], $6::timestamptz[],
                     $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[])
RETURNING position
"""

_APPEND_ONE = """
INSERT INTO event_log (resource_type, resource_id, version, kind, resource, recorded_at,
                       method, url, actor, client_addr, request_id, client_id, scope_kind)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
RETURNING position
"""

_COLUMNS = "position, resource_type, resource_id, version, kind, resource, recorded_at, method, url"


def _values(e: VersionEvent) -> tuple:
    c = e.context
    return (
        e.resource_type,
        e.resource_id,
        e.version,
        e.kind.value,
        e.resource,
        e.recorded_at,
        c.method,
        c.url,
        c.actor,
        c.client_addr,
        c.request_id,
        c.client_id,
        c.scope_kind,
    )


async def append(conn: asyncpg.Connection, events: Sequence[VersionEvent]) -> list[int]:
    """Append events inside the caller's transaction; returns their positions in order."""
    if len(events) == 1:
        return [await conn.fetchval(_APPEND_ONE, *_values(events[0]))]
    columns = list(zip(*(_values(e) for e in events), strict=True))
    rows = await conn.fetch(_APPEND, *[list(c) for c in columns])
    return [r["position"] for r in rows]


def stored_event(row: asyncpg.Record) -> StoredEvent:
    """An event from a row of event_log (the envelope's optional columns when selected)."""
    extra = {k: row[k] for k in ("actor", "client_addr", "request_id", "client_id", "scope_kind") if k in row}
    if "tx" in row:
        extra["tx"] = int(row["tx"])
    return StoredEvent(
        position=row["position"],
        resource_type=row["resource_type"],
        resource_id=row["resource_id"],
        version=row["version"],
        kind=EventKind(row["kind"]),
        resource=row["resource"],
        recorded_at=row["recorded_at"],
        method=row["method"],
        url=row["url"],
        **extra,
    )


async def read_version(
    conn: asyncpg.Connection | asyncpg.Pool, resource_type: str, resource_id: str, version: int
) -> StoredEvent | None:
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM event_log WHERE resource_type = $1 AND resource_id = $2 AND version = $3",
        resource_type,
        resource_id,
        version,
    )
    return stored_event(row) if row else None


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
    cols = ", ".join(f"e.{c.strip()}" for c in _COLUMNS.split(","))
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


async def count_events(conn: asyncpg.Connection | asyncpg.Pool) -> int:
    return await conn.fetchval("SELECT count(*) FROM event_log")
