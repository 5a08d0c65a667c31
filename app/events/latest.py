"""The last event of resources, read from the event log: the ids of a type's resources (ever
written) in id order, and the last event of given resources (custom-parameter reindex, projection
audit)."""

from __future__ import annotations

from datetime import datetime

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


async def finished_horizon(conn: Conn) -> int:
    """A transaction id below which every transaction has finished (committed or rolled back): the
    xmin of a new snapshot. Every event with a ``tx_id`` below it is final and visible."""
    return int(await conn.fetchval("SELECT pg_snapshot_xmin(pg_current_snapshot())::text"))


LatestRow = tuple[int, str, int, str, bytes | None, datetime]
"""(position, resource_id, version, kind, resource, recorded_at)."""


async def latest_before(
    conn: Conn, resource_type: str, horizon: int, below_id: str | None, limit: int
) -> list[LatestRow]:
    """The last event, among those of transactions below ``horizon``, of each of up to ``limit``
    resources of a type, in descending id order from below ``below_id`` (None: from the highest id).
    Superseded versions are never read: replay's bulk load projects each resource once."""
    below = "" if below_id is None else " AND resource_id < $4"
    args: list = [resource_type, str(horizon), limit] + ([] if below_id is None else [below_id])
    rows = await conn.fetch(
        "SELECT DISTINCT ON (resource_id) position, resource_id, version, kind, resource, recorded_at"
        f" FROM event_log WHERE resource_type = $1 AND tx_id < $2::text::xid8{below}"
        " ORDER BY resource_id DESC, version DESC LIMIT $3",  # a backward scan of (type, id, version)
        *args,
    )
    return [tuple(r) for r in rows]  # type: ignore[misc]
