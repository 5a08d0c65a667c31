"""The search-index projection: per resource type, one side table per search-parameter type.

Tables ``sp_<type>_<kind>`` (e.g. ``sp_observation_token``) hold one row per extracted value of
the *current* version of each resource: ``(key, param, <typed columns>)``, ``key`` the resource's
integer key (:mod:`app.projections.current_state`; the projector's rows name the resource by its
id, which :meth:`SearchIndexProjector.write` turns into the key through the current-state table,
written before it in every path); each type's columns,
indexes and rows are defined in its module of :mod:`app.search_types` (the date type adds
``sp_<type>_sort``, the sort keys of each date parameter). A side table per kind, rather than one
column per parameter, keeps every parameter (and any custom one added later) index-backed without
a schema change: a new SearchParameter is new rows, not new columns.

The projector is a pure function of the events: for each resource in a batch only its last event
counts; its rows are cleared and rebuilt in one statement (data-modifying CTEs share one
snapshot, so the DELETE never sees the rows the INSERT adds). A deleted resource has no rows, so
it vanishes from search. ``_id`` and ``_lastUpdated`` are answered from the current-state table's
own columns and not indexed here.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache

import asyncpg
import orjson

from app.events.model import EventKind, VersionEvent
from app.fhirspec.search_parameters import params_for
from app.joined_text import array_sql, sent_columns
from app.projections.copy_text import encode_keyed
from app.projections.current_state import current_table, keys_of
from app.projections.text_load import KIND as TEXT_KIND
from app.projections.text_load import CheckedTexts, TextGroups, grouped, load_groups
from app.search_types.extraction import extract_all, extract_values
from app.search_types.param_aliases import aliases
from app.search_types.protocol import Rows
from app.search_types.registry import COLUMNS, INDEXES, KINDS, SEARCH_TYPES, TABLES, search_table, type_of_value
from app.search_types.row_plan import SKIPPED, row_function
from app.search_types.text_document import document_rows, text_rows

__all__ = [
    "COLUMNS",
    "EncodedRows",
    "INDEXES",
    "KINDS",
    "SearchIndexProjector",
    "SearchRows",
    "TypeRows",
    "code_rows",
    "encode",
    "merge",
    "param_kinds",
    "reference_rows_of",
    "rows_of",
    "search_table",
    "value_rows",
]


def param_kinds(type_name: str) -> frozenset[str]:
    """The side tables the rows of a parameter of the search type ``type_name`` go to: its type's
    own (and derived: the date sort keys), and the full-text table for the ``:text`` rows of token
    parameters (:func:`app.search_types.text_document.text_rows`)."""
    own = {table.kind for table in SEARCH_TYPES[type_name].tables}
    return frozenset(own | ({"text"} if type_name == "token" else set()))


def value_rows(code: str, values: list, out: dict[str, list[tuple]]) -> None:
    """Append the rows ``(param, ...columns)`` of one parameter's values to ``out`` (by kind)."""
    if values:
        type_of_value(values[0]).add_rows(code, values, out)


def event_rows(event: VersionEvent, codes: frozenset[str] | None = None) -> dict[str, list[tuple]] | None:
    """:func:`rows_of` the event's resource (parsed once when the write already did); None for a
    deletion."""
    if event.kind is EventKind.DELETED or event.resource is None:
        return None
    return rows_of(event.parsed if event.parsed is not None else orjson.loads(event.resource), codes)


def rows_of(resource: dict, codes: frozenset[str] | None = None) -> dict[str, list[tuple]]:
    """kind -> rows ``(param, ...columns)`` for one resource (only the parameters ``codes`` if given,
    and then no whole-resource text rows): by the resource type's generated row function
    (:mod:`app.search_types.row_plan`)."""
    out: dict[str, list[tuple]] = {k: [] for k in KINDS}
    if type(resource) is not dict:
        return reference_rows_of(resource, codes, out)
    texts = document_rows(resource) if codes is None else []
    kind = resource.get("resourceType")
    if isinstance(kind, str):
        row_function(kind, codes)(resource, out, texts)
    out["text"] = texts
    return out


def code_rows(resource: dict, codes: Iterable[str]) -> dict[str, list[tuple]]:
    """:func:`rows_of` limited to the parameters ``codes`` but with the whole-resource text rows:
    each parameter's rows by its own generated row function (a bounded set of functions per type,
    whichever parameters an update changes; :mod:`app.projections.search_content`)."""
    out: dict[str, list[tuple]] = {k: [] for k in KINDS}
    texts = document_rows(resource)
    kind = resource["resourceType"]
    for code in codes:
        row_function(kind, frozenset((code,)))(resource, out, texts)
    out["text"] = texts
    return out


