"""The change feed over HTTP: ``GET [base]/_events?after=<cursor>&_count=N`` (ARCHITECTURE.md
invariant 7; the cursor and response format are described in app/queries/changes.py)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.api.auth import require_admin
from app.api.http import base_url, fhir_response, request_url
from app.errors import FhirError
from app.queries.changes import ChangesRequest, changes

router = APIRouter()


@router.get("/_events")
async def change_feed(request: Request) -> Response:
    require_admin(request, "Reading the change feed")
    req = ChangesRequest(base_url(request), request_url(request), list(request.query_params.multi_items()))
    return fhir_response(request, await changes(request.app.state.pool, req))


@router.api_route("/_events", methods=["POST", "PUT", "DELETE", "PATCH"])
async def not_allowed(request: Request) -> Response:
    raise FhirError(405, "not-supported", f"{request.method} is not allowed on {request.url.path}")
