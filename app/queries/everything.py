"""``$everything``: ``GET|POST [base]/Patient/[id]/$everything`` and ``[base]/Encounter/[id]/$everything``
(https://hl7.org/fhir/R4/patient-operation-everything.html, encounter-operation-everything.html).

A ``searchset`` Bundle of the focal resource and every resource in its compartment (the R4
CompartmentDefinition, :mod:`app.fhirspec.compartments`), ``search.mode = match``, ordered by type
(the focal type first, then by name) and id, and paged by keyset ``next``/``previous`` links
(the multi-type pager of :mod:`app.queries.search.system`, each type confined like the compartment
search ``[base]/Patient/[id]/[type]``). With each page come the resources its matches reference
whose types are in no such compartment (Practitioner, Organization, Location, Medication, …),
``search.mode = include``, at most :data:`app.queries.search.includes.INCLUDE_LIMIT` a page;
referenced resources of compartment types (another patient, another patient's Encounter) are not
added: what is in the compartment comes as a match on some page.

Parameters: ``_since`` (only resources last updated at or after it, for matches and referenced
resources alike: the spec's "resources updated after this period will be included", and what HAPI
does; a client syncing with ``_since`` keeps what earlier answers gave it), ``_type`` (only those
types, for matches and referenced resources alike), ``_count`` (page size, capped as for
searches). A referenced resource comes with every page whose matches reference it, so it can
appear on several pages: an ``information`` issue in the page's OperationOutcome says so whenever
the page has referenced resources (a client keeps one copy per ``fullUrl``). ``start``
and ``end`` (care dates) are not supported: 400 under strict handling, ignored with a warning
under lenient handling. ``Bundle.total`` is not given.

A token must be allowed to read the focal resource (and see it); of the other types, those it may
read (``r`` or ``s``) take part, within its restrictions; a type named in ``_type`` it may not read
is a 403, others are left out with a warning.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import asyncpg
import orjson

from app.auth import OPEN, Principal
from app.errors import FhirError, Issue, invalid, operation_outcome
from app.fhirspec.compartments import member_types
from app.fhirspec.resource_types import is_resource_type, resource_types
from app.fhirtime import FhirDateError, format_instant, parse_range
from app.projections.current_state import current_table
from app.queries.bundle import bundle_bytes, entry_bytes, page_url
from app.queries.page_tokens import TOKEN_PARAM, PageLinks, resolve_page_token
from app.queries.paging import CURSOR_PARAM, encode_cursor
from app.queries.read import read
from app.queries.search.compartment import compartment_restriction
from app.queries.search.includes import INCLUDE_LIMIT, included
from app.queries.search.model import Include, SearchQuery
from app.queries.search.parse import parse_search
from app.queries.search.restriction import readable, restriction_for
from app.queries.search.session import search_session
from app.queries.search.system import Row, page_rows, position

OPERATION = "$everything"
FOCAL_TYPES = ("Patient", "Encounter")  # the compartments R4 defines $everything on
TRANSPORT = ("_format", "_pretty")
NOT_SUPPORTED = {
    "start": "care-date ranges are not supported; use _since (last updated) or a search with a date parameter",
    "end": "care-date ranges are not supported; use _since (last updated) or a search with a date parameter",
    "_offset": "pages are keyset pages: follow the Bundle's next links",
}


@dataclass(frozen=True)
class EverythingRequest:
    base: str  # absolute FHIR base URL
    focal_type: str  # Patient or Encounter
    focal_id: str
    params: list[tuple[str, str]]
    strict: bool
    default_count: int
    max_count: int
    principal: Principal = OPEN


@dataclass
class _Ask:
    """What the request asks for, parsed."""

    since: str | None = None  # an instant, formatted
    since_at: datetime | None = None  # the same instant
    types: set[str] | None = None  # _type
    paging: list[tuple[str, str]] = field(default_factory=list)  # _count, _page
    applied: list[tuple[str, str]] = field(default_factory=list)  # for the links
    warnings: list[Issue] = field(default_factory=list)


def _since(value: str) -> datetime:
    try:
        return parse_range(value)[0]
    except FhirDateError as exc:
        raise invalid(f"{OPERATION}: _since='{value[:40]}' is not an instant ({exc})") from None


def _types(value: str) -> set[str]:
    names = {t.strip() for t in value.split(",") if t.strip()}
    for t in sorted(names):
        if not is_resource_type(t):
            raise invalid(f"{OPERATION}: _type names '{t[:80]}', which is not a FHIR R4 resource type")
    if not names:
        raise invalid(f"{OPERATION}: _type is empty; give resource types, e.g. _type=Observation,Condition")
    return names


def _parse(params: list[tuple[str, str]], strict: bool) -> _Ask:
    ask = _Ask()
    seen: set[str] = set()
    for name, value in params:
        if name in seen and name != "_type":
            raise invalid(f"{OPERATION}: {name} may be given only once")
        seen.add(name)
        if name == "_since":
            ask.since_at = _since(value)
            ask.since = format_instant(ask.since_at)
        elif name == "_type":
            ask.types = (ask.types or set()) | _types(value)
        elif name in ("_count", CURSOR_PARAM):
            ask.paging.append((name, value))
        elif name not in TRANSPORT:
            why = NOT_SUPPORTED.get(name, "it is not a parameter of this operation (_since, _type, _count)")
            if strict:
                raise FhirError(
                    400,
                    "not-supported",
                    f"{OPERATION} parameter '{name[:60]}' is not supported: {why} "
                    "(send 'Prefer: handling=lenient' to have it ignored with a warning instead)",
                )
            ask.warnings.append(Issue("warning", "not-supported", f"Parameter '{name[:60]}' was ignored: {why}"))
            continue
        if name != CURSOR_PARAM:
            ask.applied.append((name, value))
    return ask


def _queries(req: EverythingRequest, ask: _Ask, types: list[str]) -> tuple[dict[str, SearchQuery], list[str]]:
    """One confined query per type the token may read; the types left out (403 for a named one)."""
    criteria = [("_lastUpdated", f"ge{ask.since}")] if ask.since else []
    queries: dict[str, SearchQuery] = {}
    withheld: list[str] = []
    for t in types:
        decision = readable(req.principal, t)
        try:
            restriction = restriction_for(decision)  # 403 when not allowed
        except FhirError:
            if ask.types is not None:
                raise
            withheld.append(t)
            continue
        q = parse_search(
            t, criteria + ask.paging, strict=True, default_count=req.default_count, max_count=req.max_count
        )
        q.restriction = restriction
        q.compartment = compartment_restriction(req.focal_type, req.focal_id, t)
        queries[t] = q
    return queries, withheld


async def _referenced(
    pool: asyncpg.Pool, req: EverythingRequest, rows: list[Row], targets: frozenset[str], warnings: list[Issue]
) -> list[Row]:
    """The resources of ``targets`` types the page's matches reference, at most INCLUDE_LIMIT."""
    out: list[Row] = []
    seen: set[tuple[str, str]] = set()
    by_type: dict[str, list[str]] = {}
    for t, rid, _ in rows:
        by_type.setdefault(t, []).append(rid)
    for t, ids in by_type.items():
        if len(out) >= INCLUDE_LIMIT:
            warnings.append(
                Issue(
                    "warning",
                    "too-costly",
                    f"Resources referenced by this page were cut at {INCLUDE_LIMIT}; a smaller _count "
                    "brings fewer per page",
                )
            )
            break
        q = SearchQuery(t, includes=[Include(t, "*", None, text=f"References of {t}")])
        for found in await included(pool, q, ids, req.principal, req.base, targets):
            if (found[0], found[1]) not in seen:
                seen.add((found[0], found[1]))
                out.append(found)
        warnings += [w for w in q.warnings if w not in warnings]
    return out[:INCLUDE_LIMIT]


