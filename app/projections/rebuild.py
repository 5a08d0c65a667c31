"""Rebuilding the projections of a resource type by replaying the event log into shadow tables,
while the server keeps serving (ARCHITECTURE.md: replay; STYLE.md: checkpoints).

1. Shadow tables (``<table>__s``) are created; the rebuild's checkpoint is stored in
   ``projection_state.rebuild`` in the same transaction as each batch, so a killed rebuild resumes
   from it (or starts clean when the code's version changed meanwhile). The live tables are never
   touched until the swap, so they are never half-built.
2. Events of the type are replayed in position order in large batches through the same
   projectors the write path runs inline (pure functions of events).
3. Catch-up: events appended meanwhile are replayed the same way.
4. Swap, in one short transaction: ``LOCK`` the live current-state table (every writer of the
   type holds it until commit, so no write of the type is in flight or can start), replay what is
   left, then reconcile by version against the live current-state table (a transaction that took
   a lower position but committed after the batch passed it shows up there), rename the shadow
   tables into place, drop the old ones, and record the new versions and checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import asyncpg
import orjson

from app.events.model import EventKind, RequestContext, VersionEvent
from app.projections.current_state import CurrentStateProjector, current_table, table_ddl
from app.projections.search_index import KINDS as SEARCH_KINDS
from app.projections.search_index import SearchIndexProjector, search_index_ddl, search_table
from app.projections.state import expected_version, projection_name

SHADOW = "__s"
_CONTEXT = RequestContext("REPLAY", "")

Progress = Callable[[int], None]  # called with the number of events just replayed


def live_tables(resource_type: str) -> list[str]:
    return [current_table(resource_type)] + [search_table(resource_type, k) for k in SEARCH_KINDS]


@dataclass
class RebuildResult:
    resource_type: str
    events: int
    resumed_from: int
    reconciled: int
    checkpoint: int


def _events(rows: list[asyncpg.Record], resource_type: str) -> tuple[list[VersionEvent], list[int]]:
    events = [
        VersionEvent(
            resource_type,
            r["resource_id"],
            r["version"],
            EventKind(r["kind"]),
            r["resource"],
            r["recorded_at"],
            _CONTEXT,
        )
        for r in rows
    ]
    return events, [r["position"] for r in rows]


_BATCH_SQL = (
    "SELECT position, resource_id, version, kind, resource, recorded_at FROM event_log"
    " WHERE resource_type = $1 AND position > $2 ORDER BY position LIMIT $3"
)


async def _apply(conn: asyncpg.Connection, events: list[VersionEvent], positions: list[int]) -> None:
    await CurrentStateProjector(SHADOW).apply(conn, events, positions)
    await SearchIndexProjector(SHADOW).apply(conn, events, positions)


async def _prepare(conn: asyncpg.Connection, resource_type: str) -> int:
    """Create (or resume) the shadow tables; returns the checkpoint to replay from."""
    versions = {k: expected_version(k, resource_type) for k in ("current_state", "search_index")}
    name = projection_name("current_state", resource_type)
    row = await conn.fetchrow("SELECT rebuild FROM projection_state WHERE name = $1", name)
    state = orjson.loads(row["rebuild"]) if row and row["rebuild"] else None
    shadow_exists = await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", current_table(resource_type) + SHADOW)
    if state and state.get("versions") == versions and shadow_exists:
        return int(state["checkpoint"])
    for table in live_tables(resource_type):
        await conn.execute(f"DROP TABLE IF EXISTS {table}{SHADOW}")
    await conn.execute(table_ddl(resource_type, SHADOW))
    await conn.execute(search_index_ddl(resource_type, SHADOW))
    await _save(conn, resource_type, {"versions": versions, "checkpoint": 0}, "rebuilding")
    return 0


async def _save(conn: asyncpg.Connection, resource_type: str, state: dict | None, status: str | None) -> None:
    for kind in ("current_state", "search_index"):
        await conn.execute(
            "INSERT INTO projection_state (name, kind, resource_type, version, status, rebuild)"
            " VALUES ($1, $2, $3, $4, COALESCE($6, 'ready'), $5::jsonb)"
            " ON CONFLICT (name) DO UPDATE SET rebuild = EXCLUDED.rebuild,"
            " status = COALESCE($6, projection_state.status), updated_at = now()",
            projection_name(kind, resource_type),
            kind,
            resource_type,
            expected_version(kind, resource_type),
            orjson.dumps(state).decode() if state else None,
            status,
        )


async def replay_batches(
    pool: asyncpg.Pool,
    resource_type: str,
    start: int,
    batch: int,
    progress: Progress | None,
    stop_after: int | None = None,
) -> tuple[int, int]:
    """Replay events after ``start`` into the shadow tables, one transaction per batch (with its
    checkpoint). Returns (events replayed, last checkpoint)."""
    checkpoint, total, batches = start, 0, 0
    versions = {k: expected_version(k, resource_type) for k in ("current_state", "search_index")}
    while True:
        async with pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(_BATCH_SQL, resource_type, checkpoint, batch)
            if not rows:
                return total, checkpoint
            events, positions = _events(rows, resource_type)
            await _apply(conn, events, positions)
            checkpoint = positions[-1]
            await _save(conn, resource_type, {"versions": versions, "checkpoint": checkpoint}, None)
        total += len(rows)
        batches += 1
        if progress:
            progress(len(rows))
        if stop_after is not None and batches >= stop_after:
            raise RebuildInterrupted(checkpoint)


class RebuildInterrupted(Exception):
    """Raised by a test hook to simulate a rebuild killed between batches."""


async def _swap(conn: asyncpg.Connection, resource_type: str, checkpoint: int, batch: int) -> tuple[int, int]:
    live = current_table(resource_type)
    await conn.execute(f"LOCK TABLE {live} IN ACCESS EXCLUSIVE MODE")
    replayed = 0
    while True:
        rows = await conn.fetch(_BATCH_SQL, resource_type, checkpoint, batch)
        if not rows:
            break
        events, positions = _events(rows, resource_type)
        await _apply(conn, events, positions)
        checkpoint, replayed = positions[-1], replayed + len(rows)
    behind = await conn.fetch(
        f"SELECT l.id, l.version FROM {live} l LEFT JOIN {live}{SHADOW} s ON s.id = l.id"
        " WHERE s.version IS DISTINCT FROM l.version"
    )
    if behind:
        rows = await conn.fetch(
            "SELECT e.position, e.resource_id, e.version, e.kind, e.resource, e.recorded_at"
            " FROM unnest($2::text[], $3::int[]) AS b(id, version)"
            " JOIN event_log e ON e.resource_type = $1 AND e.resource_id = b.id AND e.version = b.version"
            " ORDER BY e.position",
            resource_type,
            [r["id"] for r in behind],
            [r["version"] for r in behind],
        )
        events, positions = _events(rows, resource_type)
        await _apply(conn, events, positions)
    for table in live_tables(resource_type):
        await conn.execute(f"ALTER TABLE {table} RENAME TO {table}__old")
        await conn.execute(f"ALTER TABLE {table}{SHADOW} RENAME TO {table}")
        await conn.execute(f"DROP TABLE {table}__old")
        indexes = await conn.fetch("SELECT indexname FROM pg_indexes WHERE tablename = $1", table)
        for row in indexes:
            index = row["indexname"]
            if index.startswith(table + SHADOW):
                await conn.execute(f'ALTER INDEX "{index}" RENAME TO "{table}{index[len(table) + len(SHADOW) :]}"')
    max_position = await conn.fetchval(
        "SELECT coalesce(max(position), 0) FROM event_log WHERE resource_type = $1", resource_type
    )
    for kind in ("current_state", "search_index"):
        await conn.execute(
            "UPDATE projection_state SET version = $2, status = 'ready', checkpoint = $3, rebuild = NULL,"
            " updated_at = now() WHERE name = $1",
            projection_name(kind, resource_type),
            expected_version(kind, resource_type),
            max_position,
        )
    return replayed, len(behind)


async def rebuild_type(
    pool: asyncpg.Pool,
    resource_type: str,
    *,
    batch: int = 5000,
    progress: Progress | None = None,
    stop_after_batches: int | None = None,
) -> RebuildResult:
    async with pool.acquire() as conn, conn.transaction():
        start = await _prepare(conn, resource_type)
    replayed, checkpoint = await replay_batches(pool, resource_type, start, batch, progress, stop_after_batches)
    async with pool.acquire() as conn, conn.transaction():
        caught_up, reconciled = await _swap(conn, resource_type, checkpoint, batch)
    if progress and caught_up:
        progress(caught_up)
    final = await pool.fetchval(
        "SELECT checkpoint FROM projection_state WHERE name = $1", projection_name("current_state", resource_type)
    )
    return RebuildResult(resource_type, replayed + caught_up, start, reconciled, final)


async def pending_events(pool: asyncpg.Pool, resource_type: str) -> int:
    """Events a rebuild of the type would replay (from its resume point)."""
    row = await pool.fetchrow(
        "SELECT rebuild FROM projection_state WHERE name = $1", projection_name("current_state", resource_type)
    )
    start = int(orjson.loads(row["rebuild"]).get("checkpoint", 0)) if row and row["rebuild"] else 0
    return await pool.fetchval(
        "SELECT count(*) FROM event_log WHERE resource_type = $1 AND position > $2", resource_type, start
    )
