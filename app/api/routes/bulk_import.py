"""``POST [base]/$import``: a bulk import of ndjson files named by URL, run as a background job with
the Bulk Data asynchronous pattern (https://hl7.org/fhir/uv/bulkdata/export.html#response---in-progress-status,
and the draft Bulk Data import's ``Parameters``: ``inputFormat``, ``inputSource``, ``input`` with
``type`` and ``url``).

Kick-off (``Prefer: respond-async``) answers 202 with ``Content-Location: [base]/$import-status/[job]``.
The status URL answers 202 with ``X-Progress`` while the job is queued or running, 200 with the
result manifest (resources imported per type, the OperationOutcome of what was not) when done, 500
with an OperationOutcome when it failed, 404 once cancelled; ``DELETE`` on it cancels (202).
``file://`` URLs must name files under ``FHIRLEDGER_IMPORT_DIR``; ``http(s)://`` URLs are fetched
by the job. A refused kick-off answers 400 and queues nothing. Needs the admin scope.
"""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.api.auth import require_admin
from app.api.http import base_url, fhir_response, outcome_bytes, prefer, read_body, request_url, write_context
from app.api.json_body import parse_json_body
from app.errors import FhirError, Issue, invalid, not_found
from app.fhirspec.resource_types import is_resource_type
from app.job_queue import queue_job
from app.jobs import import_state
from app.jobs.bulk_import import InputError, local_path
from app.jobs.status import job_status

router = APIRouter()

FORMATS = frozenset({"application/fhir+ndjson", "application/ndjson", "ndjson"})
KNOWN = frozenset({"inputFormat", "inputSource", "input", "mode"})
MODES = frozenset({"InitialLoad", "IncrementalLoad"})  # both load incrementally here: stored resources stay
MAX_INPUTS = 10000


def _value(parameter: dict, *kinds: str) -> str | None:
    for kind in kinds:
        value = parameter.get(f"value{kind}")
        if isinstance(value, str):
            return value
    return None


def _input(parameter: dict, n: int, import_dir: str | None) -> dict:
    parts = {p.get("name"): p for p in parameter.get("part") or [] if isinstance(p, dict)}
    url = _value(parts.get("url") or {}, "Url", "Uri", "String")
    if url is None:
        raise invalid(f"input[{n}] needs a 'url' part (valueUrl)")
    resource_type = _value(parts.get("type") or {}, "Code", "String")
    if resource_type is not None and not is_resource_type(resource_type):
        raise invalid(f"input[{n}]: '{resource_type[:60]}' is not an R4 resource type")
    if url.startswith("file:"):
        try:
            local_path(url, import_dir)
        except InputError as exc:
            raise invalid(str(exc)) from None
    elif not url.startswith(("http://", "https://")):
        raise invalid(f"input[{n}]: '{url[:120]}' is neither an http(s):// URL nor a file:// URL")
    return {"url": url, "type": resource_type}


def parse_kickoff(body: object, import_dir: str | None) -> list[dict]:
    """The inputs of a ``$import`` Parameters resource; 400 for anything this server cannot do."""
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        raise invalid("$import takes a Parameters resource (inputFormat, input with type and url)")
    parameters = [p for p in body.get("parameter") or [] if isinstance(p, dict)]
    unknown = sorted({str(p.get("name")) for p in parameters} - KNOWN)
    if unknown:
        known = ", ".join(sorted(KNOWN))
        raise invalid(f"$import does not take the parameter(s) {', '.join(unknown)}; it takes {known}")
    formats = [_value(p, "Code", "String") for p in parameters if p.get("name") == "inputFormat"]
    if not formats or formats[0] not in FORMATS:
        raise invalid(f"$import needs inputFormat application/fhir+ndjson (found {formats[0] if formats else 'none'})")
    modes = [_value(p, "Code", "String") for p in parameters if p.get("name") == "mode"]
    if any(m not in MODES for m in modes):
        raise invalid(f"$import: mode {modes[0]!r:.60} is not supported (InitialLoad or IncrementalLoad)")
    inputs = [p for p in parameters if p.get("name") == "input"]
    if not inputs or len(inputs) > MAX_INPUTS:
        raise invalid(f"$import needs 1 to {MAX_INPUTS} 'input' parameters (found {len(inputs)})")
    return [_input(p, n, import_dir) for n, p in enumerate(inputs)]


@router.post("/$import")
async def kickoff(request: Request) -> Response:
    require_admin(request, "$import")
    if prefer(request, "respond-async") is None:
        raise invalid("$import runs asynchronously: send the header 'Prefer: respond-async'")
    settings = request.app.state.settings
    import_dir = str(settings.import_dir) if settings.import_dir else None
    inputs = parse_kickoff(parse_json_body(await read_body(request)), import_dir)
    context = write_context(request, "PUT", "")
    params = {
        "inputs": inputs,
        "request": request_url(request),
        "import_dir": import_dir,
        "max_bytes": settings.import_max_bytes,
        "timeout": settings.import_fetch_timeout_seconds,
        "context": {
            "actor": context.actor,
            "client_addr": context.client_addr,
            "request_id": context.request_id,
            "client_id": context.client_id or "fhirledger-import",
            "scope_kind": context.scope_kind,
        },
    }
    pool = request.app.state.pool
    async with pool.acquire() as conn, conn.transaction():
        job = await queue_job(conn, "bulk-import", params)
        await import_state.record(conn, job)
    status_url = f"{base_url(request)}/$import-status/{job}"
    text = f"Import job {job} queued for {len(inputs)} input(s); poll {status_url}"
    issue = Issue("information", "informational", text)
    return fhir_response(request, outcome_bytes([issue]), 202, {"Content-Location": status_url})


async def _import_job(request: Request, job_id: str) -> tuple[int, tuple[bool, dict | None]]:
    state = None
    if job_id.isdigit() and len(job_id) < 18:
        state = await import_state.read(request.app.state.pool, int(job_id))
    if state is None:
        raise not_found(f"No import job '{job_id[:40]}' is known to this server; $import answers the URL of its job")
    return int(job_id), state


@router.get("/$import-status/{job_id}")
async def status(request: Request, job_id: str) -> Response:
    require_admin(request, "$import-status")
    job, (cancelled, result) = await _import_job(request, job_id)
    if cancelled:
        raise not_found(f"Import job {job} was cancelled; the resources it had written stay")
    state = await job_status(request.app.state.pool, job)
    assert state is not None
    if state.status == "failed":
        raise FhirError(500, "exception", f"Import job {job} failed: {(state.error or '')[:500]}")
    if state.status != "done" or result is None:
        p = state.progress
        progress = f"{state.status}: {p.get('resources', 0)} imported, {p.get('skipped', 0)} already there"
        return Response(status_code=202, headers={"X-Progress": progress, "Retry-After": "2"})
    return Response(orjson.dumps(result), 200, media_type="application/json")


@router.delete("/$import-status/{job_id}")
async def cancel(request: Request, job_id: str) -> Response:
    require_admin(request, "$import-status")
    job, _ = await _import_job(request, job_id)
    await import_state.cancel(request.app.state.pool, job)
    issue = Issue("information", "informational", f"Import job {job} cancelled; the resources it had written stay")
    return fhir_response(request, outcome_bytes([issue]), 202)
