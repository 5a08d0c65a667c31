"""search: ``GET [base]/[type]?…`` and ``POST [base]/[type]/_search``
(https://hl7.org/fhir/R4/http.html#search, search.html), and compartment search
``GET [base]/Patient/[id]/[type]?…`` (the same search confined to the compartment).

Answers a ``searchset`` Bundle assembled from the stored JSON bytes (re-serialised only for
``_summary``/``_elements``), with ``self``/``next``/``previous`` links carrying an opaque keyset
cursor, so that paging is stable under concurrent writes."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
import orjson

from app.auth import OPEN, Principal
from app.errors import Issue, operation_outcome
from app.events.codec import decode
from app.identity import require_type
from app.queries.bundle import bundle_bytes, entry_bytes, page_url
from app.queries.page_tokens import PageLinks, resolve_page_token
from app.queries.paging import cursor_error, encode_cursor
from app.queries.search.compartment import compartment_restriction, require_reach
from app.queries.search.driver import choose_driver
from app.queries.search.includes import included
from app.queries.search.model import SearchQuery
from app.queries.search.parse import parse_search
from app.queries.search.plan import PageSql, cursor_state, page_sql
from app.queries.search.restriction import restriction_for
from app.queries.search.session import search_session
from app.queries.search.totals import counts_exactly, exact_total, page_total
from app.queries.subset import subset


@dataclass(frozen=True)
class SearchRequest:
    base: str  # absolute FHIR base URL
    resource_type: str
    params: list[tuple[str, str]]
    strict: bool
    default_count: int
    max_count: int
    building: frozenset[str] = frozenset()
    principal: Principal = OPEN  # who asks: the token's scopes restrict what the search returns
    compartment: tuple[str, str] | None = None  # ("Patient", "1"): a compartment search, Patient/1/[type]


def check_cursor(cursor: dict | None, keys: tuple[str, ...]) -> None:
    """The envelope of a search cursor: ``keys`` hold strings, ``d`` says which way it pages."""
    if cursor is None:
        return
    if cursor.get("d", "next") not in ("next", "prev") or not all(isinstance(cursor.get(k), str) for k in keys):
        raise cursor_error()


async def search(pool: asyncpg.Pool, req: SearchRequest) -> bytes:
    require_type(req.resource_type)
    path = req.resource_type if req.compartment is None else "/".join((*req.compartment, req.resource_type))
    params, token = await resolve_page_token(pool, path, req.params)
    q = parse_search(
        req.resource_type,
        params,
        strict=req.strict,
        default_count=req.default_count,
        max_count=req.max_count,
        building=req.building,
    )
    check_cursor(q.cursor, ("id",))
    decision = req.principal.allows(req.resource_type, "search-type")
    q.restriction = restriction_for(decision)
    if req.compartment is not None:
        require_reach(decision, *req.compartment)
        q.compartment = compartment_restriction(*req.compartment, req.resource_type)
    url = f"{req.base}/{path}"
    links = [{"relation": "self", "url": page_url(url, q.applied, {})}]
    pager = PageLinks(pool, url, path, params, token)
    entries: list[bytes] = []
    notes: list[Issue] = []
    async with search_session(pool) as conn:
        total = await exact_total(conn, q, req.base) if counts_exactly(q) else None
        rows: list = []
        more = False
        if q.summary != "count" and q.count > 0:
            rows, more, page = await _page(conn, q, req.base)
        if total is None and q.summary != "count" and q.count > 0:
            total, note = await page_total(conn, q, req.base, len(rows), not more)
            notes += [note] if note else []
    if rows:
        links += await _paging_links(pager, q, rows, more, page)
        for row in rows:
            entry = {"fullUrl": f"{req.base}/{req.resource_type}/{row['id']}", "search": {"mode": "match"}}
            entries.append(entry_bytes(entry, subset(decode(row["resource"]), q.resource_type, q.summary, q.elements)))
        if q.includes or q.revincludes:
            entries += await _included(pool, q, rows, req)
    if q.warnings or notes:
        outcome = {"search": {"mode": "outcome"}}
        entries.append(entry_bytes(outcome, orjson.dumps(operation_outcome(q.warnings + notes))))
    return bundle_bytes("searchset", links, entries, total)


async def _page(conn: asyncpg.Connection, q: SearchQuery, base: str) -> tuple[list, bool, PageSql]:
    """The page's rows in display order, whether more matches lie beyond it, and its plan."""
    page = page_sql(q, base, await choose_driver(conn, q, base))
    rows = list(await conn.fetch(page.sql, *page.args)) if page.sql else []
    if page.tail is not None and len(rows) <= q.count:
        rows += (await conn.fetch(page.tail[0], *page.tail[1]))[: q.count + 1 - len(rows)]
    more = len(rows) > q.count
    rows = rows[: q.count]
    if not page.forward:
        rows.reverse()
    return rows, more, page


async def _paging_links(pager: PageLinks, q: SearchQuery, rows: list, more: bool, page: PageSql) -> list[dict]:
    out = []
    if more if page.forward else True:
        state = encode_cursor(cursor_state(rows[-1], page.sort_count, "next"))
        out.append({"relation": "next", "url": await pager.link(state)})
    if q.cursor is not None and (page.forward or more):
        state = encode_cursor(cursor_state(rows[0], page.sort_count, "prev"))
        out.append({"relation": "previous", "url": await pager.link(state)})
    return out


async def _included(pool: asyncpg.Pool, q: SearchQuery, rows: list, req: SearchRequest) -> list[bytes]:
    out: list[bytes] = []
    page = {(req.resource_type, row["id"]) for row in rows}
    for t, rid, resource in await included(pool, q, [row["id"] for row in rows], req.principal, req.base):
        if (t, rid) not in page:
            page.add((t, rid))
            entry = {"fullUrl": f"{req.base}/{t}/{rid}", "search": {"mode": "include"}}
            out.append(entry_bytes(entry, resource))
    return out
