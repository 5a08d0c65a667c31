"""Rebuilding the projections of a resource type by replaying the event log into shadow tables,
while the server keeps serving (ARCHITECTURE.md: replay; STYLE.md: checkpoints).

1. Shadow tables (``<table>__s``) are created, without indexes; the rebuild's state is stored in
   ``projection_state.rebuild`` in the same transaction as each batch
   (:mod:`app.projections.rebuild_state`), so a killed rebuild resumes from it (or starts clean
   when the code's version changed meanwhile). The live tables are never touched until the swap,
   so they are never half-built.
2. Bulk load (:mod:`app.projections.bulk_load`): the last event of each resource written by the
   transactions below a horizon (all finished when the rebuild started) is projected through the
   projectors' pure ``rows``, in worker processes, and COPYed in; then the indexes are built
   (:mod:`app.projections.shadow_indexes`). Events of later transactions are read with the log's
   gap-free reader (:func:`app.events.feed.read_after`: only finished transactions, in
   ``(tx_id, position)`` order, so an event that commits later with a lower position is read
   later, never skipped) from the horizon on and replayed in batches through the same two
   functions the write path runs inline (each projector's ``rows`` and its ``write``; large
   batches compute ``rows`` in worker processes and ``write`` with COPY). The checkpoint is the
   reader's cursor ``(tx, position)``.
3. Catch-up: events committed meanwhile are read and replayed the same way.
4. Swap, in one short transaction: ``LOCK`` the live current-state table in ACCESS EXCLUSIVE mode
   (every writer of the type writes it before its commit, so once the lock is held every write of
   the type has committed, rolled back, or waits for the swap and projects into the new tables
   after it), read what is left after the cursor with the same reader (its horizon lifted, since
   no writer of the type can pass the lock), rename the shadow tables into place, drop the old
   ones, and record the new versions and checkpoint. Nothing needs reconciling: the reader missed
   no committed event, and the uncommitted ones are projected inline after the swap.
"""

from __future__ import annotations

import asyncio
import os
import zlib
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing import get_context

import asyncpg

from app.events.feed import FeedCursor, count_after, cursor_of, read_after, version_events
from app.events.latest import finished_horizon
from app.events.model import EventKind, RequestContext, StoredEvent, VersionEvent
from app.events.store import max_position
from app.projections import bulk_load, custom_params, fork_server
from app.projections.current_state import CurrentStateProjector, current_table, table_ddl
from app.projections.rebuild_empty import live_tables, recreate_if_empty
from app.projections.rebuild_state import (
    SHADOW,
    RebuildInterrupted,
    feed_state,
    load_state,
    resume_cursor,
    save,
    versions_of,
)
from app.projections.search_ddl import lookup_index_ddl, search_index_ddl
from app.projections.search_index import KINDS as SEARCH_KINDS
from app.projections.search_index import (
    SearchIndexProjector,
    SearchRows,
    TypeRows,
    merge,
    search_table,
)
from app.projections.shadow_indexes import build_indexes, run_spread, strip_indexes
from app.projections.shadow_statistics import analyze_statements, vacuum_command
from app.projections.state import projection_name, record_rebuilt
from app.search_types.protocol import stored_name
from app.search_types.registry import TABLES

