"""Operations: ``$validate`` at type and system level (https://hl7.org/fhir/R4/resource-operation-validate.html),
``$reindex`` and the status of the job it schedules.

``$validate`` answers 200 with an OperationOutcome listing every issue (an ``information`` issue
when valid) and writes nothing. ``$reindex`` answers 202 with a ``Content-Location`` of
``[base]/$reindex-status/[job]``, a Parameters resource giving the job's status (queued, running,
done, failed), progress counts and times."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.api.auth import require_admin
from app.api.http import base_url, fhir_response, lenient, outcome_bytes, read_body
from app.api.json_body import read_json
from app.errors import Issue, invalid, not_found
from app.fhirspec.resource_types import resource_types
from app.fhirtime import format_instant
from app.identity import require_type
from app.job_queue import queue_or_join
from app.jobs.status import JobStatus, job_status
from app.validation import validate_resource

router = APIRouter()


def _resource_of(body: object) -> object:
    """A resource, or the ``resource`` parameter of a Parameters resource."""
    if isinstance(body, dict) and body.get("resourceType") == "Parameters":
        for parameter in body.get("parameter") or []:
            if isinstance(parameter, dict) and parameter.get("name") == "resource":
                if "resource" not in parameter:
                    raise invalid("Parameters.parameter 'resource' carries no resource")
                return parameter["resource"]
        raise invalid("$validate takes a resource, or Parameters with a 'resource' parameter")
    return body


def _outcome(resource: object, expected_type: str | None, is_lenient: bool, json_issues: list[Issue]) -> bytes:
    issues: list[Issue] = list(json_issues)
    if expected_type is not None and isinstance(resource, dict) and resource.get("resourceType") != expected_type:
        issues.append(
            Issue(
                "error",
                "invalid",
                f"The resource is a {resource.get('resourceType')}, not a {expected_type}",
                ("resourceType",),
            )
        )
    issues += validate_resource(resource, lenient=is_lenient)
    if not any(i.severity in ("error", "fatal") for i in issues):
        issues.insert(0, Issue("information", "informational", "Validation successful: no errors found"))
    return outcome_bytes(issues)


@router.post("/$validate")
async def validate_system(request: Request) -> Response:
    body, json_issues = read_json(await read_body(request), control_characters=False)
    return fhir_response(request, _outcome(_resource_of(body), None, lenient(request), json_issues))


@router.post("/{resource_type}/$validate")
async def validate_type(request: Request, resource_type: str) -> Response:
    require_type(resource_type)
    body, json_issues = read_json(await read_body(request), control_characters=False)
    return fhir_response(request, _outcome(_resource_of(body), resource_type, lenient(request), json_issues))


@router.post("/$reindex")
@router.post("/{resource_type}/$reindex")
async def reindex(request: Request, resource_type: str | None = None) -> Response:
    """Schedule a rebuild of the projections of one type (or all types) from the event log; the
    answer's Content-Location is polled for the job's status."""
    require_admin(request, "$reindex")
    if resource_type is not None:
        require_type(resource_type)
    types = [resource_type] if resource_type else list(resource_types())
    job, merged = await queue_or_join(request.app.state.pool, "rebuild-types", {"types": types})
    what = resource_type or "every resource type"
    status_url = f"{base_url(request)}/$reindex-status/{job}"
    done = "was already queued and covers" if merged else "scheduled for"
    issue = Issue("information", "informational", f"Reindex job {job} {done} {what}; poll {status_url}")
    return fhir_response(request, outcome_bytes([issue]), 202, {"Content-Location": status_url})


def _value(value: object) -> dict:
    if isinstance(value, bool):
        return {"valueBoolean": value}
    if isinstance(value, int):
        return {"valueInteger": value}
    return {"valueString": str(value)}


def _status_parameters(job: JobStatus) -> dict:
    params: list[dict] = [
        {"name": "job", "valueString": str(job.id)},
        {"name": "kind", "valueCode": job.kind},
        {"name": "status", "valueCode": job.status},
    ]
    types = job.params.get("types")
    if isinstance(types, list):
        scope = ", ".join(types) if len(types) <= 10 else f"{len(types)} resource types"
        params.append({"name": "scope", "valueString": scope})
    if job.progress:
        parts = [{"name": str(k), **_value(v)} for k, v in job.progress.items()]
        params.append({"name": "progress", "part": parts})
    for name, at in (("created", job.created), ("started", job.started), ("finished", job.finished)):
        if at is not None:
            params.append({"name": name, "valueInstant": format_instant(at)})
    if job.error:
        params.append({"name": "error", "valueString": job.error[:1000]})
    return {"resourceType": "Parameters", "parameter": params}


@router.api_route("/$reindex-status/{job_id}", methods=["GET", "HEAD"])
async def reindex_status(request: Request, job_id: str) -> Response:
    """A background job's state: queued, running, done or failed, with its progress counts."""
    require_admin(request, "$reindex-status")
    job = await job_status(request.app.state.pool, int(job_id)) if job_id.isdigit() and len(job_id) < 18 else None
    if job is None:
        raise not_found(f"No job '{job_id[:40]}' is known to this server; $reindex answers the URL of its job")
    headers = {"X-Progress": job.status}
    return fhir_response(request, orjson.dumps(_status_parameters(job)), 200, headers)
