"""The search-column projection: per resource type, one side table per search-parameter type.

Tables ``sp_<type>_<kind>`` (e.g. ``sp_observation_token``) hold one row per extracted value of
the *current* version of each resource: ``(id, param, <typed columns>)``. A side table per kind,
rather than one column per parameter, keeps every parameter of the 1,378 (and any custom one
added later) index-backed without a schema change: a new SearchParameter is new rows, not new
columns. The B-tree indexes lead with ``param`` and the value columns each kind is searched by:

=========  ===================================================  ==================================
kind       columns                                              indexes
=========  ===================================================  ==================================
string     norm (accent/case-folded), exact                     (param, norm text_pattern_ops)
token      system, code, text (folded display/text), of_type    (param, code, system) INCLUDE (id)
date       low, high (half-open UTC range)                      GiST on tstzrange(low, high)
number     value                                                (param, value)
quantity   value, system, code, unit                            (param, code, value), (param, value)
reference  target_type, target_id, reference, ident_*          (param, target_id), (param, reference)
uri        uri                                                  (param, uri text_pattern_ops)
composite  a_system, a_code, b_system, b_code, b_num, b_low,    (param, a_code, b_code),
           b_high, b_str, c_num                                 (param, a_code, b_num)
sort       d_min, d_max (per date parameter: sort keys)         (param, d_min, id), (param, d_max DESC, id)
=========  ===================================================  ==================================

and every table has an index on ``id``. ``:contains`` and ``:text`` scan (no trigram extension in
the embedded server). The projector is a pure function of the events: for each resource in a
batch only its last event counts; its rows are cleared and rebuilt in one statement (data-modifying
CTEs share one snapshot, so the DELETE never sees the rows the INSERT adds). A deleted resource
has no rows, so it vanishes from search. ``_id`` and ``_lastUpdated`` are answered from the
current-state table's own columns and not indexed here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from functools import cache

import asyncpg
import orjson

from app.events.model import EventKind, VersionEvent
from app.fhirspec.resource_types import resource_types, table_suffix
from app.projections.search_values import (
    CompositeValue,
    DateValue,
    NumberValue,
    QuantityValue,
    ReferenceValue,
    StringValue,
    TokenValue,
    UriValue,
    extract_all,
)

SKIPPED = frozenset({"_id", "_lastUpdated"})
OFFLOAD_EVENTS = 200  # a write of this many versions extracts its search values in a worker thread

# kind -> [(column, sql type)] after (id, param)
COLUMNS: dict[str, list[tuple[str, str]]] = {
    "string": [("norm", "text"), ("exact", "text")],
    "token": [("system", "text"), ("code", "text"), ("text", "text"), ("of_type", "text")],
    "date": [("low", "timestamptz"), ("high", "timestamptz")],
    "number": [("value", "numeric")],
    "quantity": [("value", "numeric"), ("system", "text"), ("code", "text"), ("unit", "text")],
    "reference": [
        ("target_type", "text"),
        ("target_id", "text"),
        ("reference", "text"),
        ("ident_system", "text"),
        ("ident_value", "text"),
    ],
    "uri": [("uri", "text")],
    "composite": [
        ("a_system", "text"),
        ("a_code", "text"),
        ("b_system", "text"),
        ("b_code", "text"),
        ("b_num", "numeric"),
        ("b_low", "timestamptz"),
        ("b_high", "timestamptz"),
        ("b_str", "text"),
        ("c_num", "numeric"),
    ],
    # one row per resource and date parameter: the sort keys (earliest start, latest end), so that
    # ``_sort=[-]date`` can walk an index instead of computing a key for every match
    "sort": [("d_min", "timestamptz"), ("d_max", "timestamptz")],
}
INDEXES: dict[str, list[str]] = {
    "string": ["param, norm text_pattern_ops) INCLUDE (id"],
    "token": ["param, code, system) INCLUDE (id"],
    "date": [],  # the GiST index on tstzrange(low, high) serves every prefix (see lookup_index_ddl)
    "number": ["param, value"],
    "quantity": ["param, code, value) INCLUDE (id", "param, value) INCLUDE (id"],
    "reference": ["param, target_id) INCLUDE (id", "param, reference) INCLUDE (id", "param, ident_value"],
    "uri": ["param, uri text_pattern_ops"],
    "composite": ["param, a_code, b_code", "param, a_code, b_num"],
    "sort": ["param, d_min, id", "param, d_max DESC, id"],
}
KINDS = tuple(COLUMNS)


def search_table(resource_type: str, kind: str) -> str:
    if kind not in COLUMNS:
        raise ValueError(kind)
    return f"sp_{table_suffix(resource_type)}_{kind}"


def search_index_ddl(resource_type: str, suffix: str = "", lookup_indexes: bool = True) -> str:
    """Tables with their ``id`` index; the lookup indexes too unless a bulk load builds them
    afterwards (:func:`lookup_index_ddl`)."""
    out = []
    for kind, cols in COLUMNS.items():
        table = search_table(resource_type, kind) + suffix
        columns = ", ".join(f"{c} {t}" for c, t in cols)
        out.append(f"CREATE TABLE IF NOT EXISTS {table} (id text NOT NULL, param text NOT NULL, {columns});")
        out.append(f"CREATE INDEX IF NOT EXISTS {table}_id ON {table} (id);")
    if lookup_indexes:
        out.append(lookup_index_ddl(resource_type, suffix))
    return "\n".join(out)


def lookup_index_ddl(resource_type: str, suffix: str = "") -> str:
    out = []
    for kind in COLUMNS:
        table = search_table(resource_type, kind) + suffix
        for i, spec in enumerate(INDEXES[kind]):
            out.append(f"CREATE INDEX IF NOT EXISTS {table}_{i} ON {table} ({spec});")
        if kind == "date":
            out.append(f"CREATE INDEX IF NOT EXISTS {table}_range ON {table} USING gist (tstzrange(low, high, '[)'));")
    return "\n".join(out)


def all_search_index_ddl() -> str:
    return "\n".join(search_index_ddl(t) for t in resource_types())


def _component(value: object) -> tuple:
    """(system, code, num, low, high, str) of one composite component."""
    if isinstance(value, TokenValue):
        return (value.system, value.code, None, None, None, None)
    if isinstance(value, ReferenceValue):
        code = f"{value.type}/{value.id}" if value.type and value.id else value.reference
        return (None, code, None, None, None, None)
    if isinstance(value, QuantityValue):
        return (value.system, value.code, value.value, None, None, None)
    if isinstance(value, NumberValue):
        return (None, None, value.value, None, None, None)
    if isinstance(value, DateValue):
        return (None, None, None, value.low, value.high, None)
    if isinstance(value, StringValue):
        return (None, None, None, None, None, value.normalized)
    return (None, None, None, None, None, None)


def value_rows(code: str, values: list, out: dict[str, list[tuple]]) -> None:
    """Append the rows ``(param, ...columns)`` of one parameter's values to ``out`` (by kind)."""
    for v in values:
        if isinstance(v, StringValue):
            out["string"].append((code, v.normalized, v.exact))
        elif isinstance(v, TokenValue):
            types = [f"{s or ''}|{c or ''}" for s, c in v.of_type] or [None]
            for of_type in types:
                out["token"].append((code, v.system, v.code, v.text, of_type))
        elif isinstance(v, DateValue):
            out["date"].append((code, v.low, v.high))
        elif isinstance(v, NumberValue):
            out["number"].append((code, v.value))
        elif isinstance(v, QuantityValue):
            out["quantity"].append((code, v.value, v.system, v.code, v.unit))
        elif isinstance(v, ReferenceValue):
            out["reference"].append((code, v.type, v.id, v.reference, v.identifier_system, v.identifier_value))
        elif isinstance(v, UriValue):
            out["uri"].append((code, v.uri))
        elif isinstance(v, CompositeValue):
            a = _component(v.components[0])
            b = _component(v.components[1]) if len(v.components) > 1 else (None,) * 6
            c = _component(v.components[2]) if len(v.components) > 2 else (None,) * 6
            out["composite"].append((code, a[0], a[1], b[0], b[1], b[2], b[3], b[4], b[5], c[2]))
    dates = [v for v in values if isinstance(v, DateValue)]
    if dates:
        out["sort"].append((code, min(d.low for d in dates), max(d.high for d in dates)))


