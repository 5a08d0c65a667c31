"""Turning a parsed search into SQL: filters, sort keys, keyset paging (never OFFSET).

A page is chosen as resource keys first (with their sort keys), limited, and only then joined to
the current-state rows whose ids and resources it returns, so a search never carries more
resource bytes than its page. Resources are named by their integer key (the position of their
first event, :mod:`app.projections.current_state`) in the side tables, so matches come in key
order, i.e. in the order the resources were created, and ties of ``_sort`` are broken by key.
When every criterion is positive (a match has a side-table row; a deleted resource has none),
no ``_sort`` is asked and the token sees everything, the keys come from the side tables alone
(:func:`_side_ids`): the group :mod:`app.queries.search.driver` chooses drives (its matches
read in full first when a bounded count found them few, else in key order where its own index
gives it), and each other group is probed per key (``OFFSET 0`` keeps the
probe a correlated subplan: matches of different parameters are correlated, e.g. every
Observation of a code has a quantity, which no statistics tell the planner, and a join it would
choose instead reads every match of both where the page needs twenty), so a page costs about the
rows it skips, not the size of the database.

Every statement names the type's current-state table before its side tables, so it locks them in
the order a rebuild's swap does (``projections/rebuild.py``: the current-state table first, then
the side tables), and the two can never wait on each other in a cycle."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import NamedTuple

from app.errors import invalid
from app.projections.current_state import current_table, resource_sql
from app.projections.search_index import search_table
from app.queries.paging import cursor_error
from app.queries.search.conditions import criterion_sql, is_positive, param_rows, value_condition
from app.queries.search.model import Criterion, SearchQuery, SortKey
from app.queries.search.restriction import restriction_sql
from app.queries.search.sql import Args
from app.search_types.param_aliases import answering, stored_as
from app.search_types.registry import search_type
from app.search_types.text import is_string_text


class Driver(NamedTuple):
    """The criterion group whose side-table rows drive the page (:func:`page_sql`),
    and whether they are few (under :data:`app.queries.search.driver.ENOUGH`), to be read in full before the probes."""

    group: int = 0
    few: bool = False


@dataclass(frozen=True)
class Key:
    expr: str
    cast: str
    descending: bool
    nulls_last: bool = True


def _groups(q: SearchQuery) -> list[list[Criterion]]:
    """Criteria to test on one side-table row together: repeated single-valued date criteria on
    one parameter (``date=ge2020&date=lt2021``) form one range on the same value, as in other
    servers; every other criterion stands alone."""
    groups: dict[str, list[Criterion]] = {}
    out: list[list[Criterion]] = []
    for c in q.criteria:
        if c.param.type == "date" and is_positive(c) and len(c.values) == 1:
            if c.code not in groups:
                groups[c.code] = []
                out.append(groups[c.code])
            groups[c.code].append(c)
        else:
            out.append([c])
    return out


def _positive(q: SearchQuery, group: list[Criterion], args: Args, base: str) -> str:
    """``SELECT s.key`` of the resources a positive group matches (side table alone)."""
    table = search_table(q.resource_type, group[0].param.type)
    conds = " AND ".join(value_condition(g, args, base, q.resource_type) for g in group)
    return f"SELECT s.key FROM {table} s WHERE {conds}"


def _group_sql(q: SearchQuery, group: list[Criterion], args: Args, base: str, row: str) -> str:
    if len(group) == 1:
        return criterion_sql(q.resource_type, group[0], args, base, row)
    return f"EXISTS ({_positive(q, group, args, base)} AND s.key = {row}.key)"


def where_clause(q: SearchQuery, args: Args, base: str) -> str:
    parts = ["NOT r.deleted"]
    parts += [_group_sql(q, group, args, base, "r") for group in _groups(q)]
    if q.restriction is not None:
        parts.append(restriction_sql(q.restriction, args, base))
    if q.compartment is not None:
        parts.append(restriction_sql(q.compartment, args, base))
    return " AND ".join(parts)


def side_driven(q: SearchQuery) -> bool:
    """Whether the keys of a page can come from the side tables alone (see the module docstring)."""
    groups = _groups(q)
    confined = q.restriction is not None or q.compartment is not None
    return bool(groups) and not confined and not q.sort and all(is_positive(g[0]) for g in groups)


def group_sql(q: SearchQuery, base: str) -> list[tuple[str, list]]:
    """Each group's ``SELECT s.key`` over its side table, for the planner to estimate (side-driven)."""
    out = []
    for group in _groups(q):
        args = Args()
        out.append((_positive(q, group, args, base), args.values))
    return out


