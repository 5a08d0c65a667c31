"""The log as it stood at one moment: a PostgreSQL snapshot of the event log, kept as text so that a
reader may come back to it after any time (even after a restart), and the latest version of each
resource in it (bulk export, https://hl7.org/fhir/uv/bulkdata/export.html).

:func:`take_snapshot` records ``pg_current_snapshot()``: exactly the transactions that had committed
at that moment are *in* it (``pg_visible_in_snapshot(tx_id, snapshot)``; ``tx_id`` is always a
top-level transaction id). What is in it never changes later, so every batch of an export, read
at any time, sees the same state.

Its ``transaction_time`` is an instant T such that every event recorded at or before T is in the
snapshot (the Bulk Data manifest's ``transactionTime``: an export with ``_since=T`` misses nothing
this one left out). A write stamps ``recorded_at`` after its transaction began, so T is the
earlier of now and the start of every transaction still open in this database when the snapshot is
taken (read before it), less a millisecond (``recorded_at`` has millisecond precision). The
snapshot may hold a few events recorded after T (transactions committed in between); an export
from T sends those again. This relies on the server's clock and PostgreSQL's agreeing (one host).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from app.events.codec import decoded

Conn = asyncpg.Connection | asyncpg.Pool

_OPEN_SINCE = """
SELECT clock_timestamp() AS now,
       (SELECT min(xact_start) FROM pg_stat_activity
         WHERE datname = current_database() AND pid <> pg_backend_pid()
           AND backend_type = 'client backend' AND xact_start IS NOT NULL) AS oldest
"""

# in the snapshot: below its xmax and not among its transactions in progress
_IN = "pg_visible_in_snapshot(tx_id, ${}::text::pg_snapshot)"
_SELECTED = "resource_id, version, kind = 'deleted' AS deleted, resource, recorded_at"


@dataclass(frozen=True, slots=True)
class Snapshot:
    text: str  # pg_snapshot as text: 'xmin:xmax:xip,...'
    transaction_time: datetime


@dataclass(frozen=True, slots=True)
class SnapshotVersion:
    """The latest version of a resource in a snapshot (``resource`` None: deleted)."""

    resource_id: str
    version: int
    deleted: bool
    resource: bytes | None
    recorded_at: datetime


def _version(row: asyncpg.Record) -> SnapshotVersion:
    return SnapshotVersion(
        row["resource_id"], row["version"], row["deleted"], decoded(row["resource"]), row["recorded_at"]
    )


def _millis_floor(at: datetime) -> datetime:
    return at.replace(microsecond=at.microsecond // 1000 * 1000)


async def take_snapshot(conn: asyncpg.Connection) -> Snapshot:
    """The log as of now; ``conn`` must not be inside a transaction (each statement its own)."""
    row = await conn.fetchrow(_OPEN_SINCE)
    text = await conn.fetchval("SELECT pg_current_snapshot()::text")
    earliest = row["now"] if row["oldest"] is None else min(row["now"], row["oldest"])
    return Snapshot(text, _millis_floor(earliest) - timedelta(milliseconds=1))


def _latest_sql(resource_type: str, snapshot: str, limit: int, after_id: str | None, since: datetime | None):
    args: list = [resource_type, snapshot, limit]
    where = ["resource_type = $1", _IN.format(2)]
    if after_id is not None:
        args.append(after_id)
        where.append(f"resource_id > ${len(args)}")
    if since is not None:
        args.append(since)
        where.append(f"recorded_at > ${len(args)}")
    sql = (
        f"SELECT DISTINCT ON (resource_id) {_SELECTED} FROM event_log WHERE {' AND '.join(where)}"
        " ORDER BY resource_id, version DESC LIMIT $3"
    )
    return sql, args


async def latest_versions(
    conn: asyncpg.Connection,
    resource_type: str,
    snapshot: str,
    after_id: str | None,
    limit: int,
    since: datetime | None = None,
    batch: int = 1000,
) -> AsyncIterator[list[SnapshotVersion]]:
    """Up to ``limit`` resources of a type in id order after ``after_id``: the latest version of each
    in ``snapshot`` (a deletion too, so that the caller's cursor moves past it), streamed in lists of
    up to ``batch`` through a server-side cursor inside a transaction of its own. With ``since``,
    only resources whose latest version was recorded after it (versions of a resource are
    recorded in increasing time, so no earlier version can qualify either)."""
    sql, args = _latest_sql(resource_type, snapshot, limit, after_id, since)
    async with conn.transaction(readonly=True):
        cursor = await conn.cursor(sql, *args)
        while rows := await cursor.fetch(batch):
            yield [_version(row) for row in rows]


async def versions_at(conn: Conn, resource_type: str, ids: list[str], snapshot: str) -> dict[str, SnapshotVersion]:
    """The latest version in ``snapshot`` of each of the resources ``ids`` that has one."""
    rows = await conn.fetch(
        f"SELECT DISTINCT ON (resource_id) {_SELECTED} FROM event_log"
        f" WHERE resource_type = $1 AND resource_id = ANY($2::text[]) AND {_IN.format(3)}"
        " ORDER BY resource_id, version DESC",
        resource_type,
        ids,
        snapshot,
    )
    return {r["resource_id"]: _version(r) for r in rows}


_TYPES_PRESENT = """
WITH RECURSIVE present(resource_type) AS (
    (SELECT resource_type FROM event_log ORDER BY resource_type LIMIT 1)
    UNION ALL
    SELECT (SELECT e.resource_type FROM event_log e WHERE e.resource_type > p.resource_type
            ORDER BY e.resource_type LIMIT 1)
    FROM present p WHERE p.resource_type IS NOT NULL
)
SELECT resource_type FROM present WHERE resource_type IS NOT NULL
"""


async def types_present(conn: Conn) -> set[str]:
    """The types with any event in the log (a superset of those in any snapshot of it): one index
    probe per type, however long the log."""
    return {r["resource_type"] for r in await conn.fetch(_TYPES_PRESENT)}
