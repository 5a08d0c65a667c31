"""``_include`` and ``_revinclude`` (https://hl7.org/fhir/R4/search.html#include): fetching the
resources the page's matches reference, and those referencing them, from the reference side tables
(parsing them: :mod:`app.queries.search.include_parse`).

``:iterate`` rules are applied again to what the previous round added, until a round adds
nothing, for at most :data:`ITERATE_ROUNDS` rounds in all; one page includes at most
:data:`INCLUDE_LIMIT` resources. Hitting either bound adds a warning to the query's
OperationOutcome, saying what was cut and how to get the rest.

Only resources the token may read or search are included (``r`` or ``s`` on their type), within
the same compartment and scope-query restrictions as a search of their type; when some were left
out for that, a warning says so (naming the type, never an id)."""

from __future__ import annotations

from collections import defaultdict

import asyncpg

from app.auth import OPEN, Principal
from app.errors import Issue
from app.events.codec import decode
from app.fhirspec.resource_types import is_resource_type, resource_types
from app.fhirspec.search_parameters import params_for
from app.projections.current_state import current_table, resource_sql
from app.projections.search_index import search_table
from app.queries.search.model import Include, Restriction, SearchQuery
from app.queries.search.restriction import readable, restriction_for, restriction_sql
from app.queries.search.sql import Args
from app.search_types.param_aliases import stored_code
from app.search_types.protocol import param_hash
from app.search_types.reference import TARGET_ID_SQL

INCLUDE_LIMIT = 1000  # included resources per page, over every _include/_revinclude and round
ITERATE_ROUNDS = 10  # rounds in all, the first (every rule on the matches) included


def _codes(source: str, code: str, target: str | None) -> list[str]:
    """The reference parameters of ``source`` an include names (all of them for ``*``) that can
    point at ``target`` (any type when None)."""
    if code != "*":
        return [code]
    return [
        p.code
        for p in params_for(source).values()
        if p.type == "reference" and (target is None or not p.target or target in p.target)
    ]


class _Fetch:
    """The included set of one page while it grows: what was seen and how much room is left."""

    def __init__(
        self, pool: asyncpg.Pool, q: SearchQuery, seen: set[tuple[str, str]], principal: Principal, base: str
    ) -> None:
        self.pool, self.q, self.seen = pool, q, seen
        self.principal, self.base = principal, base
        self.out: list[tuple[str, str, bytes]] = []
        self.cut: list[str] = []
        self.withheld: set[str] = set()  # types of which some resources were left out for lack of scope
        self.targets: frozenset[str] | None = None  # the only types forward includes may add (None: any)

    @property
    def room(self) -> int:
        return INCLUDE_LIMIT - len(self.out)

    def _restriction(self, t: str) -> tuple[bool, Restriction | None]:
        """May the token see ``t`` at all, and within what restriction?"""
        decision = readable(self.principal, t)
        if not decision.allowed:
            return False, None
        return True, restriction_for(decision)

    async def _load(self, t: str, ids: list[str]) -> list[tuple[str, str, bytes]]:
        """Current resources of type ``t`` among ``ids`` (in id order) the token may see, added to
        the set; the others are only counted as withheld."""
        allowed, restriction = self._restriction(t)
        if not allowed:
            self.withheld.add(t)
            return []
        args = Args()
        ids_ref = args.add(ids)
        visible = "TRUE" if restriction is None else restriction_sql(restriction, args, self.base)
        rows = await self.pool.fetch(
            f"SELECT r.id, CASE WHEN {visible} THEN {resource_sql('r')} END AS resource FROM {current_table(t)} r"
            f" WHERE r.id = ANY({ids_ref}) AND NOT r.deleted ORDER BY r.id",
            *args.values,
        )
        if any(r["resource"] is None for r in rows):
            self.withheld.add(t)
        new = [(t, r["id"], decode(r["resource"])) for r in rows if r["resource"] is not None]
        self.seen.update((t, rid) for _, rid, _ in new)
        self.out += new
        return new

    async def forward(self, inc: Include, t: str, ids: list[str]) -> list[tuple[str, str, bytes]]:
        stored = [stored_code(t, code) for code in _codes(t, inc.code, inc.target_type)]
        codes = sorted({code for code, only in stored if only is None})
        narrowed = [(code, only) for code, only in stored if only is not None and code not in codes]
        rows = await self.pool.fetch(
            f"SELECT DISTINCT target_type, {TARGET_ID_SQL} AS target_id FROM {search_table(t, 'reference')}"
            f" WHERE key = ANY(ARRAY(SELECT c.key FROM {current_table(t)} c WHERE c.id = ANY($1::text[])))"
            " AND (param = ANY($2) OR (param, target_type) IN (SELECT * FROM unnest($4::text[], $5::text[])))"
            f" AND target_type IS NOT NULL AND {TARGET_ID_SQL} IS NOT NULL"
            " AND ($3::text IS NULL OR target_type = $3) ORDER BY 1, 2",
            ids,
            codes,
            inc.target_type,
            [code for code, _ in narrowed],
            [only for _, only in narrowed],
        )
        wanted: dict[str, list[str]] = defaultdict(list)
        for row in rows:
            key = (row["target_type"], row["target_id"])
            if key not in self.seen and is_resource_type(key[0]) and (self.targets is None or key[0] in self.targets):
                wanted[key[0]].append(key[1])
        found = []
        for target, target_ids in wanted.items():
            if len(target_ids) > self.room:
                self.cut.append(
                    f"{inc.text}: {len(target_ids) - self.room} or more {target} resources were left out; "
                    f"read them with {target}?_id=… (a smaller _count includes fewer per page)"
                )
                target_ids = target_ids[: self.room]
            if target_ids:
                found += await self._load(target, target_ids)
        return found

    async def reverse(self, rev: Include, t: str, ids: list[str]) -> list[tuple[str, str, bytes]]:
        sources = [s for s in resource_types() if s == rev.source_type or rev.source_type == "*"]
        found = []
        for source in sources:
            stored = [stored_code(source, code) for code in _codes(source, rev.code, t)]
            codes = sorted({code for code, only in stored if only in (None, t)})  # a narrowed one: its type only
            if not codes or self.room <= 0:
                continue
            known = [rid for st, rid in self.seen if st == source]
            rows = await self.pool.fetch(
                f"SELECT c.id FROM {current_table(source)} c WHERE c.key IN"
                f" (SELECT s.key FROM {search_table(source, 'reference')} s WHERE s.hash IN"
                f" (SELECT {param_hash('p', 't')} FROM unnest($1::text[]) p, unnest($3::text[]) t)"
                " AND s.target_type = $2) AND NOT (c.id = ANY($4)) ORDER BY c.key LIMIT $5",
                codes,
                t,
                ids,
                known,
                self.room + 1,
            )
            source_ids = [r["id"] for r in rows]
            if len(source_ids) > self.room:
                source_ids = source_ids[: self.room]
                example = f"{source}?{codes[0]}={t}/{ids[0]}"
                self.cut.append(
                    f"{rev.text}: the included {source} resources were truncated at {INCLUDE_LIMIT} per page; "
                    f"search them directly and page through them, e.g. {example}"
                )
            found += await self._load(source, source_ids)
        return found


