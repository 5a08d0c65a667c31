"""Operations: ``$validate`` at type and system level (https://hl7.org/fhir/R4/resource-operation-validate.html).

Answers 200 with an OperationOutcome listing every issue (an ``information`` issue when valid)
and writes nothing."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.api.http import fhir_response, lenient, outcome_bytes, read_body
from app.api.json_body import read_json
from app.errors import Issue, invalid
from app.fhirspec.resource_types import resource_types
from app.identity import require_type
from app.jobs.queue import queue_job
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
    """Schedule a rebuild of the projections of one type (or all types) from the event log."""
    if resource_type is not None:
        require_type(resource_type)
    types = [resource_type] if resource_type else list(resource_types())
    job = await queue_job(request.app.state.pool, "rebuild-types", {"types": types})
    what = resource_type or "every resource type"
    issue = Issue(
        "information",
        "informational",
        f"Reindex job {job} scheduled for {what}; `fhirledger projections status` shows its progress",
    )
    return fhir_response(request, outcome_bytes([issue]), 202, {"Content-Location": f"jobs/{job}"})