__all__ = [
    "SHADOW",
    "RebuildInterrupted",
    "RebuildResult",
    "custom_definitions",
    "live_tables",
    "pending_events",
    "rebuild_type",
    "replay_batches",
    "replay_executor",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

Progress = Callable[[int], None]  # called with the number of events just replayed


@dataclass
class RebuildResult:
    resource_type: str
    events: int
    resumed_from: int  # the position of the resume cursor (0: from the start)
    checkpoint: int


async def _write(
    conn: asyncpg.Connection, events: list[VersionEvent], positions: list[int], search: SearchRows | None = None
) -> None:
    """Write a batch into the shadow tables through the inline projectors' ``write``; ``search``:
    its search rows already computed (in the worker processes), then written with COPY."""
    bulk = search is not None
    await CurrentStateProjector(SHADOW).write(conn, CurrentStateProjector().rows(events, positions), bulk)
    index = SearchIndexProjector(SHADOW)
    await index.write(conn, search if search is not None else index.rows(events, positions), bulk)


def _init_worker(custom_definitions: list[bytes]) -> None:
    """A replay worker process: the same registry as the parent, custom parameters included, and the
    garbage collector's young generation collected in larger steps (:mod:`app.collector`)."""
    from app.collector import tune_collector
    from app.projections.custom_params import load_definitions

    tune_collector()
    load_definitions(custom_definitions)


_REPLAYED = RequestContext("REPLAY", "")  # search rows do not depend on the request context

WireEvent = tuple[str, str, int, str, bytes | None]
"""An event as sent to a worker: (type, id, version, kind, resource); plain tuples pickle several
times faster than the frozen dataclasses, and the search rows need nothing else."""

WireRows = dict[str, tuple[list[str], dict[str, list[tuple]], tuple[str, ...] | None]]


@bulk_load.uncollected
def _rows_for(events: list[WireEvent]) -> WireRows:
    """The search rows of a part of a batch (in a worker: the inline projector's ``rows``)."""
    rebuilt = [VersionEvent(t, i, v, EventKind(k), r, _EPOCH, _REPLAYED) for t, i, v, k, r in events]
    rows = SearchIndexProjector().rows(rebuilt)
    return {t: (tr.clear, tr.rows, tr.codes) for t, tr in rows.items()}


def _from_wire(parts: list[WireRows]) -> SearchRows:
    return merge([{t: TypeRows(clear, rows, codes) for t, (clear, rows, codes) in part.items()} for part in parts])


def replay_executor(custom_definitions: list[bytes]) -> ProcessPoolExecutor:
    """Worker processes for the CPU-bound part of a replay (extracting search values), forked from
    a fork server that has loaded what they run (:mod:`app.projections.replay_preload`): a clean
    process (no thread, socket or connection of the caller's is inherited, unlike a fork of the
    caller), started once per process. The fork server loads the main module too, once (see
    :mod:`app.projections.fork_server`): a worker forked from it then finds it loaded (each one
    loaded it itself: 0.06-0.25 s of CPU). The server starts here, so it loads them while the
    caller prepares the shadow tables and reads the first batch (started by the first batch's
    workers, it made them wait)."""
    context = get_context("forkserver")
    context.set_forkserver_preload(["__main__", "app.projections.replay_preload"])
    fork_server.ensure_running()
    return ProcessPoolExecutor(
        max_workers=os.cpu_count() or 2,
        mp_context=context,
        initializer=_init_worker,
        initargs=(custom_definitions,),
    )


def _extract_async(events: list[VersionEvent], executor: ProcessPoolExecutor) -> asyncio.Future:
    """Start computing the search rows of a batch in the worker processes; each worker gets every
    event of its share of the resources, so the merged parts are the rows of the whole batch."""
    workers = executor._max_workers
    shares: list[list[WireEvent]] = [[] for _ in range(workers)]
    for e in events:
        share = shares[zlib.crc32(e.resource_id.encode()) % workers]
        share.append((e.resource_type, e.resource_id, e.version, e.kind.value, e.resource))
    loop = asyncio.get_running_loop()
    parts = [loop.run_in_executor(executor, _rows_for, share) for share in shares if share]
    return asyncio.gather(*parts)


_WHILE_BUILT = "autovacuum_enabled = false, parallel_workers = 0"
"""The shadow tables' storage parameters until :func:`_analyze` resets them, so the live tables get
the defaults. Autovacuum would only get in the way: the load and then ``_analyze`` vacuum them. No
parallel index builds: two connections already build at a time (and the other type loads meanwhile)
on a 2-core machine, and a build with a parallel worker took 10-40% more PostgreSQL CPU (its scan
split, two sorts merged) for no gain in time (measured on the Observation side tables of
bench/replay.py; ``parallel_workers`` caps PostgreSQL's choice of workers for an index build)."""
_BUILT_OPTIONS = ", ".join(option.split(" = ")[0] for option in _WHILE_BUILT.split(", "))


async def _prepare(conn: asyncpg.Connection, resource_type: str) -> dict:
    """Create (or resume) the shadow tables; returns the rebuild's state (see the module docstring)."""
    versions = versions_of(resource_type)
    state = await load_state(conn, resource_type)
    shadow_exists = await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", current_table(resource_type) + SHADOW)
    # a load state of before its log-order reader (``below``, an id) starts again
    resumable = state is not None and ("after" in state.get("load", {}) or "tx" in state)
    if state and state.get("versions") == versions and shadow_exists and resumable:
        return state
    await conn.execute(";\n".join(f"DROP TABLE IF EXISTS {t}{SHADOW}" for t in live_tables(resource_type)))
    await conn.execute(table_ddl(resource_type, SHADOW))
    await conn.execute(search_index_ddl(resource_type, SHADOW, lookup_indexes=False))  # built after the load
    shadows = [t + SHADOW for t in live_tables(resource_type)]
    indexes = await strip_indexes(conn, shadows)
    await conn.execute(";\n".join(f"ALTER TABLE {t} SET ({_WHILE_BUILT})" for t in shadows))
    horizon = await finished_horizon(conn)
    state = {"versions": versions, "checkpoint": 0, "load": {"horizon": horizon, "after": 0}, "indexes": indexes}
    # the status stays as it was: a ready projection keeps being served while its shadow is built
    await save(conn, resource_type, state, None)
    return state


async def replay_batches(
    pool: asyncpg.Pool,
    resource_type: str,
    start: FeedCursor | None,
    batch: int,
    progress: Progress | None,
    stop_after: int | None = None,
    executor: ProcessPoolExecutor | None = None,
) -> tuple[int, FeedCursor | None]:
    """Replay the events after ``start`` into the shadow tables, one transaction per batch (with its
    checkpoint). Returns (events replayed, the cursor after the last one)."""
    cursor, total, batches = start, 0, 0
    versions = versions_of(resource_type)

    async def fetch(after: FeedCursor | None) -> tuple[list[StoredEvent], asyncio.Future | None]:
        stored = await read_after(pool, after, batch, resource_type)
        bulk = executor is not None and len(stored) >= bulk_load.BULK_MIN
        return stored, _extract_async(version_events(stored)[0], executor) if bulk else None  # type: ignore[arg-type]

    upcoming = await fetch(cursor)
    while True:
        stored, extraction = upcoming
        if not stored:
            return total, cursor
        # a short batch means caught up to the writers: the swap replays what came after, under
        # its lock (waiting for an empty read would chase writers that are as fast as the replay)
        short = len(stored) < batch
        # the next batch is read and its extraction started while this one is written
        upcoming = ([], None) if short else await fetch(cursor_of(stored[-1]))
        async with pool.acquire() as conn, conn.transaction():
            await _write(
                conn, *version_events(stored), _from_wire(await extraction) if extraction is not None else None
            )
            cursor = cursor_of(stored[-1])
            await save(conn, resource_type, feed_state(versions, cursor), None)
        total += len(stored)
        batches += 1
        if progress:
            progress(len(stored))
        if stop_after is not None and batches >= stop_after:
            if upcoming[1] is not None:
                await upcoming[1]
            raise RebuildInterrupted(cursor.position)
        if short:
            return total, cursor


def _live_names(resource_type: str) -> dict[str, str]:
    """Each shadow side table's index and statistics names, as stored, to the live table's: a long
    type's shadow name is cut to 63 bytes, so the live name cannot be read back off it."""
    out: dict[str, str] = {}
    for kind in SEARCH_KINDS:
        table = search_table(resource_type, kind)
        for name in TABLES[kind].object_names(table):
            out[stored_name(table + SHADOW + name[len(table) :])] = name
    return out


async def _rename_shadows(conn: asyncpg.Connection, resource_type: str) -> None:
    live = _live_names(resource_type)
    for table in live_tables(resource_type):
        await conn.execute(f"ALTER TABLE {table} RENAME TO {table}__old")
        await conn.execute(f"ALTER TABLE {table}{SHADOW} RENAME TO {table}")
        await conn.execute(f"DROP TABLE {table}__old")
        indexes = await conn.fetch("SELECT indexname FROM pg_indexes WHERE tablename = $1", table)
        for row in indexes:
            index = row["indexname"]
            if index.startswith(table + SHADOW):
                renamed = live.get(index, table + index[len(table) + len(SHADOW) :])
                await conn.execute(f'ALTER INDEX "{index}" RENAME TO "{renamed}"')
        objects = await conn.fetch("SELECT stxname FROM pg_statistic_ext WHERE stxrelid = $1::regclass", table)
        for row in objects:  # the planner's extended statistics (app/search_types/protocol.py)
            name = row["stxname"]
            if name.startswith(table + SHADOW):
                renamed = live.get(name, table + name[len(table) + len(SHADOW) :])
                await conn.execute(f'ALTER STATISTICS "{name}" RENAME TO "{renamed}"')


async def _swap(conn: asyncpg.Connection, resource_type: str, cursor: FeedCursor | None, batch: int) -> int:
    """Replay what is left and put the shadow tables in place (see the module docstring, step 4);
    returns the number of events replayed."""
    await conn.execute(f"LOCK TABLE {current_table(resource_type)} IN ACCESS EXCLUSIVE MODE")
    replayed = 0
    while stored := await read_after(conn, cursor, batch, resource_type, writers_excluded=True):
        await _write(conn, *version_events(stored))
        cursor, replayed = cursor_of(stored[-1]), replayed + len(stored)
    await _rename_shadows(conn, resource_type)
    await record_rebuilt(conn, resource_type, await max_position(conn, resource_type))
    return replayed


async def _build_indexes(pool: asyncpg.Pool, resource_type: str, state: dict) -> dict:
    """Build the shadow tables' indexes (the stripped ones and the lookup indexes) over two
    connections; returns the state without the indexes still to build."""
    lookups = [line for line in lookup_index_ddl(resource_type, SHADOW).splitlines() if line.strip()]
    await build_indexes(pool, state.get("indexes", []), lookups)
    state = {k: v for k, v in state.items() if k != "indexes"}
    async with pool.acquire() as conn:
        await save(conn, resource_type, state, None)
    return state


async def _analyze(pool: asyncpg.Pool, resource_type: str) -> None:
    """Statistics (the planner's per-parameter counts) and the visibility map (index-only scans);
    autovacuum looks after the tables again from here on. See
    :mod:`app.projections.shadow_statistics`."""
    shadows = [t + SHADOW for t in live_tables(resource_type)]
    await run_spread(pool, analyze_statements(resource_type, await vacuum_command(pool)))
    await pool.execute(";\n".join(f"ALTER TABLE {t} RESET ({_BUILT_OPTIONS})" for t in shadows))


async def rebuild_type(
    pool: asyncpg.Pool,
    resource_type: str,
    *,
    batch: int = 5000,
    progress: Progress | None = None,
    stop_after_batches: int | None = None,
    executor: ProcessPoolExecutor | None = None,
) -> RebuildResult:
    """Rebuild one type's projections; ``executor`` (see :func:`replay_executor`) spreads the
    extraction of search values over worker processes. A type the log holds no event of has its
    tables recreated empty in one transaction (:mod:`app.projections.rebuild_empty`)."""
    if await recreate_if_empty(pool, resource_type):
        return RebuildResult(resource_type, 0, 0, 0)
    async with pool.acquire() as conn, conn.transaction():
        await custom_params.sync(conn)  # the parameters the live index is built with
        state = await _prepare(conn, resource_type)
    resumed_from, loaded = int(state["checkpoint"]), 0
    if "load" in state:
        result = await bulk_load.load_latest(pool, resource_type, state, batch, progress, stop_after_batches, executor)
        loaded, state = result.events, result.state
    state = await _build_indexes(pool, resource_type, state)
    replayed, cursor = await replay_batches(
        pool, resource_type, resume_cursor(state), batch, progress, stop_after_batches, executor
    )
    await _analyze(pool, resource_type)
    async with pool.acquire() as conn, conn.transaction():
        caught_up = await _swap(conn, resource_type, cursor, batch)
    if progress and caught_up:
        progress(caught_up)
    final = await pool.fetchval(
        "SELECT checkpoint FROM projection_state WHERE name = $1", projection_name("current_state", resource_type)
    )
    return RebuildResult(resource_type, loaded + replayed + caught_up, resumed_from, final)


async def pending_events(pool: asyncpg.Pool, resource_type: str) -> int:
    """Events a rebuild of the type would replay (from its resume point)."""
    state = await load_state(pool, resource_type)
    if state and "load" in state:
        return await count_after(pool, None, resource_type)
    return await count_after(pool, resume_cursor(state), resource_type)


async def custom_definitions(pool: asyncpg.Pool) -> list[bytes]:
    """The definitions of the custom SearchParameters in use (for replay workers), loaded into this
    process's registry too."""
    async with pool.acquire() as conn:
        await custom_params.sync(conn)
    return await custom_params.current_definitions(pool)
