"""A bulk export's status URL and files (https://hl7.org/fhir/uv/bulkdata/export.html#bulk-data-status-request):

- ``GET [base]/$export-status/[id]``: 202 with ``X-Progress`` and ``Retry-After`` while queued or
  running; 200 with the manifest (``transactionTime``, ``request``, ``requiresAccessToken``,
  ``output``, ``error``) and ``Expires`` when complete; 500 with an OperationOutcome when it
  failed; 404 when unknown, cancelled or expired.
- ``DELETE [base]/$export-status/[id]``: cancels it (202) and removes its files.
- ``GET [base]/$export-file/[id]/[file]``: one ndjson file (``application/fhir+ndjson``).
"""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response

from app.api.export_auth import check_file_type, check_owner
from app.api.http import base_url, fhir_response, outcome_bytes
from app.errors import FhirError, Issue, not_found
from app.fhirtime import format_http_date, format_instant
from app.jobs.export_files import file_path, remove_directory
from app.jobs.export_store import ExportRecord, cancel_export, load_export

router = APIRouter()
RETRY_AFTER_SECONDS = 2
NDJSON = "application/fhir+ndjson"


def _gone(export_id: str, status: str | None = None) -> FhirError:
    why = {"cancelled": "was cancelled", "expired": "has expired and its files were removed"}.get(status or "")
    text = f"Bulk export '{export_id[:40]}' {why or 'is not known to this server'}"
    return not_found(text + ("" if why else "; a kick-off answers the URL of its status"))


async def _load(request: Request, export_id: str) -> ExportRecord:
    record = await load_export(request.app.state.pool, export_id) if len(export_id) <= 64 else None
    if record is None or record.status in ("cancelled", "expired"):
        raise _gone(export_id, record.status if record else None)
    check_owner(request, record.owner, record.requires_token)
    return record


def _progress_text(record: ExportRecord) -> str:
    if record.status == "accepted":
        return "queued"
    p = record.progress
    done = len(p.get("done", {}))
    total = len(record.params["types"])
    current = p.get("current")
    text = f"running: {done} of {total} types done"
    if current and current not in p.get("done", {}):
        text += f", writing {current}"
    return text


def _file_url(request: Request, record: ExportRecord, name: str) -> str:
    return f"{base_url(request)}/$export-file/{record.id}/{name}"


def manifest(request: Request, record: ExportRecord) -> dict:
    output = record.output or {"output": [], "error": []}
    return {
        "transactionTime": format_instant(record.transaction_time),
        "request": record.request,
        "requiresAccessToken": record.requires_token,
        "output": [
            {"type": o["type"], "url": _file_url(request, record, o["file"]), "count": o["count"]}
            for o in output["output"]
        ],
        "error": [{"type": e["type"], "url": _file_url(request, record, e["file"])} for e in output["error"]],
    }


@router.get("/$export-status/{export_id}")
async def export_status(request: Request, export_id: str) -> Response:
    record = await _load(request, export_id)
    if record.status in ("accepted", "running"):
        headers = {"X-Progress": _progress_text(record), "Retry-After": str(RETRY_AFTER_SECONDS)}
        return Response(status_code=202, headers=headers)
    if record.status == "failed":
        issue = Issue("fatal", "exception", record.error or "The export failed")
        return fhir_response(request, outcome_bytes([issue]), 500)
    headers = {"Expires": format_http_date(record.expires_at)} if record.expires_at else {}
    body = orjson.dumps(manifest(request, record))
    return Response(content=body, status_code=200, media_type="application/json", headers=headers)


@router.delete("/$export-status/{export_id}")
async def cancel(request: Request, export_id: str) -> Response:
    await _load(request, export_id)
    record = await cancel_export(request.app.state.pool, export_id)
    if record is None:
        raise _gone(export_id)
    remove_directory(record.directory)
    issue = Issue("information", "informational", f"Bulk export '{export_id}' cancelled; its files are removed")
    return fhir_response(request, outcome_bytes([issue]), 202)


@router.get("/$export-file/{export_id}/{name}")
async def export_file(request: Request, export_id: str, name: str) -> Response:
    record = await _load(request, export_id)
    expired = record.expires_at is not None and record.expires_at <= datetime.now(UTC)
    if record.status != "completed" or expired:
        raise _gone(export_id, "expired" if expired else None)
    listed = {o["file"]: o["type"] for o in [*record.output["output"], *record.output["error"]]}  # type: ignore[index]
    path = file_path(record.directory, name)
    if name not in listed or path is None or not path.is_file():
        raise not_found(f"Bulk export '{export_id[:40]}' has no file '{name[:60]}'; its manifest lists its files")
    check_file_type(request, listed[name], record.params["level"])
    return FileResponse(path, media_type=NDJSON)
