"""The one place errors become HTTP: every error is an OperationOutcome."""

from __future__ import annotations

import logging

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.api.http import FHIR_JSON
from app.errors import FhirError, Issue, operation_outcome

log = logging.getLogger("fhirledger.api")

_HTTP_CODES = {404: "not-found", 405: "not-supported", 413: "too-costly", 415: "not-supported"}


def outcome_response(status: int, issues: list[Issue], headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(operation_outcome(issues)), status, headers=headers, media_type=FHIR_JSON)


async def _fhir_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, FhirError)
    return outcome_response(exc.status, exc.all_issues(), exc.headers or None)


async def http_error(request: Request, exc: Exception) -> Response:
    """An HTTP error (404, 405 …) as its OperationOutcome."""
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404:
        text = f"No FHIR endpoint at {request.url.path}; the FHIR base is {request.app.state.settings.base_path}"
    elif exc.status_code == 405:
        text = f"{request.method} is not allowed on {request.url.path}"
    else:
        text = str(exc.detail)
    issue = Issue("error", _HTTP_CODES.get(exc.status_code, "processing"), text)
    return outcome_response(exc.status_code, [issue], dict(exc.headers) if exc.headers else None)


async def _validation_error(_: Request, exc: Exception) -> Response:
    return outcome_response(400, [Issue("error", "invalid", f"Malformed request: {exc}")])


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return outcome_response(500, [Issue("fatal", "exception", f"Internal server error: {type(exc).__name__}")])


def install(app: FastAPI) -> None:
    app.add_exception_handler(FhirError, _fhir_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected)