def rows_of(resource: dict) -> dict[str, list[tuple]]:
    """kind -> rows ``(param, ...columns)`` for one resource."""
    out: dict[str, list[tuple]] = {k: [] for k in KINDS}
    for code, values in extract_all(resource).items():
        if code not in SKIPPED:
            value_rows(code, values, out)
    return out


@cache
def _statement(resource_type: str, suffix: str, kinds: tuple[str, ...], clear: bool) -> str:
    """One statement clearing the rows of the ``$1`` ids (in every kind: an older version may have
    had values the new one lacks) and inserting the rows of ``kinds``; data-modifying CTEs share
    one snapshot, so the DELETEs never see the INSERTed rows."""
    parts: list[str] = []
    n = 1
    if clear:
        for kind in COLUMNS:
            parts.append(f"d_{kind} AS (DELETE FROM {search_table(resource_type, kind)}{suffix} WHERE id = ANY($1))")
    for kind in kinds:
        cols = COLUMNS[kind]
        names = ["id", "param", *[c for c, _ in cols]]
        types = ["text", "text", *[t for _, t in cols]]
        args = []
        for t in types:
            n += 1
            args.append(f"${n}::{t}[]")
        table = search_table(resource_type, kind) + suffix
        parts.append(f"i_{kind} AS (INSERT INTO {table} ({', '.join(names)}) SELECT * FROM unnest({', '.join(args)}))")
    # without deletions $1 is still sent (an empty array), so the statement must give it a type
    tail = "SELECT 1" if clear else "SELECT cardinality($1::text[])"
    return "WITH " + ",\n".join(parts) + "\n" + tail


