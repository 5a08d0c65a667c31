"""Rebuilding several resource types' projections: two types at a time.

A type's rebuild alternates between phases that keep the worker processes busy (the bulk load)
and phases where only PostgreSQL works or where round trips and commits set the pace (creating
the shadow tables, building their indexes, ANALYZE, the swap). Each type's rebuild is
independent of the others (its own shadow tables, state and swap), so two run side by side and
one's load fills the time the other spends in PostgreSQL alone: every core keeps working.

The types start largest first (:func:`largest_first`): the rebuild of all of them lasts at least as
long as that of the largest, so it should not start last (the log of a Synthea-like population is
four fifths Observations; started after the others, its rebuild ran alone for most of the time,
one core idle)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import asyncpg

from app.events.store import counts_by_type

T = TypeVar("T")

AT_ONCE = 2


async def each_type(types: Sequence[str], run: Callable[[str], Awaitable[T]], at_once: int = AT_ONCE) -> list[T]:
    """``run(type)`` for each of ``types``, ``at_once`` at a time, in their order; the results in
    that order. The first failure cancels the others and is raised."""
    gate = asyncio.Semaphore(at_once)

    async def one(resource_type: str) -> T:
        async with gate:
            return await run(resource_type)

    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(one(t)) for t in types]
    return [task.result() for task in tasks]


async def largest_first(pool: asyncpg.Pool, types: Sequence[str]) -> list[str]:
    """``types`` ordered by their events in the log, most first (ties and empty types: as given)."""
    counts = await counts_by_type(pool)
    order = {t: i for i, t in enumerate(types)}
    return sorted(types, key=lambda t: (-counts.get(t, (0, 0))[0], order[t]))
