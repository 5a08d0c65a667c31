"""Bulk export kick-off (https://hl7.org/fhir/uv/bulkdata/export.html): ``GET|POST [base]/$export``,
``[base]/Patient/$export`` and ``[base]/Group/[id]/$export``.

The kick-off needs ``Prefer: respond-async``, checks the parameters (app/api/export_params.py) and
the token's scopes (app/api/export_auth.py), takes the snapshot the export will read
(app/events/snapshot.py: its transactionTime), records the export with its background job and
answers 202 with the status URL in ``Content-Location``. A refused kick-off records nothing and
writes nothing to the event log.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.api.export_auth import authorize_export, owner_of
from app.api.export_params import ExportRequest, parse_export
from app.api.http import base_url, fhir_response, lenient, outcome_bytes, prefer, read_body
from app.api.json_body import read_json
from app.errors import FhirError, Issue, invalid, not_found
from app.events.snapshot import take_snapshot, versions_at
from app.fhirspec.resource_types import resource_types
from app.identity import require_id
from app.jobs.export_store import ExportRecord, create_export
from app.queries.export_compartment import compartment_types

router = APIRouter()
_VALUE_KEYS = ("valueString", "valueCode", "valueInstant", "valueDateTime", "valueUri", "valueUrl", "valueBoolean")


def _parameter_value(parameter: dict) -> str:
    for key in _VALUE_KEYS:
        if key in parameter:
            return str(parameter[key]).lower() if key == "valueBoolean" else str(parameter[key])
    reference = parameter.get("valueReference")
    if isinstance(reference, dict) and isinstance(reference.get("reference"), str):
        return reference["reference"]
    raise invalid(f"Parameters.parameter '{str(parameter.get('name'))[:40]}' has no value this operation takes")


async def _params(request: Request) -> tuple[list[tuple[str, str]], bool]:
    params = list(request.query_params.multi_items())
    if request.method != "POST":
        return params, False
    raw = await read_body(request)
    if not raw.strip():
        return params, True
    body, _ = read_json(raw, control_characters=False)
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        raise invalid("A POST $export takes a Parameters resource as its body")
    for parameter in body.get("parameter") or []:
        if not isinstance(parameter, dict) or not isinstance(parameter.get("name"), str):
            raise invalid("Each Parameters.parameter of $export needs a name")
        params.append((parameter["name"], _parameter_value(parameter)))
    return params, True


def _require_async(request: Request) -> None:
    if prefer(request, "respond-async") is None:
        raise invalid("$export runs asynchronously: send the header 'Prefer: respond-async'")


def export_root(request: Request) -> Path:
    settings = request.app.state.settings
    root = settings.export_dir or Path(settings.data_dir) / "exports"
    return Path(root).resolve()


def _request_url(request: Request) -> str:
    url = str(request.url)
    return url.split("?", 1)[0] if request.method == "POST" else url


async def _kick_off(request: Request, level: str, group: str | None = None) -> Response:
    _require_async(request)
    params, posted = await _params(request)
    asked: ExportRequest = parse_export(level, params, lenient(request), posted)
    candidates = list(resource_types()) if level == "system" else compartment_types()
    types = authorize_export(request, level, asked.types, candidates)
    pool = request.app.state.pool
    async with pool.acquire() as conn:
        snapshot = await take_snapshot(conn)
    if group is not None:
        found = (await versions_at(pool, "Group", [group], snapshot.text)).get(group)
        if found is None or found.deleted:
            raise not_found(f"Group/{group} is not known to this server (or is deleted): nothing to export")
    settings = request.app.state.settings
    export_id = secrets.token_urlsafe(18)
    record = ExportRecord(
        id=export_id,
        request=_request_url(request),
        params=_stored_params(request, asked, level, group, types),
        owner=owner_of(request),
        requires_token=bool(settings.auth_issuer),
        directory=str(export_root(request) / export_id),
        ttl_hours=settings.export_ttl_hours,
        snapshot=snapshot.text,
        transaction_time=snapshot.transaction_time,
        status="accepted",
        progress={},
        output=None,
        error=None,
        created_at=snapshot.transaction_time,
        finished_at=None,
        expires_at=None,
    )
    await create_export(pool, record)
    status_url = f"{base_url(request)}/$export-status/{export_id}"
    issues = [Issue("information", "informational", f"Export accepted; poll {status_url} for its status")]
    return fhir_response(request, outcome_bytes([*issues, *asked.warnings]), 202, {"Content-Location": status_url})


def _stored_params(request: Request, asked: ExportRequest, level: str, group: str | None, types: list[str]) -> dict:
    return {
        "level": level,
        "group": group,
        "patients": asked.patients,
        "types": types,
        "since": asked.since.isoformat() if asked.since else None,
        "filters": asked.filters,
        "elements": asked.elements_by_type(types),
        "base": base_url(request),
    }


@router.api_route("/$export", methods=["GET", "POST"])
async def system_export(request: Request) -> Response:
    return await _kick_off(request, "system")


@router.api_route("/Patient/$export", methods=["GET", "POST"])
async def patient_export(request: Request) -> Response:
    return await _kick_off(request, "patient")


@router.api_route("/Group/{group_id}/$export", methods=["GET", "POST"])
async def group_export(request: Request, group_id: str) -> Response:
    try:
        require_id(group_id)
    except FhirError:
        raise invalid(f"'{group_id[:80]}' is not a valid Group id") from None
    return await _kick_off(request, "group", group_id)
