"""search-system: ``GET [base]?_type=A,B&…`` and ``POST [base]/_search`` over several types with
the parameters they share (https://hl7.org/fhir/R4/http.html#search). Results are ordered by
(type, id); the keyset cursor holds both, so ``next`` and ``previous`` links page either way.
``_summary`` and ``_elements`` shape each entry as on a type search.

Only types the token may search take part (a type named in ``_type`` it may not search is a 403),
each restricted as a search of that type alone (patient compartment, scope queries)."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
import orjson

from app.auth import Principal, forbidden
from app.errors import FhirError, Issue, invalid
from app.fhirspec.resource_types import resource_types
from app.identity import require_type
from app.projections.current_state import current_table
from app.queries.bundle import bundle_bytes, entry_bytes, page_url
from app.queries.page_tokens import PageLinks, resolve_page_token
from app.queries.paging import encode_cursor
from app.queries.search.execute import SearchRequest, check_cursor
from app.queries.search.parse import SearchQuery, parse_search, strict_failure
from app.queries.search.plan import where_clause
from app.queries.search.restriction import restriction_for
from app.queries.search.sql import Args
from app.queries.search.totals import ESTIMATED, counts_exactly, estimated_total
from app.queries.subset import subset

Row = tuple[str, str, bytes]  # type, id, stored resource


@dataclass(frozen=True)
class _Position:
    """Where a page starts: after (``forward``) or before (type, id) of the cursor."""

    type: str | None
    id: str | None
    forward: bool

    def skips(self, t: str) -> bool:
        return self.type is not None and (t < self.type if self.forward else t > self.type)

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


async def _count(pool: asyncpg.Pool, types: list[str], queries: dict[str, SearchQuery], base: str) -> int:
    total = 0
    for t in types:
        args = Args()
        where = where_clause(queries[t], args, base)
        total += await pool.fetchval(f"SELECT count(*) FROM {current_table(t)} r WHERE {where}", *args.values)
    return total


async def _page(
    pool: asyncpg.Pool, types: list[str], queries: dict[str, SearchQuery], at: _Position, limit: int, base: str
) -> list[Row]:
    """Up to ``limit`` rows from ``at`` on, in the page's direction (reversed when paging back)."""
    rows: list[Row] = []
    for t in types if at.forward else reversed(types):
        need = limit - len(rows)
        if need <= 0:
            break
        if at.skips(t):
            continue
        args = Args()
        where = where_clause(queries[t], args, base) + at.keyset(t, args)
        order = "ASC" if at.forward else "DESC"
        sql = f"SELECT r.id, r.resource FROM {current_table(t)} r WHERE {where} ORDER BY r.id {order}"
        rows += [
            (t, r["id"], r["resource"]) for r in await pool.fetch(f"{sql} LIMIT {args.add(need, 'int')}", *args.values)
        ]
    return rows


async def _uncounted_total(
    pool: asyncpg.Pool, types: list[str], queries: dict[str, SearchQuery], base: str, page_rows: int, complete: bool
) -> tuple[int | None, list[Issue]]:
    """As :func:`app.queries.search.totals.page_total`, over the types searched."""
    first = queries[types[0]] if types else None
    if first is None or (complete and first.cursor is None):
        return page_rows, []
    if first.total == "estimate":
        estimates = [await estimated_total(pool, queries[t], base) for t in types]
        return max(sum(estimates), page_rows), [ESTIMATED]
    return None, []


def _position(q: SearchQuery) -> _Position:
    check_cursor(q.cursor, ("t", "id"))
    if q.cursor is None:
        return _Position(None, None, True)
    return _Position(q.cursor["t"], q.cursor["id"], q.cursor.get("d", "next") == "next")


async def search_system(pool: asyncpg.Pool, req: SearchRequest) -> bytes:
    params, token = await resolve_page_token(pool, "", req.params)
    named = _types(params)
    for t in named:
        req.principal.require(t, "search-type")
    candidates = named or [t for t in resource_types() if req.principal.allows(t, "search-type").allowed]
    if not candidates:
        raise forbidden(req.principal.allows("*", "search-system"))
    queries = {
        t: parse_search(t, params, strict=False, default_count=req.default_count, max_count=req.max_count)
        for t in candidates
    }
    types = _restrictions(req.principal, named, queries)
    # a parameter a type does not define means that type cannot match; strict: none may
    usable = [t for t in types if not queries[t].ignored]
    failure = strict_failure(queries[types[0]])
    if req.strict and not usable and failure is not None:
        raise failure
    first = queries[usable[0] if usable else types[0]]
    if first.sort:
        raise invalid("_sort is not supported on a search across types; results come ordered by type and id")
    at = _position(first)
    links = [{"relation": "self", "url": page_url(req.base, params, {})}]
    total = await _count(pool, usable, queries, req.base) if counts_exactly(first) else None
    rows: list[Row] = []
    if first.summary != "count" and first.count > 0:
        rows = await _page(pool, usable, queries, at, first.count + 1, req.base)
    more = len(rows) > first.count
    notes: list[Issue] = []
    if total is None and first.total != "none" and first.count > 0:
        total, notes = await _uncounted_total(pool, usable, queries, req.base, len(rows[: first.count]), not more)
    rows = rows[: first.count]
    if not at.forward:
        rows.reverse()
    pager = PageLinks(pool, req.base, "", params, token)
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
