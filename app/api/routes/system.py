"""System-level interactions: capabilities, history-system."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.api.http import base_url, fhir_response, request_url
from app.errors import FhirError
from app.queries.capabilities import capability_statement
from app.queries.history import HistoryRequest, history

router = APIRouter()


@router.get("/metadata")
async def metadata(request: Request) -> Response:
    return fhir_response(request, capability_statement(base_url(request)))


@router.get("/_history")
async def history_system(request: Request) -> Response:
    settings = request.app.state.settings
    req = HistoryRequest(base_url(request), request_url(request), list(request.query_params.multi_items()))
    body = await history(request.app.state.pool, req, settings.history_default_count, settings.history_max_count)
    return fhir_response(request, body)


@router.api_route("/metadata", methods=["POST", "PUT", "DELETE", "PATCH"])
@router.api_route("/_history", methods=["POST", "PUT", "DELETE", "PATCH"])
async def not_allowed(request: Request) -> Response:
    raise FhirError(405, "not-supported", f"{request.method} is not allowed on {request.url.path}")
