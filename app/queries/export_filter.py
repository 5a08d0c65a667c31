"""``_typeFilter`` of a bulk export (https://hl7.org/fhir/uv/bulkdata/export.html#_typefilter):
parsing the filters at kick-off, and matching exported resources against them.

A filter is ``[type]?[search parameters]``, parsed strictly by the search parser (an unknown
parameter, a bad value or a result parameter such as ``_count`` is a 400 at kick-off). Several
filters of one type are ORed; a type without filters is exported whole.

Matching runs the search conditions over the current-state projection, which is exact for a
resource whose current version is the one in the export's snapshot. A resource changed after the
snapshot cannot be matched by its snapshot version (the search index holds only the current one):
:func:`match_filters` reports it as *changed*, and the export leaves it out with a warning naming
it (in the manifest's error file).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import parse_qsl

import asyncpg

from app.errors import FhirError, invalid
from app.fhirspec.resource_types import resource_type_set
from app.projections.current_state import current_table
from app.queries.search.parse import QUIET_PARAMS, RESULT_PARAMS, parse_search
from app.queries.search.plan import where_clause
from app.queries.search.sql import Args, any_of

_NOT_CRITERIA = RESULT_PARAMS | QUIET_PARAMS | {"_include", "_revinclude"}


def parse_type_filters(values: Sequence[str]) -> dict[str, list[str]]:
    """type -> its filters' queries; a 400 naming the filter for anything that is not a search."""
    out: dict[str, list[str]] = {}
    for raw in values:
        for value in _split(raw):
            kind, sep, query = value.partition("?")
            if kind not in resource_type_set():
                raise invalid(f"_typeFilter '{value[:100]}' does not start with a resource type and '?'")
            if not sep or not query:
                raise invalid(f"_typeFilter '{value[:100]}' has no search parameters after '?'")
            _check(kind, query, value)
            out.setdefault(kind, []).append(query)
    return out


def _split(raw: str) -> list[str]:
    """A ``_typeFilter`` value may list several filters, comma-separated (a comma inside a search
    value is escaped as ``\\,`` or percent-encoded)."""
    parts, current, escaped = [], "", False
    for ch in raw:
        if ch == "," and not escaped:
            parts.append(current)
            current = ""
        else:
            current += ch
        escaped = ch == "\\" and not escaped
    parts.append(current)
    return [p.strip() for p in parts if p.strip()]


def _check(kind: str, query: str, value: str) -> None:
    params = parse_qsl(query, keep_blank_values=True)
    for name, _ in params:
        if name.partition(":")[0] in _NOT_CRITERIA:
            raise invalid(f"_typeFilter '{value[:100]}': '{name[:40]}' is not a search criterion")
    try:
        parse_search(kind, params, strict=True, default_count=1, max_count=1)
    except FhirError as exc:
        raise invalid(f"_typeFilter '{value[:100]}': {exc.diagnostics}") from None


@dataclass(frozen=True)
class FilterResult:
    matched: set[str]  # ids whose snapshot version matches a filter
    changed: list[str]  # ids changed after the snapshot: their snapshot version cannot be matched


def _condition(kind: str, queries: Sequence[str], args: Args, base: str) -> str:
    conditions = []
    for query in queries:
        q = parse_search(kind, parse_qsl(query, keep_blank_values=True), strict=True, default_count=1, max_count=1)
        conditions.append(f"({where_clause(q, args, base)})")
    return any_of(conditions)


async def match_filters(
    conn: asyncpg.Connection, kind: str, queries: Sequence[str], versions: dict[str, int], base: str
) -> FilterResult:
    """Which of the resources ``versions`` (id -> version in the snapshot) match any of ``queries``."""
    args = Args()
    ids = args.add(list(versions), "text[]")
    condition = _condition(kind, queries, args, base)
    rows = await conn.fetch(
        f"SELECT r.id, r.version, {condition} AS hit FROM {current_table(kind)} r WHERE r.id = ANY({ids})",
        *args.values,
    )
    matched, changed = set(), []
    current = {r["id"]: r for r in rows}
    for rid, version in versions.items():
        row = current.get(rid)
        if row is None or row["version"] != version:
            changed.append(rid)
        elif row["hit"]:
            matched.add(rid)
    return FilterResult(matched, changed)
