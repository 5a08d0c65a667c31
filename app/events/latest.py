"""The last event of resources, read from the event log: the ids of a type's resources (ever
written) in id order, the last event of given resources (custom-parameter reindex, projection
audit), and of the resources of a type batch by batch: in id order (the reindex) or in log order
(replay's bulk load)."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from app.events.codec import decoded
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


LatestRow = tuple[int, str, int, str, bytes | None, datetime, int]
"""(position, resource_id, version, kind, resource, recorded_at, first): ``first`` is the position of
the resource's first event, the key of its projection rows; ``resource`` the JSON bytes (as stored,
perhaps compressed, with ``decode=False``)."""


def first_position_sql(resource_type: str, id_sql: str) -> str:
    """The position of the first event of resource ``id_sql`` (an SQL expression) of a registry
    type (a safe identifier, so a literal): that of its lowest version (a version is appended only
    after the one before it committed, so positions grow with versions; an imported resource may
    begin above version 1), one probe of the ``(type, id, version)`` key."""
    assert resource_type.isidentifier(), resource_type
    return (
        f"(SELECT f.position FROM event_log f WHERE f.resource_type = '{resource_type}'"
        f" AND f.resource_id = {id_sql} ORDER BY f.version LIMIT 1)"
    )


async def first_positions(conn: Conn, resource_type: str, ids: list[str]) -> dict[str, int]:
    """The position of the first event of each of the resources ``ids`` of a type."""
    rows = await conn.fetch(
        "SELECT DISTINCT ON (resource_id) resource_id, position FROM event_log"
        " WHERE resource_type = $1 AND resource_id = ANY($2::text[]) ORDER BY resource_id, version",
        resource_type,
        ids,
    )
    return {r["resource_id"]: r["position"] for r in rows}


async def latest_before(
    conn: Conn, resource_type: str, horizon: int | None, below_id: str | None, limit: int, *, decode: bool = True
) -> list[LatestRow]:
    """The last event, among those of transactions below ``horizon`` (None: every event this
    snapshot sees), of each of up to ``limit`` resources of a type, in descending id order from
    below ``below_id`` (None: from the highest id). Superseded versions are never read: replay's
    bulk load and the custom-parameter reindex project each resource once."""
    args: list = [resource_type, limit]
    where = ""
    if horizon is not None:
        args.append(str(horizon))
        where += f" AND tx_id < ${len(args)}::text::xid8"
    if below_id is not None:
        args.append(below_id)
        where += f" AND resource_id < ${len(args)}"
    rows = await conn.fetch(
        # a last event of version 1 is its resource's first: no probe of the log for it
        "SELECT l.*, CASE WHEN l.version = 1 THEN l.position"
        f" ELSE {first_position_sql(resource_type, 'l.resource_id')} END AS first FROM ("
        "SELECT DISTINCT ON (resource_id) position, resource_id, version, kind, resource, recorded_at"
        f" FROM event_log WHERE resource_type = $1{where}"
        " ORDER BY resource_id DESC, version DESC LIMIT $2) l"  # a backward scan of (type, id, version)
        " ORDER BY l.resource_id DESC",
        *args,
    )
    # the resource as JSON (decompressed here, so every reader of the log gets the served bytes),
    # or as stored for a caller that decodes elsewhere (replay's workers: a smaller batch to send)
    if not decode:
        return [tuple(r) for r in rows]  # type: ignore[misc]
    return [(r[0], r[1], r[2], r[3], decoded(r[4]), r[5], r[6]) for r in rows]


async def updated_last_versions(conn: Conn, resource_type: str, horizon: int) -> dict[str, int]:
    """The resources of a type with an event of a version above 1 among those of transactions below
    ``horizon``, with the version of their last such event: the only resources whose earlier events
    :func:`latest_in_log_order` passes over. One scan of the type's part of the ``(type, id, version)``
    key (about 0.1 us an event); the heap is read for versions above 1 only."""
    rows = await conn.fetch(
        "SELECT resource_id, max(version) AS version FROM event_log"
        " WHERE resource_type = $1 AND version > 1 AND tx_id < $2::text::xid8 GROUP BY resource_id",
        resource_type,
        str(horizon),
    )
    return {r["resource_id"]: r["version"] for r in rows}


async def latest_in_log_order(
    conn: Conn, resource_type: str, horizon: int, after: int, limit: int, updated: dict[str, int]
) -> tuple[list[LatestRow], int | None]:
    """The events of a type among those of transactions below ``horizon`` with a position above
    ``after``, up to ``limit`` of them in log order, less each that a later such event of its resource
    supersedes (``updated``: :func:`updated_last_versions`): the last event of each resource, nearly
    in the order of the keys of its projection rows (a resource never updated comes at its first
    event, its key; an updated one at its last). Returns those rows (the resource as stored) and the
    position to go on after (None: the log holds no more).

    Replay's bulk load reads the log so: the shadow tables then fill in key order, and the sorts of
    their index builds find their input (nearly) sorted."""
    rows = await conn.fetch(
        "SELECT e.position, e.resource_id, e.version, e.kind, e.resource, e.recorded_at, CASE WHEN e.version = 1"
        f" THEN e.position ELSE {first_position_sql(resource_type, 'e.resource_id')} END AS first FROM event_log e"
        " WHERE e.resource_type = $1 AND e.tx_id < $2::text::xid8 AND e.position > $3"
        " ORDER BY e.resource_type, e.position LIMIT $4",  # the (type, position) index, for any type's share
        resource_type,
        str(horizon),
        after,
        limit,
    )
    kept = [tuple(r) for r in rows if updated.get(r[1], r[2]) == r[2]]
    return kept, rows[-1][0] if len(rows) == limit else None  # type: ignore[return-value]


async def last_versions(conn: Conn, resource_type: str, ids: list[str]) -> dict[str, int]:
    """The version of the last event of each of the resources ``ids`` of a type."""
    rows = await conn.fetch(
        "SELECT resource_id, max(version) AS version FROM event_log"
        " WHERE resource_type = $1 AND resource_id = ANY($2::text[]) GROUP BY resource_id",
        resource_type,
        ids,
    )
    return {r["resource_id"]: r["version"] for r in rows}