async def write_rows(
    conn: asyncpg.Connection,
    resource_type: str,
    clear_ids: list[str],
    rows: dict[str, list[tuple]],
    suffix: str = "",
) -> None:
    """Clear ``clear_ids`` and insert ``rows`` (kind -> [(id, param, ...)]) in one statement; only
    the kinds that have rows are part of it (a create clears nothing)."""
    kinds = tuple(k for k in COLUMNS if rows.get(k))
    if not kinds and not clear_ids:
        return
    args: list[list] = []
    for kind in kinds:
        width = 2 + len(COLUMNS[kind])
        columns: list[list] = [[] for _ in range(width)]
        for row in rows[kind]:
            for i in range(width):
                columns[i].append(row[i])
        args.extend(columns)
    await conn.execute(_statement(resource_type, suffix, kinds, bool(clear_ids)), clear_ids, *args)


class SearchIndexProjector:
    """Keeps the search side tables; ``suffix`` names shadow tables during a rebuild."""

    name = "search_index"
    version = "sp-1"  # bump when the tables' shape or the value conversion changes

    def __init__(self, suffix: str = "") -> None:
        self.suffix = suffix

    async def apply(self, conn: asyncpg.Connection, events: Sequence[VersionEvent], positions: Sequence[int]) -> None:
        # extracting the values of a large transaction is CPU work: off the event loop (see app/api/http.py off_loop)
        many = len(events) >= OFFLOAD_EVENTS
        by_type = await asyncio.to_thread(self.rows, events) if many else self.rows(events)
        for resource_type, (clear, rows) in by_type.items():
            await write_rows(conn, resource_type, clear, rows, self.suffix)

    @staticmethod
    def rows(events: Sequence[VersionEvent]) -> dict[str, tuple[list[str], dict[str, list[tuple]]]]:
        """Per resource type: the ids whose old rows go, and the new rows by kind."""
        last: dict[tuple[str, str], VersionEvent] = {}
        for e in events:
            last[(e.resource_type, e.resource_id)] = e
        by_type: dict[str, tuple[list[str], dict[str, list[tuple]]]] = {}
        for (resource_type, rid), e in last.items():
            clear, rows = by_type.setdefault(resource_type, ([], {k: [] for k in KINDS}))
            if e.version > 1:
                clear.append(rid)
            if e.kind is EventKind.DELETED or e.resource is None:
                continue
            for kind, kind_rows in rows_of(orjson.loads(e.resource)).items():
                rows[kind].extend((rid, *row) for row in kind_rows)
        return by_type
