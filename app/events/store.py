"""The event log store: append, read one version, and the log's sizes (events per type, the last
position of a type, the versions of a resource).

The other readers of the log live beside it: :mod:`app.events.history` (history pages),
:mod:`app.events.feed` (the gap-free reader), :mod:`app.events.audit` (audit trails) and
:mod:`app.events.latest` (the last event of resources).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

import asyncpg

from app.events.codec import decoded, encode
from app.events.model import EventKind, StoredEvent, VersionEvent
from app.joined_text import array_sql, sent_columns

Conn = asyncpg.Connection | asyncpg.Pool

_APPEND_ONE = """
INSERT INTO event_log (resource_type, resource_id, version, kind, resource, recorded_at,
                       method, url, actor, client_addr, request_id, client_id, scope_kind)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
RETURNING position
"""

APPEND_COLUMNS = (
    "resource_type, resource_id, version, kind, resource, recorded_at,"
    " method, url, actor, client_addr, request_id, client_id, scope_kind"
)
APPEND_TYPES = (
    "text",
    "text",
    "int",
    "text",
    "bytea",
    "timestamptz",
    "text",
    "text",
    "text",
    "text",
    "text",
    "text",
    "text",
)


@cache
def _append_sql(joined: bool) -> str:
    """The INSERT of several events, one array per column (:func:`event_values`' order), its
    text, integer and timestamp columns each one string when ``joined``
    (:func:`app.joined_text.sent_columns`); ``RETURNING position``."""
    arrays = ", ".join(array_sql(i, t, joined) for i, t in enumerate(APPEND_TYPES, 1))
    return f"INSERT INTO event_log ({APPEND_COLUMNS}) SELECT * FROM unnest({arrays}) RETURNING position"


def append_one_sql(first: int, source: str) -> str:
    """The INSERT of one event as the body of a data-modifying CTE (for a statement that appends and
    projects at once, :mod:`app.projections.one_statement`): its values are the parameters
    ``$first`` … in the order of :func:`event_values`, inserted once per row of ``source`` (a FROM
    clause: a guard that yields one row, or none to append nothing); ``RETURNING position``."""
    values = ", ".join(f"${first + i}::{t}" for i, t in enumerate(APPEND_TYPES))
    return f"INSERT INTO event_log ({APPEND_COLUMNS}) SELECT {values} FROM {source} RETURNING position"


def append_many_sql(first: int, source: str, condition: str) -> str:
    """The INSERT of several events as the body of a data-modifying CTE (creates and updates that
    share a statement, :mod:`app.projections.one_statement`): their values are one array per column,
    the parameters ``$first`` … in the order of :func:`event_values`, unnested as ``e(c0, …)``
    beside ``source`` (a FROM item); an event is appended where ``condition`` holds (SQL over
    ``source`` and ``e``) and no version at or after it is committed (:func:`no_later_version_sql`,
    row by row). ``RETURNING position, resource_id, version, recorded_at``."""
    columns = ", ".join(f"c{i}" for i in range(len(APPEND_TYPES)))
    arrays = ", ".join(f"${first + i}::{t}[]" for i, t in enumerate(APPEND_TYPES))
    return (
        f"INSERT INTO event_log ({APPEND_COLUMNS}) SELECT e.* FROM {source}, unnest({arrays}) AS e({columns})"
        f" WHERE {condition} AND {_no_later('e.c0', 'e.c1', 'e.c2')}"
        " RETURNING position, resource_id, version, recorded_at"
    )


def no_later_version_sql(first: int) -> str:
    """A condition true while no version at or after the event's is committed in the statement's
    snapshot (the parameters ``$first`` … in the order of :func:`event_values`: type, id, version):
    a write decided on a stale head appends nothing when :func:`append_one_sql`'s guard holds it.

    It asks for the resource's last version (``ORDER BY version DESC LIMIT 1``), which only the
    ``(type, id, version)`` index hands over without a sort, through the function
    ``event_log_head`` (:data:`app.events.schema.EVENT_LOG_HEAD_DDL`), whose plan can be no other:
    asked inline (and before that as ``NOT EXISTS (… version >= …)``), a log whose statistics were
    gathered while it was empty or small (a new database under its first writes) got a sequential
    scan, or ``event_log_type_tx`` with ``resource_type`` alone as its condition, plus a sort, kept
    in the connection's cached plan while the log grew: a walk over every event of the type on each
    write (measured: a quarter of a Patient create's PostgreSQL CPU, growing with the log)."""
    return _no_later(f"${first}::text", f"${first + 1}::text", f"${first + 2}::int")


def _no_later(resource_type: str, resource_id: str, version: str) -> str:
    return f"coalesce(event_log_head({resource_type}, {resource_id}), 0) < {version}"


COLUMNS = "position, resource_type, resource_id, version, kind, resource, recorded_at, method, url"
# with the writing transaction and the whole request context (feed and audit)
EVENT_COLUMNS = COLUMNS + ", tx_id::text AS tx, actor, client_addr, request_id, client_id, scope_kind"


def event_values(e: VersionEvent) -> tuple:
    """The row of an event, its resource as stored (compressed: :mod:`app.events.codec`)."""
    c = e.context
    return (
        e.resource_type,
        e.resource_id,
        e.version,
        e.kind.value,
        None if e.resource is None else encode(e.resource),
        e.recorded_at,
        c.method,
        c.url,
        c.actor,
        c.client_addr,
        c.request_id,
        c.client_id,
        c.scope_kind,
    )


APPEND_CHUNK = 500
"""Events per INSERT: asyncpg encodes a statement's arguments on the event loop, so a transaction
of 10,000 entries is appended in steps that let other requests run in between."""


async def append(conn: asyncpg.Connection, events: Sequence[VersionEvent]) -> list[int]:
    """Append events inside the caller's transaction; returns their positions in order."""
    if len(events) == 1:
        return [await conn.fetchval(_APPEND_ONE, *event_values(events[0]))]
    positions: list[int] = []
    for start in range(0, len(events), APPEND_CHUNK):  # each statement's arguments encode quickly
        columns = list(zip(*(event_values(e) for e in events[start : start + APPEND_CHUNK]), strict=True))
        args = sent_columns(APPEND_TYPES, columns)
        sql = _append_sql(args is not None)
        positions += [r["position"] for r in await conn.fetch(sql, *(args or [list(c) for c in columns]))]
    return positions


def stored_event(row: asyncpg.Record) -> StoredEvent:
    """An event from a row of event_log (the envelope's optional columns when selected), its
    resource the JSON bytes (decompressed)."""
    extra = {k: row[k] for k in ("actor", "client_addr", "request_id", "client_id", "scope_kind") if k in row}
    if "tx" in row:
        extra["tx"] = int(row["tx"])
    return StoredEvent(
        position=row["position"],
        resource_type=row["resource_type"],
        resource_id=row["resource_id"],
        version=row["version"],
        kind=EventKind(row["kind"]),
        resource=decoded(row["resource"]),
        recorded_at=row["recorded_at"],
        method=row["method"],
        url=row["url"],
        **extra,
    )


async def read_version(conn: Conn, resource_type: str, resource_id: str, version: int) -> StoredEvent | None:
    row = await conn.fetchrow(
        f"SELECT {COLUMNS} FROM event_log WHERE resource_type = $1 AND resource_id = $2 AND version = $3",
        resource_type,
        resource_id,
        version,
    )
    return stored_event(row) if row else None


async def count_events(conn: Conn) -> int:
    return await conn.fetchval("SELECT count(*) FROM event_log")


async def version_count(conn: Conn, resource_type: str, resource_id: str) -> int:
    """How many versions of a resource the log holds (0: never written). A resource's versions
    are contiguous (each append writes the head's successor; an import may only start the chain
    at a later version), so this is newest - oldest + 1: two probes of the version index, not a
    count of every version (history ``total`` stays cheap at 10,000 versions)."""
    return await conn.fetchval(
        "SELECT coalesce(max(version) - min(version) + 1, 0) FROM event_log"
        " WHERE resource_type = $1 AND resource_id = $2",
        resource_type,
        resource_id,
    )


async def last_version(conn: Conn, resource_type: str, resource_id: str) -> int:
    """The newest version of a resource (0: never written). Equal to :func:`version_count` except
    for a resource imported with its versionId (its history here starts at that version)."""
    return await conn.fetchval(
        "SELECT coalesce(max(version), 0) FROM event_log WHERE resource_type = $1 AND resource_id = $2",
        resource_type,
        resource_id,
    )


async def log_exists(conn: Conn) -> bool:
    """Whether this database holds an event log (a database the migrations have not touched does not)."""
    return await conn.fetchval("SELECT to_regclass('event_log') IS NOT NULL")


async def last_position(conn: Conn) -> int:
    """The position of the newest event (0: none); cheap, unlike a count (positions may have gaps)."""
    return await conn.fetchval("SELECT coalesce(max(position), 0) FROM event_log")


async def log_bytes(conn: Conn) -> int:
    """The event log's size on disk, with its indexes and TOAST (0 when there is none)."""
    return await conn.fetchval("SELECT coalesce(pg_total_relation_size(to_regclass('event_log')), 0)")


async def max_position(conn: Conn, resource_type: str) -> int:
    """The position of the last event of a type (0: none)."""
    return await conn.fetchval(
        "SELECT coalesce(max(position), 0) FROM event_log WHERE resource_type = $1", resource_type
    )


async def counts_by_type(conn: Conn) -> dict[str, tuple[int, int]]:
    """type -> (events, last position), for the types that have events."""
    rows = await conn.fetch(
        "SELECT resource_type, count(*) AS n, max(position) AS p FROM event_log GROUP BY resource_type"
    )
    return {r["resource_type"]: (r["n"], r["p"]) for r in rows}


async def resource_types(conn: Conn) -> list[str]:
    """The types that have events."""
    return [r["resource_type"] for r in await conn.fetch("SELECT DISTINCT resource_type FROM event_log")]
