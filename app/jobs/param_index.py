"""The index build of one parameter code over resource types (the custom-parameter reindex jobs of
:mod:`app.jobs.reindex`), pipelined: the next batch is read from the log and its rows computed
while the database writes the previous one.

The last event of each resource is read once (:func:`app.events.latest.latest_before`, in id
order, :data:`BATCH` resources at a time) and projected by the search-index projector limited to
the code (its pure ``rows``: only that code's rows, cleared only from the side tables the
parameter's type fills, :func:`app.projections.search_index.param_kinds`). Each batch is then
written through the projector's ``write`` in one transaction that first takes the resources'
write locks (the advisory lock every update and delete of a resource holds until it commits):

- a write that committed before the locks were granted is seen: under the locks the batch compares
  the versions it projected with the log's last versions, and projects again, from the log, the
  few resources written since it read them;
- a write that comes after waits for the batch to commit, then replaces the resource's rows (this
  code's included) inline, with the registry that defines the code (the SearchParameter write that
  queued the job bumped the registry version, so no write that started after it lacks the code);
- a create with a server-assigned id takes no lock, but a batch only holds resources whose events
  it saw committed, so no such create is ever in flight for one of them.

No resource's rows are lost or doubled, and each batch commits on its own (a crash loses no more
than the batch in flight; the job is idempotent and runs again from the start).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import asyncpg

from app.events.feed import REPLAY_CONTEXT
from app.events.latest import LatestRow, last_events, last_versions, latest_before
from app.events.model import EventKind, VersionEvent
from app.projections.search_index import SearchIndexProjector, TypeRows, merge

Report = Callable[[dict], Awaitable[None]]

BATCH = 1000  # resources per transaction: each holds their locks, and the lock table is shared
CHUNK = 250  # resources projected between two turns of the event loop (the write in flight goes on)
_LOCK_MANY = (
    "SELECT count(pg_advisory_xact_lock(hashtextextended(k, 0)))"
    " FROM (SELECT k FROM unnest($1::text[]) k ORDER BY k) sorted"
)


@dataclass
class Projected:
    """A batch's rows, and the version of each resource they were projected from."""

    versions: dict[str, int]
    rows: TypeRows


async def _project(projector: SearchIndexProjector, resource_type: str, rows: list[LatestRow]) -> Projected:
    events = [VersionEvent(resource_type, i, v, EventKind(k), r, at, REPLAY_CONTEXT) for _, i, v, k, r, at, _ in rows]
    parts = []
    for start in range(0, len(events), CHUNK):
        parts.append(projector.rows(events[start : start + CHUNK]))
        await asyncio.sleep(0)  # let the previous batch's write take its next round trip
    merged = merge(parts).get(resource_type)
    if merged is None:
        merged = TypeRows(codes=tuple(sorted(projector.codes or ())), kinds=projector.kinds)
    return Projected({row[1]: row[2] for row in rows}, merged)


async def _reprojected(
    conn: asyncpg.Connection, projector: SearchIndexProjector, resource_type: str, batch: Projected, changed: list[str]
) -> TypeRows:
    """The batch's rows with those of the ``changed`` resources projected again from the log."""
    events, positions = await last_events(conn, resource_type, changed)
    fresh = projector.rows(events, positions).get(resource_type)
    gone = set(changed)
    rows = {kind: [r for r in kind_rows if r[0] not in gone] for kind, kind_rows in batch.rows.rows.items()}
    if fresh is not None:
        for kind, kind_rows in fresh.rows.items():
            rows[kind].extend(kind_rows)
    return TypeRows(batch.rows.clear, rows, batch.rows.codes, batch.rows.kinds)


async def _write(pool: asyncpg.Pool, projector: SearchIndexProjector, resource_type: str, batch: Projected) -> None:
    ids = list(batch.versions)
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(_LOCK_MANY, [f"{resource_type}/{i}" for i in ids])  # the writers' per-resource locks
        latest = await last_versions(conn, resource_type, ids)
        changed = [i for i, version in batch.versions.items() if latest.get(i) != version]
        rows = await _reprojected(conn, projector, resource_type, batch, changed) if changed else batch.rows
        await projector.write(conn, {resource_type: rows})


async def _index_type(
    pool: asyncpg.Pool, projector: SearchIndexProjector, resource_type: str, done: int, report: Report
) -> int:
    writing: asyncio.Task | None = None
    below: str | None = None
    written = 0
    try:
        while True:
            rows = await latest_before(pool, resource_type, None, below, BATCH)
            batch = await _project(projector, resource_type, rows)
            if writing is not None:
                await writing
                done += written
                await report({"resources": done, "type": resource_type})
            if not rows:
                return done
            writing = asyncio.create_task(_write(pool, projector, resource_type, batch))
            written, below = len(rows), rows[-1][1]
    except BaseException:
        if writing is not None and not writing.done():
            writing.cancel()
            await asyncio.gather(writing, return_exceptions=True)
        raise


async def index_code(pool: asyncpg.Pool, code: str, types: list[str], kinds: frozenset[str], report: Report) -> None:
    """Rebuild the rows of one parameter code over ``types`` from the last event of each resource;
    ``kinds``: the side tables rows of the code may be in (besides those the new rows fill)."""
    projector = SearchIndexProjector(codes=frozenset({code}), kinds=kinds)
    done = 0
    for resource_type in types:
        done = await _index_type(pool, projector, resource_type, done, report)
