"""The FastAPI application: routers, error handling, and the database pool's lifecycle."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from fastapi import FastAPI

from app.api import errors, staleness
from app.api.auth import Authentication
from app.api.disconnect import CancelOnDisconnect
from app.api.guards import RequestGuards
from app.api.limits import RequestLimits
from app.api.routes import bundles, discovery, events, instance, operations, root, system, type_level
from app.db.migrations import migrate
from app.db.pool import create_jobs_pool, create_pool
from app.jobs.runner import resume_interrupted, run_pending
from app.projections.audit import audit_projections
from app.projections.state import check_projections
from app.settings import Settings, get_settings
from app.validation import warm

log = logging.getLogger("fhirledger")
JOBS_LEADER_LOCK = 7_245_002


def create_app(settings: Settings | None = None, pool: asyncpg.Pool | None = None) -> FastAPI:
    """Build the app. With ``pool`` given (tests), the caller owns the pool and the schema;
    otherwise the lifespan connects to ``settings.database_url`` and migrates."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if pool is not None:
            yield
            return
        if not settings.database_url:
            raise RuntimeError("no database: set FHIRLEDGER_DATABASE_URL or start with `fhirledger serve`")
        own = await create_pool(settings.database_url, settings)
        jobs_pool = await create_jobs_pool(settings.database_url)
        async with jobs_pool.acquire() as conn:
            applied = await migrate(conn)
            stale = await check_projections(conn)
        if applied:
            log.info("applied migrations %s", applied)
        if stale:
            log.warning("stale projections (run `fhirledger projections rebuild`): %s", ", ".join(sorted(stale)))
        app.state.pool = own
        await staleness.refresh(app, own)
        warm()
        scheduler = AsyncIOScheduler()
        scheduler.add_job(staleness.refresh, "interval", seconds=3, args=[app, own], max_instances=1)
        # one process (of several workers) runs the background jobs: the holder of an advisory lock
        leader = await asyncpg.connect(settings.database_url)
        if await leader.fetchval("SELECT pg_try_advisory_lock($1)", JOBS_LEADER_LOCK):
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
        scheduler.start()
        try:
            yield
        finally:
            scheduler.shutdown(wait=False)
            await leader.close()
            await own.close()
            await jobs_pool.close()

    app = FastAPI(
        title="fhirledger",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        redirect_slashes=False,
    )
    app.state.settings = settings
    app.state.pool = pool
    app.state.capability_cache = {}
    app.state.stale_projections = {}
    app.state.building_params = frozenset()
    errors.install(app)
    # the last added runs first: limits, guards (Host, cross-site forms), authentication, then the
    # custom-parameter version check (no database work for refused requests), then the request
    app.add_middleware(CancelOnDisconnect)
    app.add_middleware(staleness.CustomParamsCheck)
    app.add_middleware(Authentication, settings=settings)
    app.add_middleware(RequestGuards, allowed_hosts=settings.allowed_hosts, base_path=settings.base_path)
    app.add_middleware(RequestLimits, max_url_bytes=settings.max_url_bytes, max_header_bytes=settings.max_header_bytes)
    base = settings.base_path
    app.include_router(root.router)
    app.include_router(system.router, prefix=base)
    app.include_router(discovery.router, prefix=base)
    app.include_router(events.router, prefix=base)
    app.include_router(bundles.router, prefix=base)
    app.include_router(operations.router, prefix=base)
    app.include_router(type_level.router, prefix=base)
    app.include_router(instance.router, prefix=base)
    return app
