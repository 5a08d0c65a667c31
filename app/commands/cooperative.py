"""Long loops over a request's entries give the event loop back now and then, so one large
transaction's CPU work (thousands of entries) does not stall every other client's request."""

from __future__ import annotations

import asyncio

YIELD_EVERY = 32
"""Entries between two pauses: a few milliseconds of work at most."""


async def pause(done: int) -> None:
    """Let other tasks run after every :data:`YIELD_EVERY` items (``done`` counts from 0)."""
    if done and done % YIELD_EVERY == 0:
        await asyncio.sleep(0)
