"""System-level interactions: capabilities, search-system (GET and POST ``_search``), history-system."""

from __future__ import annotations

from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.api.auth import authorize_system_history, authorize_system_search
from app.api.http import base_url, fhir_response, outcome_bytes, prefer, read_body, request_url
from app.auth import OPEN, security_block
from app.errors import FhirError, Issue
from app.fhirspec.search_parameters import all_params
from app.queries.capabilities import capability_statement
from app.queries.history import HistoryRequest, history
from app.queries.search.execute import SearchRequest
from app.queries.search.system import search_system

router = APIRouter()


@router.api_route("/metadata", methods=["GET", "HEAD"])
async def metadata(request: Request) -> Response:
    base = base_url(request)
    building = request.app.state.building_params
    custom = tuple(sorted(p.url for p in all_params() if p.custom))
    settings = request.app.state.settings
    auth = (settings.auth_issuer, settings.auth_audience, settings.auth_token_endpoint)
    key = (base, custom, building, auth)  # custom SearchParameters change what is listed
    cache: dict[tuple, bytes] = request.app.state.capability_cache
    if key not in cache:
        cache.clear()
        cache[key] = capability_statement(base, building, security_block(settings))
    return fhir_response(request, cache[key])


def _system_search(request: Request, params: list[tuple[str, str]]) -> SearchRequest:
    authorize_system_search(request, params)
    settings = request.app.state.settings
    strict = (prefer(request, "handling") or settings.search_handling).lower() == "strict"
    principal = getattr(request.state, "principal", OPEN)
    return SearchRequest(
        base_url(request),
        "",
        params,
        strict,
        settings.search_default_count,
        settings.search_max_count,
        principal=principal,
    )


@router.get("")
@router.get("/")
async def search_all(request: Request) -> Response:
    if not request.query_params:
        return fhir_response(request, outcome_bytes([_base_information(request)]))
    req = _system_search(request, list(request.query_params.multi_items()))
    return fhir_response(request, await search_system(request.app.state.pool, req))


@router.post("/_search")
async def search_all_post(request: Request) -> Response:
    """``POST [base]/_search`` with a form body: the same search as ``GET [base]?…``."""
    body = await read_body(request, {"application/x-www-form-urlencoded"})
    form = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
    req = _system_search(request, list(request.query_params.multi_items()) + form)
    return fhir_response(request, await search_system(request.app.state.pool, req))


def _base_information(request: Request) -> Issue:
    """``GET [base]`` without parameters: where to start (HAPI answers this with an OperationOutcome too)."""
    base = base_url(request)
    text = (
        f"This is the base URL of a FHIR R4 server (fhirledger). Its CapabilityStatement is at {base}/metadata. "
        f"Read with GET {base}/[type]/[id], search with GET {base}/[type]?[parameters], search every type with "
        f"GET {base}?_type=[types]&[parameters], send transactions and batches with POST {base}"
    )
    return Issue("information", "informational", text)


@router.get("/_history")
async def history_system(request: Request) -> Response:
    authorize_system_history(request)
    settings = request.app.state.settings
    req = HistoryRequest(base_url(request), request_url(request), list(request.query_params.multi_items()))
    principal = getattr(request.state, "principal", OPEN)
    body = await history(
        request.app.state.pool, req, settings.history_default_count, settings.history_max_count, principal
    )
    return fhir_response(request, body)


@router.api_route("/metadata", methods=["POST", "PUT", "DELETE", "PATCH"])
@router.api_route("/_history", methods=["POST", "PUT", "DELETE", "PATCH"])
async def not_allowed(request: Request) -> Response:
    raise FhirError(405, "not-supported", f"{request.method} is not allowed on {request.url.path}")