def group_types(q: SearchQuery) -> list[str]:
    """The search type of each criterion group (the order of :func:`group_sql`); ``text`` for
    ``:text`` on a string parameter (its index is a GIN index too)."""
    return ["text" if is_string_text(g[0].param, g[0].modifier) else g[0].param.type for g in _groups(q)]


def bounded_counts_sql(q: SearchQuery, base: str, enough: int, which: list[int] | None = None) -> tuple[str, list]:
    """One statement counting the side-table rows of each group (of those ``which`` names, else
    all) up to ``enough``: an array, in order."""
    args = Args()
    groups = _groups(q)
    chosen = [groups[i] for i in which] if which is not None else groups
    counts = [f"(SELECT count(*) FROM ({_positive(q, g, args, base)} LIMIT {enough}) g)" for g in chosen]
    return f"SELECT ARRAY[{', '.join(counts)}]", args.values


def _side_ids(q: SearchQuery, args: Args, base: str, keyset: str, forward: bool, driver: Driver) -> str:
    """The page's keys from the side tables: the driving group's rows as a plain subquery (read in
    full first when they are few), the other groups probed per key (see the module docstring)."""
    groups = _groups(q)
    rows = _positive(q, groups[driver.group], args, base)
    probes = [
        f"EXISTS ({_positive(q, group, args, base)} AND s.key = d.key OFFSET 0)"
        for i, group in enumerate(groups)
        if i != driver.group
    ]
    order = "ASC" if forward else "DESC"
    head, source = (f"WITH d AS MATERIALIZED ({rows}) ", "d") if driver.few else ("", f"({rows}) d")
    return (
        f"{head}SELECT DISTINCT d.key FROM {source}"
        f" WHERE {' AND '.join([*probes, keyset])}"
        f" ORDER BY d.key {order} LIMIT {args.add(q.count + 1, 'int')}"
    )


def _sort_key(resource_type: str, key: SortKey, args: Args) -> Key:
    if key.param is None:
        if key.code == "_id":
            return Key("r.id", "text", key.descending, True)
        return Key("r.last_updated", "timestamptz", key.descending, True)
    columns = search_type(key.param.type).sort_columns
    assert columns is not None, key.param.type  # the parser keeps unsortable types out of _sort
    table = search_table(resource_type, key.param.type)
    fn = "max" if key.descending else "min"
    value = columns.sql(key.descending)
    of_param = param_rows(answering(resource_type, key.param, key.code), args)
    expr = f"(SELECT {fn}({value}) FROM {table} s WHERE s.key = r.key AND {of_param})"
    return Key(expr, columns.cast, key.descending)


