"""Instance-level interactions: read, vread, update, patch, delete, history-instance."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.api.auth import authorize
from app.api.binary import binary_content_response, native_binary_body
from app.api.first_use import ready_to_write
from app.api.http import (
    PATCH_KINDS,
    base_url,
    fhir_response,
    if_match,
    if_none_match,
    lenient,
    parse_json,
    patch_kind,
    read_body,
    request_url,
    version_headers,
)
from app.api.staleness import index_status_header, require_fresh
from app.api.write_render import perform_write
from app.auth import OPEN
from app.commands.delete import prepare_delete
from app.commands.patch import prepare_patch
from app.commands.update import prepare_update
from app.identity import require_id, require_type, require_version_id
from app.queries.history import HistoryRequest, history
from app.queries.read import ReadShape, read, read_shape
from app.queries.vread import vread

router = APIRouter()


@router.api_route("/{resource_type}/{resource_id}", methods=["GET", "HEAD"])
async def read_resource(request: Request, resource_type: str, resource_id: str) -> Response:
    require_type(resource_type)
    require_id(resource_id)
    authorize(request, resource_type, "read")
    shape = read_shape(list(request.query_params.multi_items()))
    require_fresh(request.app, "current_state", resource_type)
    principal = getattr(request.state, "principal", OPEN)
    found = await read(request.app.state.pool, resource_type, resource_id, principal, base_url(request))
    headers = version_headers(found.version, found.last_updated)
    tags = if_none_match(request)
    if "*" in tags or str(found.version) in tags:
        return Response(status_code=304, headers=headers)
    if resource_type == "SearchParameter":
        headers.update(await index_status_header(request.app.state.pool, resource_id))
    if resource_type == "Binary" and (content := binary_content_response(request, found.resource, headers)):
        return content
    return _shaped(request, shape, resource_type, found.resource, headers)


def _shaped(request: Request, shape: ReadShape, resource_type: str, resource: bytes, headers: dict) -> Response:
    """A read's answer in the form ``_summary``/``_elements`` ask for, warning of ignored parameters."""
    if shape.ignored:
        names = ", ".join(sorted(set(shape.ignored)))[:200].encode("ascii", "replace").decode("ascii")
        headers["Warning"] = f'199 fhirledger "parameters not used by a read were ignored: {names}"'
    return fhir_response(request, shape.apply(resource_type, resource), 200, headers)


@router.put("/{resource_type}/{resource_id}")
async def update_resource(request: Request, resource_type: str, resource_id: str) -> Response:
    require_type(resource_type)
    authorize(request, resource_type, "update")
    native = await native_binary_body(request, resource_id) if resource_type == "Binary" else None
    body = native if native is not None else parse_json(await read_body(request))
    unless = frozenset(if_none_match(request))
    await ready_to_write((resource_type,))
    command, warnings = prepare_update(resource_type, resource_id, body, lenient(request), if_match(request), unless)
    return await perform_write(request, command, warnings)


@router.delete("/{resource_type}/{resource_id}")
async def delete_resource(request: Request, resource_type: str, resource_id: str) -> Response:
    require_type(resource_type)
    authorize(request, resource_type, "delete")
    return await perform_write(request, prepare_delete(resource_type, resource_id, if_match(request)))


@router.patch("/{resource_type}/{resource_id}")
async def patch_resource(request: Request, resource_type: str, resource_id: str) -> Response:
    require_type(resource_type)
    authorize(request, resource_type, "patch")
    require_id(resource_id)
    kind = patch_kind(request, f"{resource_type}/{resource_id}")
    body = parse_json(await read_body(request, set(PATCH_KINDS)))
    await ready_to_write((resource_type,))
    return await perform_write(request, prepare_patch(resource_type, resource_id, kind, body, if_match(request)))


@router.get("/{resource_type}/{resource_id}/_history")
async def history_instance(request: Request, resource_type: str, resource_id: str) -> Response:
    require_type(resource_type)
    authorize(request, resource_type, "history-instance")
    settings = request.app.state.settings
    req = HistoryRequest(
        base_url(request),
        request_url(request),
        list(request.query_params.multi_items()),
        resource_type,
        resource_id,
    )
    principal = getattr(request.state, "principal", OPEN)
    body = await history(
        request.app.state.pool, req, settings.history_default_count, settings.history_max_count, principal
    )
    return fhir_response(request, body)


@router.api_route("/{resource_type}/{resource_id}/_history/{version_id}", methods=["GET", "HEAD"])
async def vread_resource(request: Request, resource_type: str, resource_id: str, version_id: str) -> Response:
    require_type(resource_type)
    require_id(resource_id)
    require_version_id(resource_type, resource_id, version_id)
    authorize(request, resource_type, "vread")
    shape = read_shape(list(request.query_params.multi_items()))
    principal = getattr(request.state, "principal", OPEN)
    found = await vread(request.app.state.pool, resource_type, resource_id, version_id, principal)
    headers = version_headers(found.version, found.last_updated)
    return _shaped(request, shape, resource_type, found.resource, headers)
