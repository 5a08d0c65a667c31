"""The inline projection: the projectors run inside the write transaction, right after the append.

Each projector is a pure ``rows(events, positions)`` plus one ``write(conn, rows, bulk)``; replay
(app/projections/rebuild.py) and the reindex of a custom parameter (app/jobs/reindex.py) call the
same two, so the log replayed gives the rows the inline path wrote.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Protocol

import asyncpg

from app.events.model import VersionEvent
from app.projections.current_state import CurrentStateProjector
from app.projections.search_index import SearchIndexProjector


class Projector(Protocol):
    name: str
    version: str

    def rows(self, events: Sequence[VersionEvent], positions: Sequence[int]) -> Any: ...

    async def write(self, conn: asyncpg.Connection, rows: Any, bulk: bool = False) -> None: ...


INLINE_PROJECTORS: list[Projector] = [CurrentStateProjector(), SearchIndexProjector()]


OFFLOAD_EVENTS = 200
"""A write of this many versions computes its rows (search-value extraction is CPU work) in a worker
thread, so a large transaction does not stall other requests on the event loop."""


CHUNK_EVENTS = 500
"""A large write is projected in steps of this many versions (in log order, so a later step's rows
win), each step's statements small enough to encode without stalling the event loop."""


async def project(conn: asyncpg.Connection, events: Sequence[VersionEvent], positions: Sequence[int]) -> None:
    if len(events) < OFFLOAD_EVENTS:
        for projector in INLINE_PROJECTORS:
            await projector.write(conn, projector.rows(events, positions))
        return
    for start in range(0, len(events), CHUNK_EVENTS):
        chunk, chunk_positions = events[start : start + CHUNK_EVENTS], positions[start : start + CHUNK_EVENTS]
        for projector in INLINE_PROJECTORS:
            rows = await asyncio.to_thread(projector.rows, chunk, chunk_positions)
            await projector.write(conn, rows)
