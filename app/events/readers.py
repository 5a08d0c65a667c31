"""Readers of the event log for the projections: a type's events after a position (replay), the
last event of each resource of a type (reindex), given versions of resources (replay's swap), and
counts. Events come back as :class:`VersionEvent` with their positions."""

from __future__ import annotations

import asyncpg

from app.events.model import EventKind, RequestContext, VersionEvent

REPLAY_CONTEXT = RequestContext("REPLAY", "")
_FIELDS = "position, resource_id, version, kind, resource, recorded_at"

Positioned = tuple[list[VersionEvent], list[int]]
Conn = asyncpg.Connection | asyncpg.Pool


def _events(rows: list[asyncpg.Record], resource_type: str) -> Positioned:
    events = [
        VersionEvent(
            resource_type,
            r["resource_id"],
            r["version"],
            EventKind(r["kind"]),
            r["resource"],
            r["recorded_at"],
            REPLAY_CONTEXT,
        )
        for r in rows
    ]
    return events, [r["position"] for r in rows]


async def events_after(conn: Conn, resource_type: str, after: int, limit: int) -> Positioned:
    """Up to ``limit`` events of a type after position ``after``, in position order."""
    rows = await conn.fetch(
        f"SELECT {_FIELDS} FROM event_log WHERE resource_type = $1 AND position > $2 ORDER BY position LIMIT $3",
        resource_type,
        after,
        limit,
    )
    return _events(rows, resource_type)


async def resource_ids_after(conn: Conn, resource_type: str, after_id: str, limit: int) -> list[str]:
    """Up to ``limit`` ids of resources of a type (ever written) after ``after_id``, in id order."""
    rows = await conn.fetch(
        "SELECT DISTINCT resource_id FROM event_log WHERE resource_type = $1 AND resource_id > $2"
        " ORDER BY resource_id LIMIT $3",
        resource_type,
        after_id,
        limit,
    )
    return [r["resource_id"] for r in rows]


async def last_events(conn: Conn, resource_type: str, ids: list[str]) -> Positioned:
    """The last event of each of the resources ``ids`` of a type, in id order."""
    rows = await conn.fetch(
        f"SELECT DISTINCT ON (resource_id) {_FIELDS} FROM event_log"
        " WHERE resource_type = $1 AND resource_id = ANY($2::text[]) ORDER BY resource_id, version DESC",
        resource_type,
        ids,
    )
    return _events(rows, resource_type)


async def events_at(conn: Conn, resource_type: str, ids: list[str], versions: list[int]) -> Positioned:
    """The events of the given (id, version) pairs of a type, in position order."""
    rows = await conn.fetch(
        "SELECT e.position, e.resource_id, e.version, e.kind, e.resource, e.recorded_at"
        " FROM unnest($2::text[], $3::int[]) AS b(id, version)"
        " JOIN event_log e ON e.resource_type = $1 AND e.resource_id = b.id AND e.version = b.version"
        " ORDER BY e.position",
        resource_type,
        ids,
        versions,
    )
    return _events(rows, resource_type)


async def max_position(conn: Conn, resource_type: str) -> int:
    return await conn.fetchval(
        "SELECT coalesce(max(position), 0) FROM event_log WHERE resource_type = $1", resource_type
    )


async def count_after(conn: Conn, resource_type: str, after: int) -> int:
    return await conn.fetchval(
        "SELECT count(*) FROM event_log WHERE resource_type = $1 AND position > $2", resource_type, after
    )
