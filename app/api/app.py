"""The FastAPI application: routers, middleware, error handling, and the lifecycle of the database
pools and the scheduler (``app.jobs.scheduler``)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

import asyncpg
from fastapi import FastAPI

from app.api import errors, staleness
from app.api.auth import Authentication
from app.api.disconnect import CancelOnDisconnect
from app.api.fast_read import FastRead
from app.api.fast_write import FastWrite
from app.api.first_use import build_shared
from app.api.guards import RequestGuards
from app.api.limits import RequestLimits
from app.api.read_front import FhirApp
from app.api.routes import (
    bulk_export,
    bulk_import,
    bulk_status,
    bundles,
    compartment,
    discovery,
    events,
    instance,
    operations,
    root,
    system,
    type_level,
)
from app.collector import tune_collector
from app.db.migrations import migrate
from app.db.pool import create_jobs_pool, create_pool
from app.jobs import scheduler
from app.projections.state import check_projections
from app.settings import Settings, get_settings
from app.validation import warm

log = logging.getLogger("fhirledger")


def create_app(settings: Settings | None = None, pool: asyncpg.Pool | None = None) -> FastAPI:
    """Build the app. With ``pool`` given (tests), the caller owns the pool and the schema;
    otherwise the lifespan connects to ``settings.database_url`` and migrates."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if pool is not None:
            yield
            return
        own, jobs_pool = await _open_database(settings)
        app.state.pool = own
        await staleness.refresh(app, own)
        warm()
        build_shared()
        tune_collector()
        schedule = await scheduler.start(settings, jobs_pool, partial(staleness.refresh, app, own))
        try:
            yield
        finally:
            await schedule.stop()
            await own.close()
            await jobs_pool.close()

    app = FhirApp(
        title="fhirledger",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        redirect_slashes=False,
    )
    app.read_base = settings.base_path  # plain reads skip FastAPI's outer layers (app/api/read_front.py)
    app.state.settings = settings
    app.state.pool = pool
    app.state.capability_cache = {}
    app.state.stale_projections = {}
    app.state.building_params = frozenset()
    errors.install(app)
    _add_middleware(app, settings)
    _include_routers(app, settings.base_path)
    return app


async def _open_database(settings: Settings) -> tuple[asyncpg.Pool, asyncpg.Pool]:
    """The request pool and the jobs pool, with the schema migrated and stale projections logged."""
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
    return own, jobs_pool


def _add_middleware(app: FastAPI, settings: Settings) -> None:
    # the last added runs first: limits, guards (Host, cross-site forms), authentication, then the
    # custom-parameter version check (no database work for refused requests), the disconnect
    # watcher, then the request: plain creates and updates straight to their route functions
    app.add_middleware(FastWrite, base_path=settings.base_path)
    app.add_middleware(CancelOnDisconnect)
    app.add_middleware(staleness.CustomParamsCheck)
    app.add_middleware(FastRead, base_path=settings.base_path)  # plain reads answered here (after auth)
    app.add_middleware(Authentication, settings=settings)
    app.add_middleware(RequestGuards, allowed_hosts=settings.allowed_hosts, base_path=settings.base_path)
    app.add_middleware(RequestLimits, max_url_bytes=settings.max_url_bytes, max_header_bytes=settings.max_header_bytes)


def _include_routers(app: FastAPI, base: str) -> None:
    app.include_router(root.router)
    # compartment last: its [type]/[id]/[type] must not shadow [type]/[id]/_history
    first = (system, discovery, events, bundles, bulk_export, bulk_status)
    for module in (*first, operations, bulk_import, type_level, instance, compartment):
        app.include_router(module.router, prefix=base)
