"""A write of one resource version as ONE statement: append the event, upsert the current-state
row and replace the resource's search rows, in data-modifying CTEs of a single round trip.

The rows are those of the inline projectors' ``rows`` (the same pure functions replay runs), so
the statement writes exactly what :func:`app.projections.inline.project` would. The search rows
depend on the custom SearchParameters this process has loaded, so the statement first takes the
shared lock on the registry version (as every write does, ``custom_params.sync_for_write``) and
appends nothing unless the stored version is the one loaded: then it returns no position and the
caller loads the registry and takes the long way. Every other CTE writes only when the event was
appended (they read its ``position``, or the ``key`` of the current-state row upserted after it:
the side rows are keyed by it, :mod:`app.projections.current_state`). It also
appends nothing when a version at or after the event's was committed before it began (the head the
event was decided on is stale): the caller then takes the long way, where the unique
``(type, id, version)`` constraint refuses it and the write is retried;
data-modifying CTEs share one snapshot, so the DELETE of old search rows never sees the new ones.

A new version of a resource whose previous version's bytes the write read (its head) replaces
only the search rows of the parameters that changed: the previous rows are those the same pure
function gives for those bytes, and a parameter whose rows in a side table are the same multiset
(:mod:`app.projections.row_diff`) keeps them; the others' rows in that table are deleted
(``param = ANY($n)``) and their new rows inserted (an update that changes a phone number rewrites
the ``phone`` and ``telecom`` token rows and the ``_content`` text row, and leaves the names,
identifiers and the other tokens as they are; one that sends the resource unchanged extracts
neither version's rows: :mod:`app.projections.search_content`). The parameter lists travel as array
parameters, so the statement text depends on the kinds only. A deletion, or a version whose
previous bytes are not known, clears every kind's rows of the resource. Rows another writer added
without a new version (a custom parameter's index build, which rebuilds its rows from each
resource's last event after taking the writers' lock) are not disturbed unless their parameter
changed.
"""

from __future__ import annotations

from typing import NamedTuple

import asyncpg
import orjson

from app.events.model import EventKind, VersionEvent
from app.events.store import APPEND_TYPES, append_many_sql, append_one_sql, event_values, no_later_version_sql
from app.joined_text import array_sql, sent_columns
from app.projections import custom_params
from app.projections.current_state import current_table, key_sql, upsert_from_sql
from app.projections.row_diff import changes
from app.projections.search_content import revised_rows
from app.projections.search_index import COLUMNS as SEARCH_COLUMNS
from app.projections.search_index import event_rows, insert_ctes, search_table
from app.search_types.protocol import Rows
from app.search_types.registry import TABLES

# the version the event follows is still the last one committed when the statement began: a write
# decided on a stale head appends nothing (one that is still in flight meets the unique constraint)
_NOT_BEHIND = no_later_version_sql(1)
_statements: dict[tuple[str, tuple[str, ...], tuple[str, ...], bool, bool], str] = {}


class _Plan(NamedTuple):
    """The search rows one event writes: ``cleared`` the kinds whose rows of the resource go first
    (only those of the parameters ``params`` gives for each, in order, unless it is None), then
    ``rows`` (kind -> ``(param, ...)``) are inserted."""

    cleared: tuple[str, ...]
    params: list[list[str]] | None
    rows: Rows


def _statement(
    resource_type: str, kinds: tuple[str, ...], cleared: tuple[str, ...], by_param: bool, joined: bool = False
) -> str:
    """The statement for one event of ``resource_type`` with search rows of ``kinds``; ``cleared``:
    the kinds whose rows of an earlier version go first (with ``by_param``, only those of the
    parameters of a text array each). Parameters: the event's values ($1…$13), the loaded registry
    version, ``deleted``, the cleared kinds' parameter arrays, then one array per search column of
    each kind but its ids (every row takes the key of the one resource; the ``param`` array stands
    in for them, so the column arrays unnest as the bulk paths' do); with ``joined``, each text,
    bigint and timestamptz column comes as one string (:mod:`app.joined_text`: asyncpg
    encodes arrays element by element, and that was the largest single Python cost of a create)."""
    key = (resource_type, kinds, cleared, by_param, joined)
    cached = _statements.get(key)
    if cached is not None:
        return cached
    n_event = len(APPEND_TYPES)
    version_arg, deleted_arg = n_event + 1, n_event + 2
    # (id, version, deleted, last_updated, position, key) from the event's own parameters: a first
    # version's key is its own position; a later one keeps the row's (the log's, were it missing)
    first = "CASE WHEN $3::int = 1 THEN ev.position END"
    row_key = key_sql(resource_type, first, "$2", current_table(resource_type))
    current = ["$2", "$3", f"${deleted_arg}::boolean", "$6", "ev.position", row_key]
    parts = [
        "v AS (SELECT search_param_version_locked(false) AS version)",
        f"ev AS ({append_one_sql(1, f'v WHERE v.version = ${version_arg}::bigint AND {_NOT_BEHIND}')})",
        f"cur AS ({upsert_from_sql(resource_type, current, 'ev')})",
    ]
    n = deleted_arg
    for kind in cleared:
        only = ""
        if by_param:
            n += 1
            only = f" AND param = ANY(${n}::text[])"
        table = search_table(resource_type, kind)
        parts.append(f"d_{kind} AS (DELETE FROM {table} WHERE key = (SELECT key FROM cur){only})")
    for kind in kinds:
        types = _sent_types(kind)
        arrays = [array_sql(n + i, t, joined) for i, t in enumerate(types, 1)]
        n += len(types)
        arrays.insert(0, arrays[0])  # the ids' place (see above)
        # the row the cur CTE upserted (none unless the event was appended) gives every row its key
        # (the full-text documents are content-addressed: stored whether or not the event is appended)
        parts += insert_ctes(search_table(resource_type, kind), kind, arrays, "cur", False)
    sql = "WITH " + ",\n".join(parts) + "\nSELECT position FROM ev"
    _statements[key] = sql
    return sql


