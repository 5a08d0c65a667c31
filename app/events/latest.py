"""The last event of resources, read from the event log: the ids of a type's resources (ever
written) in id order, and the last event of given resources (custom-parameter reindex, projection
audit)."""

from __future__ import annotations

import asyncpg

from app.events.feed import version_events
from app.events.model import VersionEvent
from app.events.store import COLUMNS, stored_event

Conn = asyncpg.Connection | asyncpg.Pool


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


async def last_events(conn: Conn, resource_type: str, ids: list[str]) -> tuple[list[VersionEvent], list[int]]:
    """The last event of each of the resources ``ids`` of a type (as the projectors take them, with
    their positions), in id order."""
    rows = await conn.fetch(
        f"SELECT DISTINCT ON (resource_id) {COLUMNS} FROM event_log"
        " WHERE resource_type = $1 AND resource_id = ANY($2::text[]) ORDER BY resource_id, version DESC",
        resource_type,
        ids,
    )
    return version_events([stored_event(r) for r in rows])
