"""search-system: ``GET [base]?_type=A,B&…`` and ``POST [base]/_search`` over several types with
the parameters they share (https://hl7.org/fhir/R4/http.html#search). Results are ordered by
(type, id); the keyset cursor holds both, so ``next`` and ``previous`` links page either way.
``_summary`` and ``_elements`` shape each entry as on a type search.

With a compartment (``[base]/Patient/1/*?…``, https://hl7.org/fhir/R4/search.html#compartments)
the search covers the compartment's types, focal type first, each confined to the compartment.

Only types the token may search take part (a type named in ``_type`` it may not search is a 403),
each restricted as a search of that type alone (patient compartment, scope queries)."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
import orjson

from app.auth import Principal, forbidden
from app.errors import FhirError, Issue, invalid
from app.events.codec import decode
from app.fhirspec.compartments import member_types
from app.fhirspec.resource_types import resource_types
from app.identity import require_type
from app.projections.current_state import current_table, resource_sql
from app.queries.bundle import bundle_bytes, entry_bytes, page_url
from app.queries.page_tokens import PageLinks, resolve_page_token
from app.queries.paging import cursor_error, encode_cursor
from app.queries.search.compartment import compartment_restriction, require_member, require_reach
from app.queries.search.execute import SearchRequest, check_cursor
from app.queries.search.parse import SearchQuery, parse_search, strict_failure
from app.queries.search.plan import where_clause
from app.queries.search.restriction import restriction_for
from app.queries.search.session import search_session
from app.queries.search.sql import Args
from app.queries.search.totals import ESTIMATED, counts_exactly, estimated_total
from app.queries.subset import subset

Row = tuple[str, str, bytes]  # type, id, stored resource
UNION_TYPES = 80  # types one statement covers at most (the Patient compartment has 67)


@dataclass(frozen=True)
class Position:
    """Where a page starts: after (``forward``) or before (type, id) of the cursor."""

    type: str | None
    id: str | None
    forward: bool

    def types_from(self, types: list[str]) -> list[str]:
        """The types a page from here walks through, in its direction (``types`` in result order)."""
        if self.type is None:
            return types if self.forward else types[::-1]
        if self.type not in types:
            raise cursor_error("it names a resource type this search does not cover")
        at = types.index(self.type)
        return types[at:] if self.forward else types[at::-1]

    def keyset(self, t: str, args: Args) -> str:
        if t != self.type:
            return ""
        return f" AND r.id {'>' if self.forward else '<'} {args.add(self.id)}"


def _types(params: list[tuple[str, str]]) -> list[str]:
    named = [t.strip() for k, v in params if k == "_type" for t in v.split(",") if t.strip()]
    for t in named:
        require_type(t)
    return sorted(set(named)) if named else []


def _restrictions(principal: Principal, named: list[str], queries: dict[str, SearchQuery]) -> list[str]:
    """Set each query's restriction; the types searched: all of ``named`` (403 if the token may not
    search one), else every type the token may search (403 if none)."""
    if named:
        for t in named:
            queries[t].restriction = restriction_for(principal.allows(t, "search-type"))
        return named
    types = []
    for t in queries:
        try:
            queries[t].restriction = restriction_for(principal.allows(t, "search-type"))
        except FhirError:
            continue  # a scope query that does not apply to this type: the type is left out
        types.append(t)
    if not types:
        raise forbidden(principal.allows("*", "search-system"))
    return types


async def count_rows(conn: asyncpg.Connection, types: list[str], queries: dict[str, SearchQuery], base: str) -> int:
    """The matches of every type, one statement per :data:`UNION_TYPES` types."""
    total = 0
    for start in range(0, len(types), UNION_TYPES):
        args = Args()
        counts = [
            f"SELECT count(*) AS n FROM {current_table(t)} r WHERE {where_clause(queries[t], args, base)}"
            for t in types[start : start + UNION_TYPES]
        ]
        total += await conn.fetchval(f"SELECT sum(n)::bigint FROM ({' UNION ALL '.join(counts)}) c", *args.values)
    return total


async def page_rows(
    conn: asyncpg.Connection, types: list[str], queries: dict[str, SearchQuery], at: Position, limit: int, base: str
) -> list[Row]:
    """Up to ``limit`` rows from ``at`` on, in the page's direction (reversed when paging back);
    ``types`` in result order. One statement per :data:`UNION_TYPES` types (a ``UNION ALL`` of
    one keyset query per type), not a round trip per type."""
    rows: list[Row] = []
    walk = at.types_from(types)
    order = "ASC" if at.forward else "DESC"
    for start in range(0, len(walk), UNION_TYPES):
        need = limit - len(rows)
        if need <= 0:
            break
        batch = walk[start : start + UNION_TYPES]
        args = Args()
        most = args.add(need, "int")
        branches = []
        for k, t in enumerate(batch):
            where = where_clause(queries[t], args, base) + at.keyset(t, args)
            branches.append(
                f"(SELECT {k} AS k, r.id, {resource_sql('r')} AS resource FROM {current_table(t)} r WHERE {where}"
                f" ORDER BY r.id {order} LIMIT {most})"
            )
        sql = f"SELECT * FROM ({' UNION ALL '.join(branches)}) u ORDER BY k, id {order} LIMIT {most}"
        rows += [(batch[r["k"]], r["id"], decode(r["resource"])) for r in await conn.fetch(sql, *args.values)]
    return rows


async def _uncounted_total(
    conn: asyncpg.Connection,
    types: list[str],
    queries: dict[str, SearchQuery],
    base: str,
    page_rows: int,
    complete: bool,
) -> tuple[int | None, list[Issue]]:
    """As :func:`app.queries.search.totals.page_total`, over the types searched."""
    first = queries[types[0]] if types else None
    if first is None or (complete and first.cursor is None):
        return page_rows, []
    if first.total == "estimate":
        estimates = [await estimated_total(conn, queries[t], base) for t in types]
        return max(sum(estimates), page_rows), [ESTIMATED]
    return None, []


def position(q: SearchQuery) -> Position:
    check_cursor(q.cursor, ("t", "id"))
    if q.cursor is None:
        return Position(None, None, True)
    return Position(q.cursor["t"], q.cursor["id"], q.cursor.get("d", "next") == "next")


def _candidates(req: SearchRequest, params: list[tuple[str, str]]) -> tuple[list[str], list[str]]:
    """The types named by ``_type`` (403 for one the token may not search) and the types to try:
    those named, else every type (of the compartment, focal type first) the token may search."""
    named = _types(params)
    every: tuple[str, ...] = resource_types()
    if req.compartment is not None:
        for t in named:
            require_member(req.compartment[0], t)
        every = member_types(req.compartment[0])
        named = [t for t in every if t in named]
    for t in named:
        req.principal.require(t, "search-type")
    candidates = named or [t for t in every if req.principal.allows(t, "search-type").allowed]
    if not candidates:
        raise forbidden(req.principal.allows("*", "search-system"))
    return named, candidates


def _confine(req: SearchRequest, named: list[str], types: list[str], queries: dict[str, SearchQuery]) -> list[str]:
    """For a compartment search: each query confined to the compartment; the types the token
    reaches there (a 403 when it reaches none, or not one named)."""
    if req.compartment is None:
        return types
    reached: list[str] = []
    refusal: FhirError | None = None
    for t in types:
        try:
            require_reach(req.principal.allows(t, "search-type"), *req.compartment)
        except FhirError as exc:
            if named:
                raise
            refusal = refusal or exc
            continue
        queries[t].compartment = compartment_restriction(*req.compartment, t)
        reached.append(t)
    if not reached and refusal is not None:
        raise refusal
    return reached


def _strict(req: SearchRequest, types: list[str], usable: list[str], queries: dict[str, SearchQuery]) -> None:
    """Strict handling: a parameter no type searched defines is a 400; in a compartment search
    (``Patient/1/*``), one that any type searched does not define."""
    failure = strict_failure(queries[types[0]])
    if req.strict and not usable and failure is not None:
        raise failure
    if req.strict and req.compartment is not None and len(usable) < len(types):
        bad = next(t for t in types if queries[t].ignored)
        failure = strict_failure(queries[bad])
        assert failure is not None
        comp = "/".join(req.compartment)
        raise FhirError(
            400,
            failure.code,
            f"{failure.diagnostics}. {comp}/* takes only parameters that every type searched defines "
            f"(_id, _lastUpdated, _tag, _profile, _security, _source…): name the types with _type, or search "
            f"one type with [base]/{comp}/[type]?…",
        )


def _left_out(dropped: list[str], queries: dict[str, SearchQuery]) -> Issue:
    names = sorted({name for t in dropped for name, _ in queries[t].ignored})
    some = ", ".join(dropped[:8]) + (f" and {len(dropped) - 8} more" if len(dropped) > 8 else "")
    return Issue(
        "warning",
        "not-supported",
        f"Types of the compartment that do not define {', '.join(names)[:200]} were left out of the search: {some}",
    )


def _no_includes(req: SearchRequest, first: SearchQuery) -> None:
    """_include/_revinclude are not applied across types: 400 under strict handling, else a warning."""
    why = "_include and _revinclude are not supported on a search across types; search one type to include"
    if req.strict:
        raise FhirError(400, "not-supported", f"{why} (send 'Prefer: handling=lenient' to have them ignored)")
    first.warnings.append(Issue("warning", "not-supported", f"{why}; they were ignored"))


async def search_system(pool: asyncpg.Pool, req: SearchRequest) -> bytes:
    """``GET [base]?…``, or with ``req.compartment`` the compartment search ``[base]/Patient/1/*?…``."""
    path = "" if req.compartment is None else "/".join((*req.compartment, "*"))
    params, token = await resolve_page_token(pool, path, req.params)
    named, candidates = _candidates(req, params)
    queries = {
        t: parse_search(t, params, strict=False, default_count=req.default_count, max_count=req.max_count)
        for t in candidates
    }
    types = _confine(req, named, _restrictions(req.principal, named, queries), queries)
    # a parameter a type does not define means that type cannot match
    usable = [t for t in types if not queries[t].ignored]
    _strict(req, types, usable, queries)
    first = queries[usable[0] if usable else types[0]]
    if req.compartment is not None and usable and len(usable) < len(types):
        first.warnings.append(_left_out([t for t in types if t not in usable], queries))
    if first.sort:
        raise invalid("_sort is not supported on a search across types; results come ordered by type and id")
    if first.includes or first.revincludes:
        _no_includes(req, first)
    at = position(first)
    url = f"{req.base}/{path}" if path else req.base
    links = [{"relation": "self", "url": page_url(url, params, {})}]
    rows: list[Row] = []
    notes: list[Issue] = []
    async with search_session(pool) as conn:  # planned for their values, as a search of one type is
        total = await count_rows(conn, usable, queries, req.base) if counts_exactly(first) else None
        if first.summary != "count" and first.count > 0:
            rows = await page_rows(conn, usable, queries, at, first.count + 1, req.base)
        more = len(rows) > first.count
        if total is None and first.total != "none" and first.count > 0:
            page = len(rows[: first.count])
            total, notes = await _uncounted_total(conn, usable, queries, req.base, page, not more)
    rows = rows[: first.count]
    if not at.forward:
        rows.reverse()
    pager = PageLinks(pool, url, path, params, token)
    if rows and (more if at.forward else True):
        cursor = encode_cursor({"t": rows[-1][0], "id": rows[-1][1], "d": "next"})
        links.append({"relation": "next", "url": await pager.link(cursor)})
    if rows and first.cursor is not None and (at.forward or more):
        cursor = encode_cursor({"t": rows[0][0], "id": rows[0][1], "d": "prev"})
        links.append({"relation": "previous", "url": await pager.link(cursor)})
    entries = [
        entry_bytes(
            {"fullUrl": f"{req.base}/{t}/{rid}", "search": {"mode": "match"}},
            subset(resource, t, queries[t].summary, queries[t].elements),
        )
        for t, rid, resource in rows
    ]
    if first.warnings or notes:
        outcome = {"resourceType": "OperationOutcome", "issue": [w.to_json() for w in first.warnings + notes]}
        entries.append(entry_bytes({"search": {"mode": "outcome"}}, orjson.dumps(outcome)))
    return bundle_bytes("searchset", links, entries, total)