def _encode(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def _decode(value: object, cast: str) -> object:
    if value is None:
        return None
    try:
        if cast == "timestamptz":
            moment = datetime.fromisoformat(str(value))
            if moment.tzinfo is None:
                raise ValueError("no time zone")
            moment.astimezone(UTC)  # OverflowError at the ends of the calendar
            return moment
        if cast == "numeric":
            number = Decimal(str(value))
            if not number.is_finite() or abs(number.adjusted()) > 1000:
                raise ValueError("not a number a sort value holds")
            return number
    except (ValueError, ArithmeticError):  # OverflowError and decimal.InvalidOperation are ArithmeticErrors
        raise cursor_error("a sort value does not fit its parameter") from None
    return str(value)


def _beyond(col: str, key: Key, ref: str | None, forward: bool) -> str:
    """Rows strictly after the cursor value ``ref`` in this key's order (reversed when paging back)."""
    descending = key.descending != (not forward)
    nulls_last = key.nulls_last == forward
    if ref is None:
        return "FALSE" if nulls_last else f"{col} IS NOT NULL"
    cond = f"{col} {'<' if descending else '>'} {ref}"
    return f"({cond} OR {col} IS NULL)" if nulls_last else cond


def _keyset(cols: list[str], keys: list[Key], values: list, last_key: int, args: Args, forward: bool) -> str:
    key_ref = args.add(last_key, "bigint")
    cond = f"r.key {'>' if forward else '<'} {key_ref}"
    for col, key, value in reversed(list(zip(cols, keys, values, strict=True))):
        ref = None if value is None else args.add(_decode(value, key.cast), key.cast)
        equal = f"{col} IS NULL" if ref is None else f"{col} = {ref}"
        cond = f"({_beyond(col, key, ref, forward)} OR ({equal} AND {cond}))"
    return cond


def _order(cols: list[str], keys: list[Key], forward: bool) -> str:
    parts = []
    for col, key in zip(cols, keys, strict=True):
        descending = key.descending != (not forward)
        nulls_last = key.nulls_last == forward
        parts.append(f"{col} {'DESC' if descending else 'ASC'} NULLS {'LAST' if nulls_last else 'FIRST'}")
    parts.append(f"r.key {'ASC' if forward else 'DESC'}")
    return ", ".join(parts)


@dataclass
class PageSql:
    sql: str | None  # None: the page lies wholly in ``tail``
    args: list
    sort_count: int
    forward: bool
    tail: tuple[str, list] | None = None  # rows to append when ``sql`` gives fewer than the page


def _date_sort_page(q: SearchQuery, base: str) -> PageSql | None:
    """``_sort=[-]<date parameter>`` as its only key, paging forward: walk the sort-key index
    (``sp_<type>_sort``) instead of computing a key for every match; the resources without a
    value come after (NULLS LAST), in key order. Same order as the general plan."""
    if len(q.sort) != 1 or q.sort[0].param is None or q.sort[0].param.type != "date":
        return None
    key = q.sort[0]
    after_value, after_key, in_tail = None, None, False
    if q.cursor is not None:
        values, after_key = q.cursor.get("v"), _cursor_key(q.cursor)
        if q.cursor.get("d", "next") != "next":
            return None  # previous pages take the general plan
        if not isinstance(values, list) or len(values) != 1:
            raise invalid("The paging cursor _page does not belong to this search (were _sort parameters changed?)")
        in_tail = values[0] is None
        after_value = None if in_tail else _decode(values[0], "timestamptz")
    (code,) = stored_as(q.resource_type, key.code).codes  # a date is answered by one parameter's rows
    col, direction = ("d_max", "DESC") if key.descending else ("d_min", "ASC")
    sort_table, cur = search_table(q.resource_type, "sort"), current_table(q.resource_type)
    head = None
    head_args = Args()
    if not in_tail:
        where = where_clause(q, head_args, base)
        param = head_args.add(code)
        keyset = "TRUE"
        if after_value is not None:
            v, i = head_args.add(after_value, "timestamptz"), head_args.add(after_key, "bigint")
            keyset = f"(k.{col} {'<' if key.descending else '>'} {v} OR (k.{col} = {v} AND k.key > {i}))"
        head = (
            f"SELECT r.id, r.key, {resource_sql('r')} AS resource, r.last_updated, k.{col} AS s0"
            f" FROM {cur} r JOIN {sort_table} k ON r.key = k.key"
            f" WHERE k.param = {param} AND {keyset} AND {where}"
            f" ORDER BY k.{col} {direction}, k.key LIMIT {head_args.add(q.count + 1, 'int')}"
        )
    tail_args = Args()
    where = where_clause(q, tail_args, base)
    param = tail_args.add(code)
    keyset = f"r.key > {tail_args.add(after_key, 'bigint')}" if in_tail else "TRUE"
    tail = (
        f"SELECT r.id, r.key, {resource_sql('r')} AS resource, r.last_updated, NULL::timestamptz AS s0"
        f" FROM {cur} r WHERE {where}"
        f" AND NOT EXISTS (SELECT 1 FROM {sort_table} k WHERE k.key = r.key AND k.param = {param}) AND {keyset}"
        f" ORDER BY r.key LIMIT {tail_args.add(q.count + 1, 'int')}"
    )
    return PageSql(head, head_args.values, 1, True, (tail, tail_args.values))


def _cursor_key(cursor: dict) -> int:
    """The key of the last resource a cursor's page showed (a 400 if it holds none)."""
    key = cursor.get("k")
    if type(key) is not int or not 0 < key < 2**63:  # a log position: a positive bigint
        raise invalid("The paging cursor _page does not belong to this search (were _sort parameters changed?)")
    return key


def _cursor(q: SearchQuery, keys: list[Key]) -> tuple[list, int | None, bool]:
    if q.cursor is None:
        return [], None, True
    values, last_key = q.cursor.get("v", []), _cursor_key(q.cursor)
    if not isinstance(values, list) or len(values) != len(keys):
        raise invalid("The paging cursor _page does not belong to this search (were _sort parameters changed?)")
    return values, last_key, q.cursor.get("d", "next") == "next"


def page_sql(q: SearchQuery, base: str, driver: Driver = Driver()) -> PageSql:
    """The page query: rows (id, key, s0..sn, resource) in the page's order, limit+1; the keys (and
    sort keys) are chosen and limited first, the ids and resources of those alone are fetched."""
    fast = _date_sort_page(q, base)
    if fast is not None:
        return fast
    args = Args()
    table = current_table(q.resource_type)
    if side_driven(q):
        _, last_key, forward = _cursor(q, [])
        keyset = "TRUE" if last_key is None else f"d.key {'>' if forward else '<'} {args.add(last_key, 'bigint')}"
        keys = _side_ids(q, args, base, keyset, forward, driver)
        order = f"r.key {'ASC' if forward else 'DESC'}"
        resource = resource_sql("c")
        page = f"({keys}) r ON c.key = r.key ORDER BY {order}"
        sql = f"SELECT c.id, r.key, {resource} AS resource FROM {table} c JOIN {page}"
        return PageSql(sql, args.values, 0, forward)
    where = where_clause(q, args, base)
    keys = [_sort_key(q.resource_type, k, args) for k in q.sort]
    cols = [f"r.s{i}" for i in range(len(keys))]
    values, last_key, forward = _cursor(q, keys)
    keyset = "TRUE" if last_key is None else _keyset(cols, keys, values, last_key, args, forward)
    select_keys = "".join(f", {k.expr} AS s{i}" for i, k in enumerate(keys))
    inner = f"SELECT r.key{select_keys} FROM {table} r WHERE {where}"
    order = _order(cols, keys, forward)
    page = f"SELECT * FROM ({inner}) r WHERE {keyset} ORDER BY {order} LIMIT {args.add(q.count + 1, 'int')}"
    resource = resource_sql("c")
    sql = f"SELECT c.id, r.*, {resource} AS resource FROM {table} c JOIN ({page}) r ON c.key = r.key ORDER BY {order}"
    return PageSql(sql, args.values, len(keys), forward)


def count_sql(q: SearchQuery, base: str) -> tuple[str, list]:
    """Counting each matching resource once, by intersecting side-table id sets when every
    criterion is positive (a deleted resource has no side-table rows), the token sees everything and
    no compartment confines the search,
    else over the current-state table."""
    args = Args()
    groups = _groups(q)
    if groups and q.restriction is None and q.compartment is None and all(is_positive(g[0]) for g in groups):
        # INTERSECT drops duplicates; one set alone has a row per matching value, so DISTINCT
        sets = " INTERSECT ".join(f"({_positive(q, g, args, base)})" for g in groups)
        distinct = "DISTINCT " if len(groups) == 1 else ""
        first = f"WITH lock_order AS (SELECT FROM {current_table(q.resource_type)} WHERE FALSE) "
        return f"{first}SELECT count({distinct}m.key) FROM ({sets}) m", args.values
    where = where_clause(q, args, base)
    return f"SELECT count(*) FROM {current_table(q.resource_type)} r WHERE {where}", args.values


def estimate_sql(q: SearchQuery, base: str) -> tuple[str, list]:
    """The matches as one row each, for PostgreSQL to estimate (``EXPLAIN``), never to run."""
    args = Args()
    where = where_clause(q, args, base)
    return f"SELECT r.id FROM {current_table(q.resource_type)} r WHERE {where}", args.values


def cursor_state(row: dict, sort_count: int, direction: str) -> dict:
    return {"id": row["id"], "k": row["key"], "v": [_encode(row[f"s{i}"]) for i in range(sort_count)], "d": direction}