async def _round(fetch: _Fetch, rules: list[tuple[bool, Include]], frontier: dict[str, list[str]]) -> dict:
    new: dict[str, list[str]] = defaultdict(list)
    for reverse, rule in rules:
        for t, ids in frontier.items():
            if reverse and rule.target_type not in (None, t):
                continue
            if not reverse and rule.source_type not in ("*", t):
                continue
            found = await (fetch.reverse(rule, t, ids) if reverse else fetch.forward(rule, t, ids))
            for ft, fid, _ in found:
                new[ft].append(fid)
    return new


async def included(
    pool: asyncpg.Pool,
    q: SearchQuery,
    ids: list[str],
    principal: Principal = OPEN,
    base: str = "",
    targets: frozenset[str] | None = None,
) -> list[tuple[str, str, bytes]]:
    """(type, id, resource bytes) of the resources to add with ``search.mode = include``; what the
    bounds cut, and what the token's scopes withheld, is reported by warnings appended to
    ``q.warnings``. ``targets``: the only types ``_include`` rules may add (None: any)."""
    rules = [(False, i) for i in q.includes] + [(True, r) for r in q.revincludes]
    fetch = _Fetch(pool, q, {(q.resource_type, i) for i in ids}, principal, base)
    fetch.targets = targets
    frontier: dict[str, list[str]] = {q.resource_type: list(ids)}
    for n in range(ITERATE_ROUNDS + 1):
        if n == 0:
            frontier = await _round(fetch, rules, frontier)
            continue
        iterating = [(rev, rule) for rev, rule in rules if rule.iterate]
        if not frontier or not iterating:
            break
        if n == ITERATE_ROUNDS:
            fetch.cut.append(
                f"_include:iterate/_revinclude:iterate stopped after {ITERATE_ROUNDS} rounds of iteration; "
                "more resources may be reachable: search again from the last ones included"
            )
            break
        frontier = await _round(fetch, iterating, frontier)
    q.warnings += [Issue("warning", "too-costly", text) for text in dict.fromkeys(fetch.cut)]
    if fetch.withheld:
        q.warnings.append(_withheld(principal, sorted(fetch.withheld)))
    return fetch.out


def _withheld(principal: Principal, types: list[str]) -> Issue:
    ungranted = [t for t in types if not readable(principal, t).allowed]
    restricted = [t for t in types if t not in ungranted]
    parts = []
    if restricted:
        parts.append(
            f"of type {', '.join(restricted)} outside what the token's scopes allow (the patient's compartment "
            "or the scopes' query)"
        )
    if ungranted:
        needed = "; ".join(readable(principal, t).needed for t in ungranted)
        parts.append(f"of type {', '.join(ungranted)}, which the token may not read (needs scope {needed[:300]})")
    return Issue("warning", "forbidden", f"Some included resources were left out: those {' and those '.join(parts)}")
