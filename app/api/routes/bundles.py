"""``POST [base]`` with a transaction or batch Bundle (https://hl7.org/fhir/R4/http.html#transaction)."""

from __future__ import annotations

from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.api.auth import authorize_entry
from app.api.first_use import ready_to_write
from app.api.http import base_url, fhir_response, lenient, parse_json, prefer, read_body
from app.api.write_render import perform_entries, render_entry
from app.auth import OPEN
from app.commands.bundle_commands import prepare_entries, prepare_entries_in_slices
from app.commands.bundle_entries import BundleEntry, parse_entries_in_slices
from app.commands.cooperative import Slices
from app.commands.transaction import EntryOutcome, EntrySearch
from app.errors import FhirError
from app.queries.bundle import bundle_bytes
from app.queries.search.execute import SearchRequest, search

router = APIRouter()


async def _batch_entry(request: Request, entry: BundleEntry) -> EntryOutcome | FhirError:
    try:
        authorize_entry(request, entry)
        prepare_entries([entry], lenient(request))
        (outcome,) = await perform_entries(request, [entry], entry.method, entry.url)
        return outcome
    except FhirError as exc:
        return exc


async def _answer_search(request: Request, asked: EntrySearch) -> bytes | FhirError:
    """A ``GET [type]?…`` entry: a searchset Bundle as the entry's resource (a failure becomes the
    entry's outcome: searches do not write, so they never undo a transaction)."""
    settings = request.app.state.settings
    params = parse_qsl(asked.query, keep_blank_values=True)
    req = SearchRequest(
        base_url(request),
        asked.resource_type,
        params,
        (prefer(request, "handling") or settings.search_handling).lower() == "strict",
        settings.search_default_count,
        settings.search_max_count,
        request.app.state.building_params,
        getattr(request.state, "principal", OPEN),
    )
    try:
        return await search(request.app.state.pool, req)
    except FhirError as exc:
        return exc


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

    # on the loop: the JSON parse holds the GIL from start to end (orjson), in a worker thread too
    bundle_type, parsed = await parse_entries_in_slices(parse_json(raw), settings.max_bundle_entries)
    await ready_to_write(e.resource_type for e in parsed if isinstance(e, BundleEntry) and e.resource is not None)
    if bundle_type == "transaction":
        await prepare_entries_in_slices([_well_formed(item) for item in parsed], handling)
    representation = (prefer(request, "return") or "minimal").lower() == "representation"
    base = base_url(request)
    if bundle_type == "transaction":
        entries = [_well_formed(item) for item in parsed]
        for entry in entries:  # all or nothing: one refused entry refuses the transaction
            authorize_entry(request, entry)
        outcomes: list[EntryOutcome | FhirError] = list(await perform_entries(request, entries, "POST", ""))
    else:  # each entry on its own: a malformed one gets its own 4xx response (http.html#brules)
        outcomes = [item if isinstance(item, FhirError) else await _batch_entry(request, item) for item in parsed]
    answers = [await _answer_search(request, o) if isinstance(o, EntrySearch) else o for o in outcomes]
    warnings = [item.warnings if isinstance(item, BundleEntry) else [] for item in parsed]
    response_type = f"{bundle_type}-response"
    rendered, slices = [], Slices()
    for answer, entry_warnings in zip(answers, warnings, strict=True):
        rendered.append(render_entry(base, answer, representation, entry_warnings))
        await slices.pause()
    body = bundle_bytes(response_type, [], rendered)
    return fhir_response(request, body)
