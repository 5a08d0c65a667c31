"""Long loops over a request's entries give the event loop back now and then, so one large
transaction's CPU work (thousands of entries) does not stall every other client's request."""

from __future__ import annotations

import asyncio
import time

YIELD_EVERY = 32
"""Entries between two pauses: a few milliseconds of work at most."""

SLICE_SECONDS = 0.001
"""The CPU work a :class:`Slices` loop does between two pauses: the GIL switch interval ``serve`` sets
(app/cli.py), so other tasks wait no longer than they did for a worker thread's share."""


async def pause(done: int) -> None:
    """Let other tasks run after every :data:`YIELD_EVERY` items (``done`` counts from 0)."""
    if done and done % YIELD_EVERY == 0:
        await asyncio.sleep(0)


class Slices:
    """Pauses by the clock, for loops whose items differ widely in cost (a valid resource is
    checked in tens of microseconds, one the walker must describe in milliseconds): other tasks
    run once :data:`SLICE_SECONDS` of work has been done since the last pause."""

    def __init__(self) -> None:
        self._since = time.perf_counter()

    async def pause(self) -> None:
        if time.perf_counter() - self._since >= SLICE_SECONDS:
            await asyncio.sleep(0)
            self._since = time.perf_counter()
