"""``POST [base]`` with a transaction or batch Bundle (https://hl7.org/fhir/R4/http.html#transaction)."""

from __future__ import annotations

from http import HTTPStatus

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.api.http import fhir_response, lenient, parse_json, prefer, read_body, write_context
from app.commands.bundle_entries import BundleEntry, parse_bundle
from app.commands.transaction import EntryResult, prepare_entries, run_entries
from app.commands.unit_of_work import run_write
from app.errors import FhirError, operation_outcome
from app.fhirtime import format_instant
from app.queries.bundle import bundle_bytes, entry_bytes
from app.queries.search.match import match_ids

router = APIRouter()


def _matcher(request: Request):
    return getattr(request.app.state, "matcher", None)


def _result_entry(base: str, result: EntryResult) -> bytes:
    response: dict = {"status": result.status}
    if result.location:
        response["location"] = result.location
    if result.etag:
        response["etag"] = result.etag
    if result.last_modified:
        response["lastModified"] = format_instant(result.last_modified)
    if result.outcome:
        response["outcome"] = operation_outcome(result.outcome)
    entry: dict = {}
    if result.location and result.resource is not None:
        entry["fullUrl"] = f"{base}/{result.location.split('/_history')[0]}"
    entry["response"] = response
    return entry_bytes(entry, result.resource)


async def _batch_entry(request: Request, entry: BundleEntry, representation: bool) -> EntryResult:
    try:
        prepare_entries([entry], lenient(request))
        context = write_context(request, entry.method, entry.url)
        (result,) = await run_write(
            request.app.state.pool, context, lambda tx: run_entries(tx, [entry], representation), match_ids
        )
        return result
    except FhirError as exc:
        phrase = HTTPStatus(exc.status).phrase if exc.status in HTTPStatus._value2member_map_ else ""
        return EntryResult(entry.index, f"{exc.status} {phrase}".strip(), outcome=exc.all_issues())


@router.post("")
@router.post("/")
async def process_bundle(request: Request) -> Response:
    settings = request.app.state.settings
    body = parse_json(await read_body(request))
    bundle_type, entries = parse_bundle(body, settings.max_bundle_entries)
    representation = (prefer(request, "return") or "minimal").lower() == "representation"
    base = str(request.base_url).rstrip("/") + settings.base_path
    if bundle_type == "transaction":
        prepare_entries(entries, lenient(request))
        context = write_context(request, "POST", "")
        results = await run_write(
            request.app.state.pool, context, lambda tx: run_entries(tx, entries, representation), match_ids
        )
    else:
        results = [await _batch_entry(request, entry, representation) for entry in entries]
    response_type = f"{bundle_type}-response"
    return fhir_response(request, bundle_bytes(response_type, [], (_result_entry(base, r) for r in results)))
