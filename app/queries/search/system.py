"""search-system: ``GET [base]?_type=A,B&…`` over several types with the parameters they share
(https://hl7.org/fhir/R4/http.html#search). Results are ordered by (type, id); the keyset cursor
holds both."""

from __future__ import annotations

import asyncpg
import orjson

from app.errors import invalid
from app.fhirspec.resource_types import resource_types
from app.identity import require_type
from app.projections.current_state import current_table
from app.queries.bundle import bundle_bytes, entry_bytes, page_url
from app.queries.paging import CURSOR_PARAM, encode_cursor
from app.queries.search.execute import SearchRequest
from app.queries.search.parse import parse_search, strict_failure
from app.queries.search.plan import where_clause
from app.queries.search.sql import Args


def _types(params: list[tuple[str, str]]) -> list[str]:
    named = [t.strip() for k, v in params if k == "_type" for t in v.split(",") if t.strip()]
    for t in named:
        require_type(t)
    return sorted(set(named)) if named else list(resource_types())


async def search_system(pool: asyncpg.Pool, req: SearchRequest) -> bytes:
    types = _types(req.params)
    queries = {
        t: parse_search(t, req.params, strict=False, default_count=req.default_count, max_count=req.max_count)
        for t in types
    }
    # a parameter a type does not define means that type cannot match; strict: none may
    usable = [t for t in types if not queries[t].ignored]
    failure = strict_failure(queries[types[0]])
    if req.strict and not usable and failure is not None:
        raise failure
    warnings = queries[(usable or types)[0]].warnings
    types = usable or types[:1]
    first = queries[types[0]]
    if first.sort:
        raise invalid("_sort is not supported on a search across types; results come ordered by type and id")
    cursor = first.cursor or {}
    after_type, after_id = cursor.get("t"), cursor.get("id")
    if cursor and (not isinstance(after_type, str) or not isinstance(after_id, str)):
        raise invalid("The paging cursor _page is not one this server issued for this search")
    url = req.base
    links = [{"relation": "self", "url": page_url(url, req.params, {})}]
    total = 0 if first.total != "none" or first.summary == "count" else None
    rows: list[tuple[str, str, bytes]] = []
    for t in types if usable else []:
        q = queries[t]
        args = Args()
        where = where_clause(q, args, req.base)
        table = current_table(t)
        if total is not None:
            total += await pool.fetchval(f"SELECT count(*) FROM {table} r WHERE {where}", *args.values)
        need = first.count + 1 - len(rows)
        if need <= 0 or first.summary == "count" or (after_type is not None and t < after_type):
            continue
        keyset = f" AND r.id > {args.add(after_id)}" if t == after_type else ""
        sql = (
            f"SELECT r.id, r.resource FROM {table} r WHERE {where}{keyset} ORDER BY r.id LIMIT {args.add(need, 'int')}"
        )
        rows += [(t, r["id"], r["resource"]) for r in await pool.fetch(sql, *args.values)]
    more = len(rows) > first.count
    rows = rows[: first.count]
    if more and rows:
        state = encode_cursor({"t": rows[-1][0], "id": rows[-1][1]})
        links.append({"relation": "next", "url": page_url(url, req.params, {CURSOR_PARAM: state})})
    entries = [
        entry_bytes({"fullUrl": f"{req.base}/{t}/{rid}", "search": {"mode": "match"}}, resource)
        for t, rid, resource in rows
    ]
    if warnings:
        outcome = {"resourceType": "OperationOutcome", "issue": [w.to_json() for w in warnings]}
        entries.append(entry_bytes({"search": {"mode": "outcome"}}, orjson.dumps(outcome)))
    return bundle_bytes("searchset", links, entries, total)
