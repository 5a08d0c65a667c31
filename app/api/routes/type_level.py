"""Type-level interactions: create (and conditional create), search, conditional update, patch
and delete, history-type."""

from __future__ import annotations

from urllib.parse import parse_qsl, unquote

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.api.auth import authorize
from app.api.binary import native_binary_body
from app.api.first_use import ready_to_write
from app.api.http import (
    PATCH_KINDS,
    base_url,
    fhir_response,
    if_match,
    lenient,
    parse_json,
    patch_kind,
    prefer,
    read_body,
    request_url,
)
from app.api.request_meta import header as header_value
from app.api.staleness import require_fresh
from app.api.write_render import perform_write
from app.auth import OPEN
from app.commands.conditional import same_criteria, search_criteria, strip_if_none_exist
from app.commands.create import prepare_create
from app.commands.delete import prepare_delete
from app.commands.patch import prepare_patch
from app.commands.update import prepare_conditional_update
from app.errors import invalid
from app.identity import require_type
from app.queries.history import HistoryRequest, history
from app.queries.search.execute import SearchRequest, search

router = APIRouter()


def _search_request(request: Request, resource_type: str, params: list[tuple[str, str]]) -> SearchRequest:
    settings = request.app.state.settings
    require_type(resource_type)
    authorize(request, resource_type, "search-type")
    require_fresh(request.app, "current_state", resource_type)
    require_fresh(request.app, "search_index", resource_type)
    handling = (prefer(request, "handling") or settings.search_handling).lower()
    return SearchRequest(
        base_url(request),
        resource_type,
        params,
        handling == "strict",
        settings.search_default_count,
        settings.search_max_count,
        request.app.state.building_params,
        getattr(request.state, "principal", OPEN),
    )


@router.get("/{resource_type}")
async def search_type(request: Request, resource_type: str) -> Response:
    req = _search_request(request, resource_type, list(request.query_params.multi_items()))
    return fhir_response(request, await search(request.app.state.pool, req))


@router.post("/{resource_type}/_search")
async def search_type_post(request: Request, resource_type: str) -> Response:
    require_type(resource_type)
    body = await read_body(request, {"application/x-www-form-urlencoded"})
    params = list(request.query_params.multi_items()) + parse_qsl(
        body.decode("utf-8", "replace"), keep_blank_values=True
    )
    req = _search_request(request, resource_type, params)
    return fhir_response(request, await search(request.app.state.pool, req))


def _create_criteria(request: Request, resource_type: str) -> str | None:
    """Criteria of a conditional create: ``If-None-Exist`` or the URL's query (fhirpy's
    get_or_create sends ``POST Patient?identifier=…``); both given must agree."""
    in_url = search_criteria(str(request.url.query)) if request.scope.get("query_string") else ""
    header = header_value(request, "if-none-exist")
    if header is not None:
        header = strip_if_none_exist(header.strip())
        if not header:
            raise invalid(
                f"POST {resource_type}: If-None-Exist is empty; give search criteria, e.g. identifier=sys|val"
            )
        if in_url and not same_criteria(resource_type, in_url, header):
            raise invalid(
                f"POST {resource_type}?{unquote(in_url)[:100]}: the criteria in the URL differ from "
                f"If-None-Exist '{unquote(header)[:100]}'; send the conditional create's criteria once"
            )
    return header or in_url or None


@router.post("/{resource_type}")
async def create_resource(request: Request, resource_type: str) -> Response:
    require_type(resource_type)
    criteria = _create_criteria(request, resource_type)
    authorize(request, resource_type, "conditional-create" if criteria else "create")
    native = await native_binary_body(request) if resource_type == "Binary" else None
    body = native if native is not None else parse_json(await read_body(request))
    await ready_to_write((resource_type,))
    command, warnings = prepare_create(resource_type, body, lenient(request), criteria)
    return await perform_write(request, command, warnings)


def _conditional_query(request: Request, method: str, resource_type: str) -> str:
    criteria = search_criteria(str(request.url.query))
    if not criteria:
        raise invalid(
            f"{method} {resource_type} needs an id ({method} {resource_type}/[id]) or search criteria "
            f"({method} {resource_type}?identifier=sys|val)"
        )
    return criteria


@router.put("/{resource_type}")
async def conditional_update(request: Request, resource_type: str) -> Response:
    require_type(resource_type)
    authorize(request, resource_type, "conditional-update")
    body = parse_json(await read_body(request))
    criteria = _conditional_query(request, "PUT", resource_type)
    await ready_to_write((resource_type,))
    command, warnings = prepare_conditional_update(resource_type, criteria, body, lenient(request), if_match(request))
    return await perform_write(request, command, warnings)


@router.patch("/{resource_type}")
async def conditional_patch(request: Request, resource_type: str) -> Response:
    """``PATCH [type]?criteria`` (http.html#patch: the rules of conditional update)."""
    require_type(resource_type)
    authorize(request, resource_type, "conditional-patch")
    criteria = _conditional_query(request, "PATCH", resource_type)
    kind = patch_kind(request, f"{resource_type}?{unquote(criteria)[:100]}")
    body = parse_json(await read_body(request, set(PATCH_KINDS)))
    await ready_to_write((resource_type,))
    command = prepare_patch(resource_type, None, kind, body, if_match(request), criteria)
    return await perform_write(request, command)


@router.delete("/{resource_type}")
async def conditional_delete(request: Request, resource_type: str) -> Response:
    require_type(resource_type)
    authorize(request, resource_type, "conditional-delete")
    criteria = _conditional_query(request, "DELETE", resource_type)
    return await perform_write(request, prepare_delete(resource_type, None, if_match(request), criteria))


@router.get("/{resource_type}/_history")
async def history_type(request: Request, resource_type: str) -> Response:
    require_type(resource_type)
    authorize(request, resource_type, "history-type")
    settings = request.app.state.settings
    req = HistoryRequest(
        base_url(request), request_url(request), list(request.query_params.multi_items()), resource_type
    )
    principal = getattr(request.state, "principal", OPEN)
    body = await history(
        request.app.state.pool, req, settings.history_default_count, settings.history_max_count, principal
    )
    return fhir_response(request, body)
