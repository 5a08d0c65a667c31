"""The server's periodic work and the election of the one process that runs background jobs: every
process runs the given refresh every few seconds; the holder of a PostgreSQL advisory lock (one of
several workers) also resumes interrupted jobs, runs pending ones and audits the projections."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import asyncpg
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from app.jobs.export_files import remove_expired
from app.jobs.runner import resume_interrupted, run_pending
from app.projections.audit import audit_projections
from app.settings import Settings

log = logging.getLogger("fhirledger.jobs")
JOBS_LEADER_LOCK = 7_245_002
REFRESH_SECONDS = 3
EXPORT_CLEANUP_SECONDS = 300  # how often expired bulk export files are removed


@dataclass
class Scheduler:
    """The running schedule and the connection that holds (or tried for) the leader lock."""

    scheduler: AsyncIOScheduler
    leader: asyncpg.Connection
    is_leader: bool

    async def stop(self) -> None:
        self.scheduler.shutdown(wait=False)
        await self.leader.close()


async def start(settings: Settings, jobs_pool: asyncpg.Pool, refresh: Callable[[], Awaitable[None]]) -> Scheduler:
    """Schedule ``refresh`` in this process and, if it wins the leader lock, the background jobs."""

    async def run_refresh() -> None:  # a coroutine function: APScheduler runs anything else in a thread
        await refresh()

    scheduler = AsyncIOScheduler()
    scheduler.add_job(run_refresh, "interval", seconds=REFRESH_SECONDS, max_instances=1)
    leader = await asyncpg.connect(settings.database_url)
    is_leader = bool(await leader.fetchval("SELECT pg_try_advisory_lock($1)", JOBS_LEADER_LOCK))
    if is_leader:
        resumed = await resume_interrupted(jobs_pool)
        if resumed:
            log.info("resuming %d background job(s) interrupted by the last stop", resumed)
        scheduler.add_job(run_pending, "interval", seconds=1, args=[jobs_pool], max_instances=1)
        scheduler.add_job(
            audit_projections,
            "interval",
            seconds=settings.projection_audit_seconds,
            args=[jobs_pool],
            max_instances=1,
        )
        scheduler.add_job(remove_expired, "interval", seconds=EXPORT_CLEANUP_SECONDS, args=[jobs_pool], max_instances=1)
    scheduler.start()
    return Scheduler(scheduler, leader, is_leader)
