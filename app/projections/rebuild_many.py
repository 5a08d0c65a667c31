"""Rebuilding several resource types' projections: two types at a time.

A type's rebuild alternates between phases that keep the worker processes busy (the bulk load)
and phases where only PostgreSQL works or where round trips and commits set the pace (creating
the shadow tables, building their indexes, ANALYZE, the swap). Each type's rebuild is
independent of the others (its own shadow tables, state and swap), so two run side by side and
one's load fills the time the other spends in PostgreSQL alone: every core keeps working."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

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