def reference_rows_of(
    resource: dict, codes: frozenset[str] | None = None, out: dict[str, list[tuple]] | None = None
) -> dict[str, list[tuple]]:
    """:func:`rows_of` through :func:`extract_all` / :func:`extract_values` and each type's
    ``add_rows`` (the reference the generated row functions are tested against)."""
    if out is None:
        out = {k: [] for k in KINDS}
    if codes is None:
        extracted = extract_all(resource)
    else:
        params = params_for(str(resource.get("resourceType")))
        extracted = {c: extract_values(resource, params[c]) for c in sorted(codes) if c in params}
    narrowed = aliases(str(resource.get("resourceType")))
    for code, values in extracted.items():
        if code not in SKIPPED and code not in narrowed:
            value_rows(code, values, out)
    text_rows(resource, extracted, codes, out["text"])
    return out


@dataclass(slots=True)
class TypeRows:
    """The search rows of one resource type in a batch: first the rows of ``clear`` go (those of
    the parameters ``codes`` only, when given, and then only in the side tables ``kinds`` when
    given), then ``rows`` (kind -> ``(id, param, ...)``) come."""

    clear: list[str] = field(default_factory=list)
    rows: dict[str, list[tuple]] = field(default_factory=lambda: {k: [] for k in KINDS})
    codes: tuple[str, ...] | None = None
    kinds: tuple[str, ...] | None = None

    def cleared_kinds(self) -> tuple[str, ...]:
        """The side tables the clearing touches: every one, unless limited to some parameters'."""
        if self.codes is None or self.kinds is None:
            return KINDS
        return tuple(k for k in KINDS if k in self.kinds or self.rows.get(k))


SearchRows = dict[str, TypeRows]


def merge(parts: Sequence[SearchRows]) -> SearchRows:
    """The rows of batches over disjoint resources, as one (replay extracts in worker processes)."""
    out: SearchRows = {}
    for part in parts:
        for resource_type, tr in part.items():
            into = out.setdefault(resource_type, TypeRows(codes=tr.codes, kinds=tr.kinds))
            into.clear.extend(tr.clear)
            for kind, kind_rows in tr.rows.items():
                into.rows[kind].extend(kind_rows)
    return out


def _insert(table: str, kind: str, args: list[str]) -> str:
    """The INSERT of rows of ``kind`` into ``table`` from the column arrays ``args`` (``$n::type[]``;
    keys first)."""
    insert = f"INSERT INTO {table} ({', '.join(_copy_columns(kind))}) {TABLES[kind].insert_select(args)}"
    companions = _companion_ctes(kind, args)
    return f"WITH {', '.join(companions)} {insert}" if companions else insert


def keyed_insert(table: str, kind: str, args: list[str], keys: str, by_id: bool = True) -> str:
    """The INSERT of rows of ``kind`` into ``table`` from the column arrays ``args`` (ids first),
    each id replaced by its key: ``keys`` is the FROM item holding ``key``, joined on ``id`` with
    ``by_id`` (a current-state table), else one row whose key every row takes (a one-resource write)."""
    names = [f"a{i}" for i in range(len(COLUMNS[kind]) + 2)]
    rows = f"({TABLES[kind].insert_select(args)}) AS r({', '.join(names)})"
    source = f"{keys} c JOIN {rows} ON c.id = r.a0" if by_id else f"{keys} c, {rows}"
    select = ", ".join(["c.key", *(f"r.{n}" for n in names[1:])])
    return f"INSERT INTO {table} ({', '.join(_copy_columns(kind))}) SELECT {select} FROM {source}"


def insert_ctes(table: str, kind: str, args: list[str], keys: str, by_id: bool = True) -> list[str]:
    """The CTEs (``i_<kind>``, then ``c_<kind>`` where the kind has one) of a statement that writes
    rows of ``kind`` as :func:`keyed_insert` does, with their :meth:`SideTable.companion_insert`
    (the full-text documents the rows refer to): every writer of a side table takes both from here."""
    return [f"i_{kind} AS ({keyed_insert(table, kind, args, keys, by_id)})", *_companion_ctes(kind, args)]


def _companion_ctes(kind: str, args: list[str]) -> list[str]:
    """The ``c_<kind>`` CTE of the kind's :meth:`SideTable.companion_insert` for rows from ``args``
    (ids or keys, ``param``, then the kind's own columns), or none."""
    companion = TABLES[kind].companion_insert(args[2:])
    return [] if companion is None else [f"c_{kind} AS ({companion})"]


def keys_in(cur_table: str, ids_sql: str) -> str:
    """The keys of the resources ``ids_sql`` (an SQL text array), as an SQL array."""
    return f"ARRAY(SELECT k.key FROM {cur_table} k WHERE k.id = ANY({ids_sql}))"


