"""Type-level interactions: create (and conditional create), search, conditional update and
delete, history-type."""

from __future__ import annotations

from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.api.http import (
    WriteReply,
    base_url,
    fhir_response,
    if_match,
    lenient,
    parse_json,
    prefer,
    read_body,
    request_url,
    version_headers,
    write_context,
    write_response,
)
from app.api.staleness import require_fresh
from app.commands.bundle_entries import BundleEntry
from app.commands.create import create, prepare_create
from app.commands.rules import require_body_type
from app.commands.transaction import prepare_entries, run_entries
from app.commands.unit_of_work import run_write
from app.errors import invalid
from app.identity import require_type
from app.queries.history import HistoryRequest, history
from app.queries.search.execute import SearchRequest, search
from app.queries.search.match import match_ids

router = APIRouter()


def _search_request(request: Request, resource_type: str, params: list[tuple[str, str]]) -> SearchRequest:
    settings = request.app.state.settings
    require_type(resource_type)
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


async def _single_entry(request: Request, entry: BundleEntry, resource_type: str) -> Response:
    """Run one write as a one-entry transaction (the conditional forms share that code)."""
    prepare_entries([entry], lenient(request))
    context = write_context(request, entry.method, entry.url)
    (result,) = await run_write(request.app.state.pool, context, lambda tx: run_entries(tx, [entry], True), match_ids)
    code = int(result.status.split()[0])
    headers: dict[str, str] = {}
    if result.etag and result.last_modified:
        headers = version_headers(int(result.etag[3:-1]), result.last_modified)
    if result.location:
        headers["Location"] = f"{base_url(request)}/{result.location}"
    message = f"{entry.method} {resource_type}: {result.status}"
    if entry.method == "DELETE":
        if (prefer(request, "return") or "").lower() == "minimal":
            return Response(status_code=204, headers=headers)
        return write_response(request, WriteReply(200, None, headers, message))
    return write_response(request, WriteReply(code, result.resource, headers, message), entry.warnings)


@router.post("/{resource_type}")
async def create_resource(request: Request, resource_type: str) -> Response:
    require_type(resource_type)
    body = parse_json(await read_body(request))
    condition = request.headers.get("if-none-exist")
    if condition is not None:  # validated with the entry, like any Bundle entry
        resource = require_body_type(body, resource_type)
        entry = BundleEntry(0, "POST", resource_type, resource_type, None, None, None, None, resource, condition, None)
        return await _single_entry(request, entry, resource_type)
    resource, warnings = prepare_create(resource_type, body, lenient(request))
    context = write_context(request, "POST", resource_type)
    out = await run_write(request.app.state.pool, context, lambda tx: create(tx, resource_type, resource))
    headers = version_headers(out.version, out.last_updated)
    headers["Location"] = f"{base_url(request)}/{resource_type}/{out.resource_id}/_history/{out.version}"
    reply = WriteReply(201, out.resource, headers, f"Created {resource_type}/{out.resource_id} version 1")
    return write_response(request, reply, warnings)


@router.put("/{resource_type}")
async def conditional_update(request: Request, resource_type: str) -> Response:
    require_type(resource_type)
    query = str(request.url.query)
    body = parse_json(await read_body(request))
    if not query:
        raise invalid(
            f"PUT {resource_type} needs an id (PUT {resource_type}/[id]) or search criteria "
            f"(PUT {resource_type}?identifier=…)"
        )
    resource = require_body_type(body, resource_type)
    entry = BundleEntry(
        0, "PUT", f"{resource_type}?{query}", resource_type, None, None, query, None, resource, None, if_match(request)
    )
    return await _single_entry(request, entry, resource_type)


@router.delete("/{resource_type}")
async def conditional_delete(request: Request, resource_type: str) -> Response:
    require_type(resource_type)
    query = str(request.url.query)
    if not query:
        raise invalid(f"DELETE {resource_type} needs an id (DELETE {resource_type}/[id]) or search criteria")
    entry = BundleEntry(
        0, "DELETE", f"{resource_type}?{query}", resource_type, None, None, query, None, None, None, if_match(request)
    )
    return await _single_entry(request, entry, resource_type)


@router.get("/{resource_type}/_history")
async def history_type(request: Request, resource_type: str) -> Response:
    settings = request.app.state.settings
    req = HistoryRequest(
        base_url(request), request_url(request), list(request.query_params.multi_items()), resource_type
    )
    body = await history(request.app.state.pool, req, settings.history_default_count, settings.history_max_count)
    return fhir_response(request, body)
