"""Replay's bulk load: the first pass of a rebuild projects the last event of each resource whose
events all come from transactions below a horizon (every transaction below it had finished when
the rebuild started), straight into index-less shadow tables.

Each resource is loaded once, so nothing is ever cleared or replaced: superseded versions are
passed over as they are read (never decoded or projected), the tables need no index while they fill
(:mod:`app.projections.shadow_indexes` builds them afterwards) and the rows go in with plain COPY.
The rows are the inline projectors' own (their pure ``rows``), encoded as COPY data
(:mod:`app.projections.copy_text`): the search rows in worker processes when there are any (they
get each live resource's key and stored bytes), the current-state rows, the log's columns as they
are, in the parent, which reads the log and forwards bytes. It reads the log in position order
(:func:`app.events.latest.latest_in_log_order`), so the tables fill in the order of their rows' keys
(a resource's key is the position of its first event) and the sorts of the index builds afterwards
find their input nearly sorted. Events of transactions at or above the horizon are replayed
afterwards by the gap-free reader, from the cursor ``(horizon - 1, LAST_POSITION)``
(:mod:`app.projections.rebuild`)."""

from __future__ import annotations

import asyncio
import functools
import gc
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

import asyncpg
import orjson

from app.events.codec import decode
from app.events.feed import FeedCursor
from app.events.latest import LatestRow, latest_in_log_order, updated_last_versions
from app.events.model import EventKind
from app.projections.copy_text import encode_typed
from app.projections.current_state import COLUMN_TYPES, CurrentStateProjector
from app.projections.rebuild_state import LAST_POSITION, SHADOW, RebuildInterrupted, feed_state, save
from app.projections.search_index import EncodedRows, SearchIndexProjector, encode
from app.projections.text_load import CheckedTexts, as_rows

BULK_MIN = 500  # batches at least this large go through the worker processes (spawned on first use)

Progress = Callable[[int], None]
P = ParamSpec("P")
T = TypeVar("T")
Encoded = tuple[bytes, EncodedRows]
"""A batch's current-state rows and search rows, as COPY data."""


_DELETED = EventKind.DELETED.value  # the log's kind column as read


def uncollected(function: Callable[P, T]) -> Callable[P, T]:
    """``function`` run with the cyclic garbage collector paused (for the projection of a batch).

    Everything a batch parses and projects stays alive until the batch is encoded, so each
    collection of the young generation traverses thousands of live objects and moves them on, and
    the older generations are collected in turn, the whole heap (the registry and the FHIR type
    model among it) now and then: measured in a worker over the Observations of bench/replay.py,
    181 young, 17 middle and 1 full collection, about 4 us of the 55 us of CPU per resource, and
    nothing freed (reference counting frees the batch; the rows hold no cycles). The collector runs
    again afterwards, so cyclic garbage is still collected, once per batch at most."""

    @functools.wraps(function)
    def run(*args: P.args, **kwargs: P.kwargs) -> T:
        if not gc.isenabled():
            return function(*args, **kwargs)
        gc.disable()
        try:
            return function(*args, **kwargs)
        finally:
            gc.enable()

    return run


def current_rows(rows: list[LatestRow]) -> bytes:
    """The current-state rows of the last events ``rows`` (each resource once, keyed by the position
    of its first event), as COPY data: the log's columns as they are, nothing parsed (the parent
    encodes them, compiled: a tenth of a microsecond a row; sent to a worker, a row's timestamp and
    id cost more to pickle than that)."""
    current = [(i, v, k == _DELETED, at, position, first) for position, i, v, k, _, at, first in rows]
    return encode_typed(current, COLUMN_TYPES)


Stored = list[tuple[int, bytes]]
"""The resources of a batch's live last events as the log stores them, each with its key (the
position of its first event): what a worker gets."""


def stored_resources(rows: list[LatestRow]) -> Stored:
    return [(first, r) for _, _, _, k, r, _, first in rows if k != _DELETED and r is not None]


@uncollected
def encode_stored(resources: Stored) -> EncodedRows:
    """The search rows of ``resources`` (in a worker process, or inline: the decompression is spread
    over the workers with the rest), as :class:`SearchIndexProjector` gives them for these events,
    computed straight from the stored bytes (no event object is built: a few us a resource of a
    replay's workers)."""
    return encode((first, orjson.loads(decode(r))) for first, r in resources)