@cache
def _statement(
    resource_type: str,
    suffix: str,
    kinds: tuple[str, ...],
    clear: bool,
    by_code: bool,
    cleared: tuple[str, ...],
    joined: bool = False,
) -> str:
    """One statement clearing the rows of the ``$1`` ids (in every kind of ``cleared``: an older
    version may have had values the new one lacks; only those of the parameters ``$2`` when
    ``by_code``) and inserting the rows of ``kinds``; data-modifying CTEs share one snapshot, so
    the DELETEs never see the INSERTed rows. With ``joined``, each text, integer and timestamp column
    comes as one string (:mod:`app.joined_text`), the others as arrays."""
    parts: list[str] = []
    n = 2 if by_code else 1
    only = " AND param = ANY($2::text[])" if by_code else ""
    cur = current_table(resource_type) + suffix
    if clear:
        for kind in cleared:
            table = search_table(resource_type, kind) + suffix
            parts.append(f"d_{kind} AS (DELETE FROM {table} WHERE key = ANY({keys_in(cur, '$1::text[]')}){only})")
    for kind in kinds:
        args = [array_sql(n + i, t, joined) for i, t in enumerate(_sent_types((kind,)), 1)]
        n += len(args)
        parts += insert_ctes(search_table(resource_type, kind) + suffix, kind, args, cur)
    # unused parameters are still sent, so the statement must give them a type
    tail = "SELECT 1" if clear else "SELECT cardinality($1::text[])"
    if by_code and not clear:
        tail += " + cardinality($2::text[])"
    return "WITH " + ",\n".join(parts) + "\n" + tail


@cache
def _sent_types(kinds: tuple[str, ...]) -> tuple[str, ...]:
    """The SQL types of the columns ``_statement`` takes for ``kinds``: each kind's id, param and own."""
    return tuple(t for kind in kinds for t in ("text", "text", *TABLES[kind].sent_types()))


async def _write_one(conn: asyncpg.Connection, resource_type: str, tr: TypeRows, suffix: str) -> None:
    kinds = tuple(k for k in COLUMNS if tr.rows.get(k))
    if not kinds and not tr.clear:
        return
    columns: list[tuple] = []  # each kind's rows as one array per column (every row has every column)
    for kind in kinds:
        columns.extend(zip(*tr.rows[kind], strict=True))
    args = sent_columns(_sent_types(kinds), columns)
    joined = args is not None
    if args is None:
        args = [list(column) for column in columns]
    sql = _statement(resource_type, suffix, kinds, bool(tr.clear), tr.codes is not None, tr.cleared_kinds(), joined)
    await conn.execute(sql, tr.clear, *([list(tr.codes)] if tr.codes is not None else []), *args)


async def _copy_one(conn: asyncpg.Connection, resource_type: str, tr: TypeRows, suffix: str) -> None:
    cleared = tr.cleared_kinds() if tr.clear else ()
    ids = list(dict.fromkeys([*tr.clear, *(r[0] for kind_rows in tr.rows.values() for r in kind_rows)]))
    keys = await keys_of(conn, current_table(resource_type) + suffix, ids)
    clear = [keys[i] for i in tr.clear if i in keys]
    for kind in KINDS:
        table = search_table(resource_type, kind) + suffix
        if kind in cleared and tr.codes is None:
            await conn.execute(f"DELETE FROM {table} WHERE key = ANY($1::bigint[])", clear)
        elif kind in cleared:
            sql = f"DELETE FROM {table} WHERE key = ANY($1::bigint[]) AND param = ANY($2)"
            await conn.execute(sql, clear, list(tr.codes))
        rows = [(keys[r[0]], *r[1:]) for r in tr.rows[kind]]
        if rows and not TABLES[kind].copyable:
            await _insert_rows(conn, table, kind, rows)
        elif rows:
            await conn.copy_records_to_table(table, records=rows, columns=_copy_columns(kind))


def _copy_columns(kind: str) -> list[str]:
    return ["key", "param", *[c for c, _ in COLUMNS[kind]]]


def keyed(rows: dict[str, list[tuple]], keys: dict[str, int]) -> dict[str, list[tuple]]:
    """Rows ``(id, param, ...)`` as ``(key, param, ...)``, the keys ``keys`` gives (a bulk load's)."""
    return {kind: [(keys[r[0]], *r[1:]) for r in kind_rows] for kind, kind_rows in rows.items()}


async def _insert_rows(conn: asyncpg.Connection, table: str, kind: str, rows: list[tuple]) -> None:
    """Rows ``(key, param, ...)`` of a kind PostgreSQL converts on the way in (not copyable): one
    INSERT from arrays."""
    types = ["bigint", "text", *TABLES[kind].sent_types()]
    sql = _insert(table, kind, [f"${i}::{t}[]" for i, t in enumerate(types, 1)])
    await conn.execute(sql, *(list(column) for column in zip(*rows, strict=True)))


