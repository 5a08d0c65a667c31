"""``POST [base]`` with a transaction or batch Bundle (https://hl7.org/fhir/R4/http.html#transaction)."""

from __future__ import annotations

from dataclasses import replace
from http import HTTPStatus
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.api.auth import authorize_entry
from app.api.http import base_url, fhir_response, lenient, off_loop, parse_json, prefer, read_body, write_context
from app.auth import OPEN
from app.commands.bundle_entries import BundleEntry, parse_entries
from app.commands.transaction import EntryResult, prepare_entries, run_entries
from app.commands.unit_of_work import run_write
from app.errors import FhirError, operation_outcome
from app.fhirtime import format_instant
from app.queries.bundle import bundle_bytes, entry_bytes
from app.queries.search.execute import SearchRequest, search
from app.queries.search.match import match_ids

router = APIRouter()


def _result_entry(base: str, result: EntryResult) -> bytes:
    response: dict = {"status": _status_line(result.status)}
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


def _status_line(code: int) -> str:
    """``201`` -> ``201 Created``, as Bundle.entry.response.status carries it."""
    phrase = HTTPStatus(code).phrase if code in HTTPStatus._value2member_map_ else ""
    return f"{code} {phrase}".strip()


def _failed(index: int, exc: FhirError) -> EntryResult:
    """The response of an entry that failed on its own (batch, or a search entry)."""
    return EntryResult(index, exc.status, outcome=exc.all_issues())


async def _batch_entry(request: Request, entry: BundleEntry, representation: bool) -> EntryResult:
    try:
        authorize_entry(request, entry)
        prepare_entries([entry], lenient(request))
        context = write_context(request, entry.method, entry.url)
        (result,) = await run_write(
            request.app.state.pool, context, lambda tx: run_entries(tx, [entry], representation), match_ids
        )
        return result
    except FhirError as exc:
        return _failed(entry.index, exc)


async def _answer_search(request: Request, result: EntryResult) -> EntryResult:
    """A ``GET [type]?…`` entry: a searchset Bundle as the entry's resource (a failure becomes the
    entry's outcome: searches do not write, so they never undo a transaction)."""
    assert result.search is not None
    resource_type, query = result.search
    settings = request.app.state.settings
    params = parse_qsl(query, keep_blank_values=True)
    req = SearchRequest(
        base_url(request),
        resource_type,
        params,
        (prefer(request, "handling") or settings.search_handling).lower() == "strict",
        settings.search_default_count,
        settings.search_max_count,
        request.app.state.building_params,
        getattr(request.state, "principal", OPEN),
    )
    try:
        return replace(result, resource=await search(request.app.state.pool, req), search=None)
    except FhirError as exc:
        return _failed(result.index, exc)


def _well_formed(item: BundleEntry | FhirError) -> BundleEntry:
    """A transaction entry; a malformed one fails the whole transaction."""
    if isinstance(item, FhirError):
        raise item
    return item


@router.post("")
@router.post("/")
async def process_bundle(request: Request) -> Response:
    settings = request.app.state.settings
    raw = await read_body(request)
    handling = lenient(request)

    def parse_and_prepare() -> tuple[str, list[BundleEntry | FhirError]]:
        bundle_type, parsed = parse_entries(parse_json(raw), settings.max_bundle_entries)
        if bundle_type == "transaction":
            prepare_entries([_well_formed(item) for item in parsed], handling)
        return bundle_type, parsed

    bundle_type, parsed = await off_loop(request, len(raw), parse_and_prepare)
    representation = (prefer(request, "return") or "minimal").lower() == "representation"
    base = base_url(request)
    if bundle_type == "transaction":
        entries = [_well_formed(item) for item in parsed]
        for entry in entries:  # all or nothing: one refused entry refuses the transaction
            authorize_entry(request, entry)
        context = write_context(request, "POST", "")
        results = await run_write(
            request.app.state.pool, context, lambda tx: run_entries(tx, entries, representation), match_ids
        )
    else:  # each entry on its own: a malformed one gets its own 4xx response (http.html#brules)
        results = [
            _failed(i, item) if isinstance(item, FhirError) else await _batch_entry(request, item, representation)
            for i, item in enumerate(parsed)
        ]
    results = [await _answer_search(request, r) if r.search else r for r in results]
    response_type = f"{bundle_type}-response"
    body = await off_loop(
        request, len(raw), lambda: bundle_bytes(response_type, [], (_result_entry(base, r) for r in results))
    )
    return fhir_response(request, body)