_SENT: dict[str, tuple[str, ...]] = {}


def _sent_types(kind: str) -> tuple[str, ...]:
    """The types of the arrays a search kind's rows are sent as: ``param``, its columns (as the
    kind's table takes them: the full-text table takes text and stores document ids)."""
    types = _SENT.get(kind)
    if types is None:
        types = _SENT[kind] = ("text", *TABLES[kind].sent_types())
    return types


def _search_arrays(rows: Rows, kinds: tuple[str, ...], ids: bool = False) -> tuple[list, bool]:
    """The search columns as sent, and whether they are joined strings
    (:func:`app.joined_text.sent_columns`; else every column is an array: a text value held a
    separator). With ``ids``, each row starts with its resource's id (a column more)."""
    types: list[str] = []
    columns: list[tuple] = []
    for kind in kinds:
        kind_types, kind_rows = _sent_types(kind), rows[kind]
        kind_types = ("text", *kind_types) if ids else kind_types
        if len(kind_rows[0]) != len(kind_types):  # the rows' zip checks the others
            raise ValueError(f"{kind} rows of {len(kind_rows[0])} columns, not {len(kind_types)}")
        types += kind_types
        columns += zip(*kind_rows, strict=True)
    sent = sent_columns(types, columns)
    return (sent, True) if sent is not None else ([list(c) for c in columns], False)


def _plan(event: VersionEvent, previous: bytes | None) -> _Plan:
    """What ``event`` writes to the search tables: a first version its rows; a deletion, or a version
    whose previous bytes are not known, clears every kind and inserts its rows; otherwise only the
    parameters whose rows changed from the previous version's (``previous``: its bytes) are
    replaced, and only those a changed element may change are extracted (``revised_rows``)."""
    if event.version == 1 or previous is None or event.kind is EventKind.DELETED:
        cleared = () if event.version == 1 else tuple(SEARCH_COLUMNS)
        return _Plan(cleared, None, event_rows(event) or {})  # a deletion has no rows
    after = event.parsed if event.parsed is not None else orjson.loads(event.resource)
    old, new = revised_rows(event.resource_type, orjson.loads(previous), after)
    if not old and not new:  # no row changed: none to write
        return _Plan((), None, {})
    changed = changes(old, new)
    return _Plan(tuple(changed), [c.params for c in changed.values()], {k: c.rows for k, c in changed.items()})


async def append_and_project(
    conn: asyncpg.Connection, event: VersionEvent, previous: bytes | None = None
) -> int | None:
    """Append ``event`` and project it in one statement; its position, or None when the stored
    custom-parameter version is not the loaded one or the event's head is stale (nothing was
    written; the lock is held).
    ``previous``: the bytes of the version ``event`` follows, read in the same write (see above)."""
    plan = _plan(event, previous)
    kinds = tuple(k for k in SEARCH_COLUMNS if plan.rows.get(k))
    arrays, joined_text = _search_arrays(plan.rows, kinds)
    sql = _statement(event.resource_type, kinds, plan.cleared, plan.params is not None, joined_text)
    deleted = event.kind is EventKind.DELETED
    args = [*event_values(event), custom_params.loaded().version, deleted, *(plan.params or ()), *arrays]
    return await conn.fetchval(sql, *args)


_many_statements: dict[tuple[str, tuple[str, ...], tuple[str, ...], bool], str] = {}


