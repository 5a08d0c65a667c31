"""Refusing to serve from a stale projection: the set of projections that are not ``ready`` is
re-read from ``projection_state`` every few seconds, so a rebuild run by the CLI in another process
is noticed without a restart. Custom SearchParameters are checked per request instead: before a
read or search, :class:`CustomParamsCheck` compares the stored registry version (one single-row
read) with the one this process loaded, and reloads when it moved."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import asyncpg
from fastapi import FastAPI

from app.api.errors import outcome_response
from app.errors import FhirError
from app.fhirspec.resource_types import is_resource_type
from app.projections import custom_params
from app.projections.state import projection_name


async def refresh(app: FastAPI, pool: asyncpg.Pool) -> None:
    rows = await pool.fetch("SELECT name, status FROM projection_state WHERE status <> 'ready'")
    app.state.stale_projections = {r["name"]: r["status"] for r in rows}
    await sync_params(app, pool)


async def sync_params(app: FastAPI, pool: asyncpg.Pool) -> None:
    """Load the custom SearchParameters of the stored version, if this process is behind it."""
    async with pool.acquire() as conn:
        state = await custom_params.sync(conn)
    app.state.building_params = state.building


class CustomParamsCheck:
    """ASGI middleware: before a GET, HEAD or POST under the FHIR base (reads, searches,
    ``_search``, Bundles; not a create), make this process's custom SearchParameters those of the
    stored version (the health endpoints are outside the base)."""

    def __init__(self, app: Callable[..., Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD", "POST"):
            fastapi_app = scope.get("app")
            pool = getattr(fastapi_app.state, "pool", None) if fastapi_app is not None else None
            base = fastapi_app.state.settings.base_path if fastapi_app is not None else ""
            if pool is not None and scope["path"].startswith(base) and not _is_create(scope, base):
                try:
                    await sync_params(fastapi_app, pool)
                except FhirError as exc:  # e.g. no pool connection in time: outside the routes' handlers
                    response = outcome_response(exc.status, exc.all_issues(), exc.headers or None)
                    await response(scope, receive, send)
                    return
        await self.app(scope, receive, send)


def _is_create(scope: dict, base: str) -> bool:
    """``POST [base]/[type]``: a create loads the parameters inside its own transaction (every write
    does, see ``custom_params.sync_for_write``), so the check here would be one more round trip."""
    if scope["method"] != "POST":
        return False
    rest = scope["path"][len(base) :].strip("/")
    return bool(rest) and "/" not in rest and is_resource_type(rest)


def require_fresh(app: FastAPI, kind: str, resource_type: str) -> None:
    status = app.state.stale_projections.get(projection_name(kind, resource_type))
    if status is None:
        return
    what = "search index" if kind == "search_index" else "current-state projection"
    text = (
        f"The {what} of {resource_type} was built by another version of the code; run "
        f"`fhirledger projections rebuild --type {resource_type}` to serve it again"
    )
    raise FhirError(503, "transient", text, headers={"Retry-After": "10"})


async def index_status_header(pool: asyncpg.Pool, resource_id: str) -> dict[str, str]:
    """For a custom SearchParameter: the state of its index and the progress of its job."""
    row = await pool.fetchrow(
        "SELECT s.status, j.status AS job, j.progress FROM search_param_state s LEFT JOIN jobs j ON j.id = s.job_id"
        " WHERE s.resource_id = $1",
        resource_id,
    )
    if row is None:
        return {}
    progress = (
        f"; job {row['job']}: {row['progress']}" if row["progress"] else (f"; job {row['job']}" if row["job"] else "")
    )
    return {"X-Fhirledger-Index": f"{row['status']}{progress}"}
