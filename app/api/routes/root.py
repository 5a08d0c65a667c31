"""Outside the FHIR base: ``GET /`` (where to start), ``GET /healthz`` (liveness) and
``GET /readyz`` (readiness) for people and load balancers."""

from __future__ import annotations

import asyncio
from html import escape

import asyncpg
import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.api.http import base_url

router = APIRouter()
READY_TIMEOUT_SECONDS = 2.0


def _json(body: dict, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status, media_type="application/json", headers={"Cache-Control": "no-store"})


@router.api_route("/", methods=["GET", "HEAD"])
async def home(request: Request) -> Response:
    base = base_url(request)
    root = str(request.base_url).rstrip("/")
    links = {
        "fhirBase": base,
        "capabilityStatement": f"{base}/metadata",
        "health": f"{root}/healthz",
        "readiness": f"{root}/readyz",
    }
    accept = request.headers.get("accept", "")
    if "text/html" in accept:
        items = "".join(f'<li>{name}: <a href="{escape(url)}">{escape(url)}</a></li>' for name, url in links.items())
        html = (
            "<!doctype html><html><head><meta charset=utf-8><title>fhirledger</title></head><body>"
            "<h1>fhirledger</h1><p>An event-sourced FHIR R4 server. The FHIR API is under "
            f'<a href="{escape(base)}">{escape(base)}</a>; what it supports is in its CapabilityStatement.</p>'
            f"<ul>{items}</ul></body></html>"
        )
        return Response(html, media_type="text/html")
    return _json({"name": "fhirledger", "description": "An event-sourced FHIR R4 server", **links})


@router.api_route("/healthz", methods=["GET", "HEAD"])
async def healthz() -> Response:
    """The process answers: no database access, so a slow database does not get the process killed."""
    return _json({"status": "ok"})


@router.api_route("/readyz", methods=["GET", "HEAD"])
async def readyz(request: Request) -> Response:
    """Ready to serve: the database answers and every projection is ready (503 with the reason otherwise)."""
    pool: asyncpg.Pool | None = request.app.state.pool
    if pool is None:
        return _json({"status": "unavailable", "reason": "the database pool is not open yet (starting up)"}, 503)
    try:
        async with asyncio.timeout(READY_TIMEOUT_SECONDS):
            await pool.fetchval("SELECT 1")
            rows = await pool.fetch("SELECT name, status FROM projection_state WHERE status <> 'ready' ORDER BY name")
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        reason = f"the database does not answer within {READY_TIMEOUT_SECONDS:.0f} s ({type(exc).__name__}: {exc})"
        return _json({"status": "unavailable", "reason": reason[:500]}, 503)
    if rows:
        stale = {r["name"]: r["status"] for r in rows}
        reason = (
            f"{len(stale)} projection(s) are not ready; run `fhirledger projections rebuild` "
            "(`fhirledger projections status` shows them)"
        )
        return _json({"status": "unavailable", "reason": reason, "projections": stale}, 503)
    return _json({"status": "ready"})