def _many_statement(resource_type: str, kinds: tuple[str, ...], cleared: tuple[str, ...], joined: bool) -> str:
    """The statement for versions of several resources of ``resource_type`` (see
    :func:`append_and_project_many`): the events' values as one array per column ($1…$13), the
    loaded registry version, for each kind of ``cleared`` two arrays (ids, params: the rows of those
    parameters of those resources go first), then the search rows of ``kinds`` as
    :func:`_statement`'s but for a first column of ids, which joins each row to its resource's
    current-state row (its key)."""
    key = (resource_type, kinds, cleared, joined)
    cached = _many_statements.get(key)
    if cached is not None:
        return cached
    n_event = len(APPEND_TYPES)
    # the guards of the one statement, row by row: the registry version, and no later version of the id
    append = append_many_sql(1, "v", f"v.version = ${n_event + 1}::bigint")
    table = current_table(resource_type)
    # a first event keys its rows; a later one keeps the row's key (the log's, were it missing)
    row_key = key_sql(resource_type, "CASE WHEN ev.version = 1 THEN ev.position END", "ev.resource_id", table)
    current = ["resource_id", "version", "false", "recorded_at", "position", row_key]
    parts = [
        "v AS (SELECT search_param_version_locked(false) AS version)",
        f"ev AS ({append})",
        f"cur AS ({upsert_from_sql(resource_type, current, 'ev', 'id, key')})",
    ]
    n = n_event + 1
    for kind in cleared:
        pairs = (
            f"SELECT c.key, x.param FROM cur c"
            f" JOIN unnest(${n + 1}::text[], ${n + 2}::text[]) AS x(id, param) ON c.id = x.id"
        )
        n += 2
        side = search_table(resource_type, kind)
        parts.append(f"d_{kind} AS (DELETE FROM {side} t USING ({pairs}) d WHERE t.key = d.key AND t.param = d.param)")
    for kind in kinds:
        types = ("text", *_sent_types(kind))
        arrays_sql = [array_sql(n + i, t, joined) for i, t in enumerate(types, 1)]
        n += len(types)
        parts += insert_ctes(search_table(resource_type, kind), kind, arrays_sql, "cur")
    sql = "WITH " + ",\n".join(parts) + "\nSELECT resource_id, position FROM ev"
    _many_statements[key] = sql
    return sql


def shareable(event: VersionEvent, previous: bytes | None) -> bool:
    """Whether :func:`append_and_project_many` takes ``event``: a first version, or a later one whose
    previous version's bytes the write read (only the changed parameters' rows are replaced)."""
    if event.kind is EventKind.CREATED:
        return event.version == 1 and previous is None
    return event.kind is EventKind.UPDATED and event.version > 1 and previous is not None


async def append_and_project_many(
    conn: asyncpg.Connection, writes: list[tuple[VersionEvent, bytes | None]]
) -> list[int | None]:
    """Append and project versions of distinct resources of one type in one statement (writes that
    arrived together, :mod:`app.projections.write_batches`): what :func:`append_and_project` writes
    for each (``writes``: each event with the bytes of the version it follows, as there; each must
    be :func:`shareable`), with its guards row by row. Returns each event's position, or None for one
    not appended (a version at or after it exists; or every one, when the stored custom-parameter
    version is not the loaded one). The ids must differ; a statement error writes nothing."""
    resource_type = writes[0][0].resource_type
    merged: dict[str, list[tuple]] = {}
    clearing: dict[str, tuple[list[str], list[str]]] = {}
    for event, previous in writes:
        if not shareable(event, previous) or event.resource_type != resource_type:
            raise ValueError("append_and_project_many takes creates and read-ahead updates of one resource type")
        plan = _plan(event, previous)
        rid = event.resource_id
        for kind, params in zip(plan.cleared, plan.params or (), strict=True):
            ids, names = clearing.setdefault(kind, ([], []))
            ids += [rid] * len(params)
            names += params
        for kind, kind_rows in plan.rows.items():
            if kind_rows:
                merged.setdefault(kind, []).extend((rid, *row) for row in kind_rows)
    kinds = tuple(k for k in SEARCH_COLUMNS if merged.get(k))
    cleared = tuple(k for k in SEARCH_COLUMNS if k in clearing)
    arrays, joined = _search_arrays(merged, kinds, ids=True)
    values = [list(column) for column in zip(*(event_values(e) for e, _ in writes), strict=True)]
    sql = _many_statement(resource_type, kinds, cleared, joined)
    deletes = [array for kind in cleared for array in clearing[kind]]
    rows = await conn.fetch(sql, *values, custom_params.loaded().version, *deletes, *arrays)
    positions = {row[0]: row[1] for row in rows}
    return [positions.get(e.resource_id) for e, _ in writes]
