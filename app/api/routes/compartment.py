"""Compartment routes: ``$everything`` on a Patient or Encounter, and compartment search
``GET [base]/[compartment]/[id]/[type]?…`` (``POST …/_search``), ``[type]`` ``*`` for every type
of the compartment (https://hl7.org/fhir/R4/search.html#compartments).

Registered after the instance routes, so ``[type]/[id]/_history`` keeps its own route; a third
segment starting with ``$`` names an operation, never a type."""

from __future__ import annotations

from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.api.auth import authorize
from app.api.http import base_url, fhir_response, parse_json, prefer, read_body
from app.api.staleness import require_fresh
from app.auth import OPEN
from app.errors import FhirError
from app.fhirspec.compartments import member_types
from app.identity import require_id, require_type
from app.queries.everything import FOCAL_TYPES, OPERATION, EverythingRequest, everything, parameters_params
from app.queries.search.compartment import require_compartment, require_member
from app.queries.search.execute import SearchRequest, search
from app.queries.search.system import search_system

router = APIRouter()
FORM = "application/x-www-form-urlencoded"


def _strict(request: Request) -> bool:
    return (prefer(request, "handling") or request.app.state.settings.search_handling).lower() == "strict"


def _fresh(request: Request, types: tuple[str, ...] | list[str]) -> None:
    for t in types:
        require_fresh(request.app, "current_state", t)
        require_fresh(request.app, "search_index", t)


@router.api_route("/{focal_type}/{focal_id}/$everything", methods=["GET", "POST"])
async def everything_operation(request: Request, focal_type: str, focal_id: str) -> Response:
    require_type(focal_type)
    if focal_type not in FOCAL_TYPES:
        raise FhirError(
            400,
            "not-supported",
            f"{OPERATION} is defined on {' and '.join(FOCAL_TYPES)} ([base]/Patient/[id]/{OPERATION}), "
            f"not on {focal_type}",
        )
    require_id(focal_id)
    authorize(request, focal_type, "read")
    params = list(request.query_params.multi_items())
    if request.method == "POST":
        body = await read_body(request)
        if body.strip():
            params += parameters_params(parse_json(body))
    _fresh(request, member_types(focal_type))
    settings = request.app.state.settings
    req = EverythingRequest(
        base_url(request),
        focal_type,
        focal_id,
        params,
        _strict(request),
        settings.search_default_count,
        settings.search_max_count,
        getattr(request.state, "principal", OPEN),
    )
    return fhir_response(request, await everything(request.app.state.pool, req))


def _compartment_request(
    request: Request, compartment: str, focal_id: str, resource_type: str, params: list[tuple[str, str]]
) -> SearchRequest:
    require_compartment(compartment, focal_id)
    if resource_type.startswith("$"):
        raise FhirError(
            404,
            "not-supported",
            f"Operation {resource_type[:60]} is not supported on {compartment}/[id]; "
            f"see [base]/metadata for the operations this server offers",
        )
    if resource_type == "*":
        _fresh(request, member_types(compartment))
    else:
        require_member(compartment, resource_type)
        authorize(request, resource_type, "search-type")
        _fresh(request, (resource_type,))
    settings = request.app.state.settings
    return SearchRequest(
        base_url(request),
        resource_type if resource_type != "*" else "",
        params,
        _strict(request),
        settings.search_default_count,
        settings.search_max_count,
        request.app.state.building_params,
        getattr(request.state, "principal", OPEN),
        (compartment, focal_id),
    )


async def _answer(request: Request, req: SearchRequest) -> Response:
    pool = request.app.state.pool
    body = await (search_system(pool, req) if req.resource_type == "" else search(pool, req))
    return fhir_response(request, body)


@router.get("/{compartment}/{focal_id}/{resource_type}")
async def compartment_search(request: Request, compartment: str, focal_id: str, resource_type: str) -> Response:
    params = list(request.query_params.multi_items())
    return await _answer(request, _compartment_request(request, compartment, focal_id, resource_type, params))


@router.post("/{compartment}/{focal_id}/{resource_type}/_search")
async def compartment_search_post(request: Request, compartment: str, focal_id: str, resource_type: str) -> Response:
    body = await read_body(request, {FORM})
    params = list(request.query_params.multi_items()) + parse_qsl(
        body.decode("utf-8", "replace"), keep_blank_values=True
    )
    return await _answer(request, _compartment_request(request, compartment, focal_id, resource_type, params))