def encode_latest(resource_type: str, rows: list[LatestRow]) -> Encoded:
    """The projection rows of the last events ``rows`` (each resource once), their resources as
    stored in the log: the rows :class:`CurrentStateProjector` and :class:`SearchIndexProjector`
    give for these events, each resource keyed by the position of its first event."""
    return current_rows(rows), encode_stored(stored_resources(rows))


def _joined(parts: list[Encoded]) -> Encoded:
    current = b"".join(p[0] for p in parts)
    search: EncodedRows = {}
    for _, rows in parts:
        for kind, data in rows.items():
            before = search.get(kind)
            if before is None:
                search[kind] = data
            elif type(before) is type(data):
                search[kind] = before + data  # type: ignore[operator]
            else:  # grouped full-text rows and rows one by one (:mod:`app.projections.text_load`)
                search[kind] = as_rows(before) + as_rows(data)  # type: ignore[arg-type]
    return current, search


def _encoding(resource_type: str, rows: list[LatestRow], executor: ProcessPoolExecutor | None) -> asyncio.Future:
    """Start encoding a batch: the current-state rows here, the search rows split over the worker
    processes (or here too, for a small batch or without workers)."""
    loop = asyncio.get_running_loop()
    if executor is None or len(rows) < BULK_MIN:
        done = loop.create_future()
        done.set_result([encode_latest(resource_type, rows)])
        return done
    resources = stored_resources(rows)
    workers = executor._max_workers
    size = max(1, -(-len(resources) // workers))
    parts = [resources[i : i + size] for i in range(0, len(resources), size)]
    current = current_rows(rows)
    searched = asyncio.gather(*(loop.run_in_executor(executor, encode_stored, p) for p in parts))
    return asyncio.ensure_future(_with_current(current, searched))


async def _with_current(current: bytes, searched: asyncio.Future) -> list[Encoded]:
    return [(current, {})] + [(b"", search) for search in await searched]


@dataclass
class Loaded:
    events: int  # the events the loaded rows stand for (a resource's last version v: v events)
    state: dict  # the rebuild's state once loaded: the reader's cursor after the horizon


async def load_latest(
    pool: asyncpg.Pool,
    resource_type: str,
    state: dict,
    batch: int,
    progress: Progress | None = None,
    stop_after: int | None = None,
    executor: ProcessPoolExecutor | None = None,
) -> Loaded:
    """Load the shadow tables from ``state["load"]`` on, one transaction per batch with its state."""
    load, checkpoint, events, batches = dict(state["load"]), state["checkpoint"], 0, 0
    horizon = int(load["horizon"])
    checked = CheckedTexts()  # the texts whose full-text documents earlier batches checked
    updated = await updated_last_versions(pool, resource_type, horizon)

    async def fetch(after: int | None) -> tuple[list[LatestRow], int | None, asyncio.Future]:
        if after is None:
            return [], None, _encoding(resource_type, [], None)
        rows, following = await latest_in_log_order(pool, resource_type, horizon, after, batch, updated)
        return rows, following, _encoding(resource_type, rows, executor)

    upcoming = await fetch(load["after"])
    while True:
        rows, following, encoding = upcoming
        if not rows and following is None:
            cursor = FeedCursor(horizon - 1, LAST_POSITION)
            done = feed_state(state["versions"], cursor, checkpoint) | {"indexes": state.get("indexes", [])}
            async with pool.acquire() as conn:
                await save(conn, resource_type, done, None)
            return Loaded(events, done)
        upcoming = await fetch(following)
        if not rows:
            continue  # a batch of superseded events only: nothing to load (nor encoded)
        current, search = _joined(await encoding)
        load["after"], checkpoint = following, max(checkpoint, max(r[0] for r in rows))
        async with pool.acquire() as conn, conn.transaction():
            # a crash may lose the last batches, never part of one: the rebuild resumes before them;
            # the rows counted as inserted go to the statistics at the commit, not up to a second
            # later, so that the ANALYZE after the load counts them all (autovacuum then finds no
            # rows changed since; app/projections/shadow_statistics.py)
            await conn.execute("SET LOCAL synchronous_commit = off; SELECT pg_stat_force_next_flush()")
            await CurrentStateProjector(SHADOW).load(conn, resource_type, current)
            await SearchIndexProjector(SHADOW).load(conn, resource_type, search, checked)
            state = state | {"load": dict(load), "checkpoint": checkpoint}
            await save(conn, resource_type, state, None)
        covered = sum(r[2] for r in rows)
        events, batches = events + covered, batches + 1
        if progress:
            progress(covered)
        if stop_after is not None and batches >= stop_after:
            await upcoming[2]
            raise RebuildInterrupted(checkpoint)
