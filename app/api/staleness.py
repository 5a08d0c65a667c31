"""Refusing to serve from a stale projection (issue: replay). The set of projections that are not
``ready`` is re-read from ``projection_state`` every few seconds, so a rebuild run by the CLI in
another process is noticed without a restart."""

from __future__ import annotations

import asyncpg
from fastapi import FastAPI

from app.errors import FhirError
from app.jobs.reindex import sync_custom_params
from app.projections.state import projection_name


async def refresh(app: FastAPI, pool: asyncpg.Pool) -> None:
    rows = await pool.fetch("SELECT name, status FROM projection_state WHERE status <> 'ready'")
    app.state.stale_projections = {r["name"]: r["status"] for r in rows}
    states = await sync_custom_params(pool)
    app.state.building_params = frozenset(url for url, status in states.items() if status == "building")


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
