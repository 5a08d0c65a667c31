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

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache

import asyncpg
import orjson

from app.events.model import EventKind, VersionEvent
from app.fhirspec.resource_types import resource_types, table_suffix
from app.fhirspec.search_parameters import params_for
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
    extract_values,
)

SKIPPED = frozenset({"_id", "_lastUpdated"})

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


def rows_of(resource: dict, codes: frozenset[str] | None = None) -> dict[str, list[tuple]]:
    """kind -> rows ``(param, ...columns)`` for one resource (only the parameters ``codes`` if given)."""
    out: dict[str, list[tuple]] = {k: [] for k in KINDS}
    if codes is None:
        extracted = extract_all(resource)
    else:
        params = params_for(str(resource.get("resourceType")))
        extracted = {c: extract_values(resource, params[c]) for c in sorted(codes) if c in params}
    for code, values in extracted.items():
        if code not in SKIPPED:
            value_rows(code, values, out)
    return out


@dataclass(slots=True)
class TypeRows:
    """The search rows of one resource type in a batch: first the rows of ``clear`` go (those of
    the parameters ``codes`` only, when given), then ``rows`` (kind -> ``(id, param, ...)``) come."""

    clear: list[str] = field(default_factory=list)
    rows: dict[str, list[tuple]] = field(default_factory=lambda: {k: [] for k in KINDS})
    codes: tuple[str, ...] | None = None


SearchRows = dict[str, TypeRows]


def merge(parts: Sequence[SearchRows]) -> SearchRows:
    """The rows of batches over disjoint resources, as one (replay extracts in worker processes)."""
    out: SearchRows = {}
    for part in parts:
        for resource_type, tr in part.items():
            into = out.setdefault(resource_type, TypeRows(codes=tr.codes))
            into.clear.extend(tr.clear)
            for kind, kind_rows in tr.rows.items():
                into.rows[kind].extend(kind_rows)
    return out


@cache
def _statement(resource_type: str, suffix: str, kinds: tuple[str, ...], clear: bool, by_code: bool) -> str:
    """One statement clearing the rows of the ``$1`` ids (in every kind: an older version may have
    had values the new one lacks; only those of the parameters ``$2`` when ``by_code``) and
    inserting the rows of ``kinds``; data-modifying CTEs share one snapshot, so the DELETEs never
    see the INSERTed rows."""
    parts: list[str] = []
    n = 2 if by_code else 1
    only = " AND param = ANY($2::text[])" if by_code else ""
    if clear:
        for kind in COLUMNS:
            table = search_table(resource_type, kind) + suffix
            parts.append(f"d_{kind} AS (DELETE FROM {table} WHERE id = ANY($1){only})")
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
    # unused parameters are still sent, so the statement must give them a type
    tail = "SELECT 1" if clear else "SELECT cardinality($1::text[])"
    if by_code and not clear:
        tail += " + cardinality($2::text[])"
    return "WITH " + ",\n".join(parts) + "\n" + tail


async def _write_one(conn: asyncpg.Connection, resource_type: str, tr: TypeRows, suffix: str) -> None:
    kinds = tuple(k for k in COLUMNS if tr.rows.get(k))
    if not kinds and not tr.clear:
        return
    args: list[list] = [list(tr.codes)] if tr.codes is not None else []
    for kind in kinds:
        width = 2 + len(COLUMNS[kind])
        columns: list[list] = [[] for _ in range(width)]
        for row in tr.rows[kind]:
            for i in range(width):
                columns[i].append(row[i])
        args.extend(columns)
    sql = _statement(resource_type, suffix, kinds, bool(tr.clear), tr.codes is not None)
    await conn.execute(sql, tr.clear, *args)


async def _copy_one(conn: asyncpg.Connection, resource_type: str, tr: TypeRows, suffix: str) -> None:
    for kind in KINDS:
        table = search_table(resource_type, kind) + suffix
        if tr.clear and tr.codes is None:
            await conn.execute(f"DELETE FROM {table} WHERE id = ANY($1)", tr.clear)
        elif tr.clear:
            await conn.execute(f"DELETE FROM {table} WHERE id = ANY($1) AND param = ANY($2)", tr.clear, list(tr.codes))
        if tr.rows[kind]:
            columns = ["id", "param", *[c for c, _ in COLUMNS[kind]]]
            await conn.copy_records_to_table(table, records=tr.rows[kind], columns=columns)


class SearchIndexProjector:
    """Keeps the search side tables; ``suffix`` names shadow tables during a rebuild, ``codes``
    limits it to some parameters (the reindex of a custom SearchParameter).

    :meth:`rows` is pure (the last event of each resource in the batch counts) and :meth:`write`
    the one writer of the tables: the inline path, replay, its catch-up and the reindex of a
    custom parameter all call these two."""

    name = "search_index"
    version = "sp-1"  # bump when the tables' shape or the value conversion changes

    def __init__(self, suffix: str = "", codes: frozenset[str] | None = None) -> None:
        self.suffix = suffix
        self.codes = codes

    def rows(self, events: Sequence[VersionEvent], positions: Sequence[int] | None = None) -> SearchRows:
        last: dict[tuple[str, str], VersionEvent] = {}
        for e in events:
            last[(e.resource_type, e.resource_id)] = e
        codes = tuple(sorted(self.codes)) if self.codes is not None else None
        out: SearchRows = {}
        for (resource_type, rid), e in last.items():
            tr = out.setdefault(resource_type, TypeRows(codes=codes))
            if e.version > 1 or codes is not None:  # a first version has no rows to clear
                tr.clear.append(rid)
            if e.kind is EventKind.DELETED or e.resource is None:
                continue
            for kind, kind_rows in rows_of(orjson.loads(e.resource), self.codes).items():
                tr.rows[kind].extend((rid, *row) for row in kind_rows)
        return out

    async def write(self, conn: asyncpg.Connection, rows: SearchRows, bulk: bool = False) -> None:
        """One statement per type; with ``bulk``, DELETE then COPY (large replay batches)."""
        for resource_type, tr in rows.items():
            if bulk:
                await _copy_one(conn, resource_type, tr, self.suffix)
            else:
                await _write_one(conn, resource_type, tr, self.suffix)