async def _changed_since(pool: asyncpg.Pool, rows: list[Row], since: datetime) -> list[Row]:
    """Those of ``rows`` last updated at or after ``since`` (as ``_lastUpdated=ge`` finds them)."""
    ids: dict[str, list[str]] = {}
    for t, rid, _ in rows:
        ids.setdefault(t, []).append(rid)
    recent: set[tuple[str, str]] = set()
    for t, wanted in ids.items():
        found = await pool.fetch(
            f"SELECT id FROM {current_table(t)} WHERE id = ANY($1::text[]) AND last_updated >= $2", wanted, since
        )
        recent.update((t, r["id"]) for r in found)
    return [row for row in rows if (row[0], row[1]) in recent]


REPEATS = Issue(
    "information",
    "informational",
    "Resources the matches reference (search.mode = include) come with every page whose matches reference "
    "them, so one can appear on several pages of this $everything; keep one copy per fullUrl",
)


def _withheld_issue(withheld: list[str]) -> Issue:
    return Issue(
        "warning",
        "forbidden",
        f"Resources of the {len(withheld)} types the token's scopes do not let it read are left out: "
        + ", ".join(withheld),
    )


async def everything(pool: asyncpg.Pool, req: EverythingRequest) -> bytes:
    path = f"{req.focal_type}/{req.focal_id}/{OPERATION}"
    params, token = await resolve_page_token(pool, path, req.params)
    ask = _parse([(k, v) for k, v in params if k != TOKEN_PARAM], req.strict)
    await read(pool, req.focal_type, req.focal_id, req.principal, req.base)  # 404, 410, 403
    members = member_types(req.focal_type)
    types = [t for t in members if ask.types is None or t in ask.types]
    if not types:
        raise invalid(
            f"{OPERATION}: _type names no type of the {req.focal_type} compartment; name at least one (the "
            "referenced resources of other types come with the compartment's resources that reference them)"
        )
    targets = frozenset(t for t in resource_types() if t not in members and (ask.types is None or t in ask.types))
    queries, withheld = _queries(req, ask, types)
    warnings = list(ask.warnings)
    if withheld:
        warnings.append(_withheld_issue(withheld))
    first = next(iter(queries.values()), None) or parse_search(
        req.focal_type, ask.paging, strict=True, default_count=req.default_count, max_count=req.max_count
    )
    warnings += first.warnings
    ask.applied = [(k, str(first.count) if k == "_count" else v) for k, v in ask.applied]  # as capped
    at = position(first)
    searched = list(queries)
    rows: list[Row] = []
    if first.count:
        async with search_session(pool) as conn:  # planned for their values, as a search's statements are
            rows = await page_rows(conn, searched, queries, at, first.count + 1, req.base)
    more = len(rows) > first.count
    rows = rows[: first.count]
    if not at.forward:
        rows.reverse()
    url = f"{req.base}/{path}"
    links = [{"relation": "self", "url": page_url(url, ask.applied, {})}]
    pager = PageLinks(pool, url, path, ask.applied, token)
    if rows and (more or not at.forward):
        links.append({"relation": "next", "url": await pager.link(_cursor(rows[-1], "next"))})
    if rows and first.cursor is not None and (at.forward or more):
        links.append({"relation": "previous", "url": await pager.link(_cursor(rows[0], "prev"))})
    extra = await _referenced(pool, req, rows, targets, warnings) if targets and rows else []
    if extra and ask.since_at is not None:
        extra = await _changed_since(pool, extra, ask.since_at)
    if extra:
        warnings.append(REPEATS)
    entries = [_entry(req.base, row, "match") for row in rows] + [_entry(req.base, row, "include") for row in extra]
    if warnings:
        entries.append(entry_bytes({"search": {"mode": "outcome"}}, orjson.dumps(operation_outcome(warnings))))
    return bundle_bytes("searchset", links, entries)


def _cursor(row: Row, direction: str) -> str:
    return encode_cursor({"t": row[0], "id": row[1], "d": direction})


def _entry(base: str, row: Row, mode: str) -> bytes:
    t, rid, resource = row
    return entry_bytes({"fullUrl": f"{base}/{t}/{rid}", "search": {"mode": mode}}, resource)


def parameters_params(body: object) -> list[tuple[str, str]]:
    """The (name, value) pairs of a ``Parameters`` resource sent to ``POST …/$everything``."""
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        raise invalid(f"POST {OPERATION} takes a Parameters resource (or no body)")
    out: list[tuple[str, str]] = []
    for i, p in enumerate(body.get("parameter") or []):
        name = p.get("name") if isinstance(p, dict) else None
        values = [v for k, v in p.items() if k.startswith("value")] if isinstance(p, dict) else []
        if not isinstance(name, str) or len(values) != 1 or not isinstance(values[0], str | int) or values[0] is True:
            raise invalid(
                f"Parameters.parameter[{i}] is not a name with one primitive value[x]", expression=(f"parameter[{i}]",)
            )
        out.append((name, str(values[0])))
    return out
