"""The scheduler runs the per-process refresh (staleness of projections) on the event loop, whatever
callable returns the coroutine: a lambda once made APScheduler run it in a thread, never awaited."""

from __future__ import annotations

import asyncio

import asyncpg

from app.jobs import scheduler
from app.settings import Settings


async def test_refresh_given_as_a_lambda_is_awaited(pool: asyncpg.Pool, settings: Settings, monkeypatch) -> None:
    monkeypatch.setattr(scheduler, "REFRESH_SECONDS", 0.2)
    runs: list[int] = []

    async def refresh() -> None:
        runs.append(1)

    schedule = await scheduler.start(settings, pool, lambda: refresh())
    try:
        for _ in range(50):
            if len(runs) >= 2:
                break
            await asyncio.sleep(0.1)
    finally:
        await schedule.stop()
    assert len(runs) >= 2, "the refresh coroutine was never awaited"