EncodedRows = dict[str, bytes | TextGroups | list[tuple]]
"""kind -> the rows of a batch as COPY text data (:mod:`app.projections.copy_text`), the full-text
rows grouped by text (:mod:`app.projections.text_load`), or as tuples for the other kinds that
are not copyable."""


def encode(resources: Iterable[tuple[int, dict]]) -> EncodedRows:
    """The search rows of resources given with their keys (``(key, parsed JSON)``, each resource
    once), as :meth:`SearchIndexProjector.load` takes them: encoded resource by resource, no
    ``(key, ...)`` row tuple is built (replay's workers encode them)."""
    by_kind: dict[str, list[tuple[str, list[tuple]]]] = {kind: [] for kind in KINDS}
    add = {kind: rows.append for kind, rows in by_kind.items()}
    for key, resource in resources:
        text_key = str(key)
        for kind, kind_rows in rows_of(resource).items():
            if kind_rows:
                add[kind]((text_key, kind_rows))
    out: EncodedRows = {}
    for kind, keyed_rows in by_kind.items():
        if not keyed_rows:
            continue
        if TABLES[kind].copyable:
            out[kind] = encode_keyed(keyed_rows, _COPY_TYPES[kind])
        else:
            text = grouped(keyed_rows) if kind == TEXT_KIND else None
            out[kind] = text if text is not None else [(int(k), *r) for k, rows in keyed_rows for r in rows]
    return out


_COPY_TYPES = {kind: ("text", *(t for _, t in columns)) for kind, columns in COLUMNS.items()}
"""The SQL types of the COPY fields after the key: ``param``, then the kind's columns."""


class SearchIndexProjector:
    """Keeps the search side tables; ``suffix`` names shadow tables during a rebuild, ``codes``
    limits it to some parameters (the reindex of a custom SearchParameter), and ``kinds`` then the
    side tables their old rows are cleared from (:func:`param_kinds`; None: every one); a kind
    the rows of a batch fill is always cleared as well.

    :meth:`rows` is pure (the last event of each resource in the batch counts) and :meth:`write`
    the one writer of the tables: the inline path, replay, its catch-up and the reindex of a
    custom parameter all call these two."""

    name = "search_index"
    version = "sp-1"  # bump when the tables' shape or the value conversion changes

    def __init__(
        self, suffix: str = "", codes: frozenset[str] | None = None, kinds: frozenset[str] | None = None
    ) -> None:
        self.suffix = suffix
        self.codes = codes
        self.kinds = tuple(k for k in KINDS if k in kinds) if kinds is not None else None

    def resource_rows(self, events: Sequence[VersionEvent]) -> Iterator[tuple[VersionEvent, Rows | None]]:
        """The last event of each resource in the batch with its rows (kind -> ``(param, ...)``;
        None for a deleted resource): what :meth:`rows` collects, and replay's bulk load encodes."""
        last: dict[tuple[str, str], VersionEvent] = {}
        for e in events:
            last[(e.resource_type, e.resource_id)] = e
        for e in last.values():
            yield e, event_rows(e, self.codes)

    def rows(self, events: Sequence[VersionEvent], positions: Sequence[int] | None = None) -> SearchRows:
        codes = tuple(sorted(self.codes)) if self.codes is not None else None
        out: SearchRows = {}
        for e, rows in self.resource_rows(events):
            tr = out.get(e.resource_type)
            if tr is None:
                tr = out[e.resource_type] = TypeRows(codes=codes, kinds=self.kinds)
            rid = e.resource_id
            if e.version > 1 or codes is not None:  # a first version has no rows to clear
                tr.clear.append(rid)
            if rows is None:
                continue
            into = tr.rows
            for kind, kind_rows in rows.items():
                if kind_rows:
                    into[kind] += [(rid, *row) for row in kind_rows]
        return out

    async def load(
        self, conn: asyncpg.Connection, resource_type: str, encoded: EncodedRows, checked: CheckedTexts | None = None
    ) -> None:
        """Add rows of resources that have none yet (replay's bulk load: no clearing); ``checked``:
        the texts whose documents the load has checked in its earlier batches (None: none)."""
        for kind, data in encoded.items():
            table = search_table(resource_type, kind) + self.suffix
            if isinstance(data, bytes):
                await conn.copy_to_table(table, source=memoryview(data), columns=_copy_columns(kind), format="text")
            elif isinstance(data, TextGroups):
                await load_groups(conn, table, data, checked)
            else:
                await _insert_rows(conn, table, kind, data)

    async def write(self, conn: asyncpg.Connection, rows: SearchRows, bulk: bool = False) -> None:
        """One statement per type; with ``bulk``, DELETE then COPY (large replay batches)."""
        for resource_type, tr in rows.items():
            if bulk:
                await _copy_one(conn, resource_type, tr, self.suffix)
            else:
                await _write_one(conn, resource_type, tr, self.suffix)
