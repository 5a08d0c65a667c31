"""Running a write command for an HTTP request and answering with its result
(https://hl7.org/fhir/R4/http.html: status, ``Location``/``Content-Location``, ``ETag``,
``Last-Modified``, ``Prefer: return=``), and each entry of a transaction or batch response Bundle
(``Bundle.entry.response``: the same result, a read, a search or a failure)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from http import HTTPStatus
from urllib.parse import unquote

from fastapi import Request
from fastapi.responses import Response

from app.api.http import base_url, etag, fhir_response, outcome_bytes, prefer, version_headers, write_context
from app.api.write_auth import matcher_of
from app.commands.bundle_entries import BundleEntry
from app.commands.create import Create
from app.commands.patch import Patch
from app.commands.result import WriteResult, WriteStatus
from app.commands.transaction import EntryOutcome, EntryRead, run_entries
from app.commands.unit_of_work import run_write
from app.commands.update import Update
from app.commands.write import WriteCommand
from app.errors import FhirError, Issue, operation_outcome
from app.fhirtime import format_instant
from app.queries.bundle import entry_bytes


async def perform_write(request: Request, command: WriteCommand, warnings: list[Issue] | None = None) -> Response:
    """Run ``command`` in a write transaction of its own and answer the request with its result."""
    context = write_context(request, command.method, command.url)
    optimistic = isinstance(command, Update) and command.resource_id is not None  # see app/commands/unit_of_work.py
    out = await run_write(request.app.state.pool, context, command, matcher_of(request), optimistic)
    return render_write(request, command, out, warnings)


async def perform_entries(request: Request, entries: list[BundleEntry], method: str, url: str) -> list[EntryOutcome]:
    """Run Bundle entries in one write transaction (a transaction, or one entry of a batch);
    ``method`` and ``url`` are what the events record of the request."""
    context = write_context(request, method, url)
    return await run_write(request.app.state.pool, context, lambda tx: run_entries(tx, entries), matcher_of(request))


def write_message(command: WriteCommand, out: WriteResult) -> str:
    """What happened, in words, for the OperationOutcome of a write."""
    what = f"{out.resource_type}/{out.resource_id}"
    criteria = f"'{unquote(command.criteria)[:100]}'" if command.criteria else ""
    if out.status is WriteStatus.EXISTING:
        return f"{what} matches {criteria}; nothing was created"
    if out.status is WriteStatus.DELETED:
        return f"Deleted {what} (version {out.version} records the deletion)"
    if out.status is WriteStatus.UNCHANGED:
        if criteria:
            return f"No {out.resource_type} matches {criteria}; nothing was deleted"
        return f"{what} was already deleted or never existed; nothing changed"
    if isinstance(command, Patch):
        return f"Patched {what} to version {out.version}"
    if isinstance(command, Create) and criteria:
        return f"Created {what} version 1 (nothing matched {criteria})"
    done = "Created" if out.status is WriteStatus.CREATED else "Updated"
    return f"{done} {what} version {out.version}"


@dataclass(frozen=True)
class WriteReply:
    """How to answer a successful write, per ``Prefer: return=``."""

    status: int
    resource: bytes | None
    headers: dict[str, str]
    message: Callable[[], str]  # the OperationOutcome's text, made only when one is sent


def write_response(request: Request, reply: WriteReply, warnings: list[Issue] | None = None) -> Response:
    """Answer a write per ``Prefer: return=``; validation warnings (lenient handling) go in the
    OperationOutcome when one is asked for, and always in ``Warning`` headers."""
    if warnings:
        text = "; ".join(w.diagnostics.replace('"', "'") for w in warnings)[:2000]
        text = text.encode("ascii", "replace").decode("ascii")
        reply.headers["Warning"] = f'199 fhirledger "{text}"'
    wanted = (prefer(request, "return") or "representation").lower()
    if wanted == "minimal":
        return fhir_response(request, None, reply.status, reply.headers)
    if wanted == "operationoutcome" or reply.resource is None:
        issues = [Issue("information", "informational", reply.message()), *(warnings or [])]
        return fhir_response(request, outcome_bytes(issues), reply.status, reply.headers)
    return fhir_response(request, reply.resource, reply.status, reply.headers)


def render_write(
    request: Request, command: WriteCommand, out: WriteResult, warnings: list[Issue] | None = None
) -> Response:
    """Answer a write from its result: the status decides the code and the headers (``Location``
    for a creation, ``Content-Location`` otherwise, ``ETag`` for a deletion)."""
    message = partial(write_message, command, out)
    if out.status in (WriteStatus.DELETED, WriteStatus.UNCHANGED):
        headers = {"ETag": etag(out.version)} if out.status is WriteStatus.DELETED else {}
        if (prefer(request, "return") or "").lower() == "minimal":
            return Response(status_code=204, headers=headers)
        return write_response(request, WriteReply(200, None, headers, message))
    assert out.version is not None and out.last_updated is not None
    headers = version_headers(out.version, out.last_updated)
    location = f"{base_url(request)}/{location_path(out)}"
    headers["Location" if out.status is WriteStatus.CREATED else "Content-Location"] = location
    return write_response(request, WriteReply(entry_code(out), out.resource, headers, message), warnings)


def location_path(out: WriteResult) -> str:
    """``Patient/1/_history/2``: where the version a write wrote (or found) is read."""
    return f"{out.resource_type}/{out.resource_id}/_history/{out.version}"


def entry_code(out: WriteResult) -> int:
    """201 for a creation, 204 for a deletion (or nothing to delete), else 200."""
    if out.status is WriteStatus.CREATED:
        return 201
    return 204 if out.status in (WriteStatus.DELETED, WriteStatus.UNCHANGED) else 200


def status_line(code: int) -> str:
    """``201`` -> ``201 Created``, as ``Bundle.entry.response.status`` carries it."""
    phrase = HTTPStatus(code).phrase if code in HTTPStatus._value2member_map_ else ""
    return f"{code} {phrase}".strip()


def entry_write_response(out: WriteResult) -> dict:
    """A write entry's ``Bundle.entry.response``: status, location and ETag of the version written
    (or found, for a conditional create that matched); a deletion carries its ETag."""
    response: dict = {"status": status_line(entry_code(out))}
    if out.status is WriteStatus.UNCHANGED:
        return response
    if out.status is not WriteStatus.DELETED:
        response["location"] = location_path(out)
    response["etag"] = etag(out.version)
    if out.last_updated is not None:
        response["lastModified"] = format_instant(out.last_updated)
    return response


Answer = WriteResult | EntryRead | bytes | FhirError
"""An entry's outcome as answered: a write's result, a read, a search's Bundle, or its failure."""


def render_entry(base: str, answer: Answer, representation: bool, warnings: list[Issue]) -> bytes:
    """One entry of the response Bundle; write entries carry their resource only when
    ``Prefer: return=representation`` asks for it, and their validation warnings (lenient
    handling) as the response's outcome."""
    entry: dict = {}
    resource: bytes | None = None
    if isinstance(answer, WriteResult):
        response = entry_write_response(answer)
        if warnings:
            response["outcome"] = operation_outcome(warnings)
        if representation and answer.resource is not None and "location" in response:
            resource = answer.resource
            entry["fullUrl"] = f"{base}/{answer.resource_type}/{answer.resource_id}"
    elif isinstance(answer, EntryRead):
        response = {"status": status_line(200), "etag": etag(answer.version)}
        response["lastModified"] = format_instant(answer.last_updated)
        resource = answer.resource
    elif isinstance(answer, FhirError):
        response = {"status": status_line(answer.status), "outcome": operation_outcome(answer.all_issues())}
    else:  # a search's Bundle
        response, resource = {"status": status_line(200)}, answer
    entry["response"] = response
    return entry_bytes(entry, resource)
