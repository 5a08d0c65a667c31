"""Type-level interactions: create, history-type."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.api.http import (
    WriteReply,
    base_url,
    fhir_response,
    lenient,
    parse_json,
    read_body,
    request_url,
    version_headers,
    write_context,
    write_response,
)
from app.commands.create import create, prepare_create
from app.commands.unit_of_work import run_write
from app.identity import require_type
from app.queries.history import HistoryRequest, history

router = APIRouter()


@router.post("/{resource_type}")
async def create_resource(request: Request, resource_type: str) -> Response:
    require_type(resource_type)
    body = parse_json(await read_body(request))
    resource, warnings = prepare_create(resource_type, body, lenient(request))
    context = write_context(request, "POST", resource_type)
    out = await run_write(request.app.state.pool, context, lambda tx: create(tx, resource_type, resource))
    headers = version_headers(out.version, out.last_updated)
    headers["Location"] = f"{base_url(request)}/{resource_type}/{out.resource_id}/_history/{out.version}"
    reply = WriteReply(201, out.resource, headers, f"Created {resource_type}/{out.resource_id} version 1")
    return write_response(request, reply, warnings)


@router.get("/{resource_type}/_history")
async def history_type(request: Request, resource_type: str) -> Response:
    settings = request.app.state.settings
    req = HistoryRequest(
        base_url(request), request_url(request), list(request.query_params.multi_items()), resource_type
    )
    body = await history(request.app.state.pool, req, settings.history_default_count, settings.history_max_count)
    return fhir_response(request, body)
