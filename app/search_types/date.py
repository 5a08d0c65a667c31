"""The ``date`` search type: every prefix (eq ne gt lt ge le sa eb ap) between ranges.

A value is the half-open UTC range ``[low, high)`` it denotes; a Period without start/end is open
on that side (:data:`DATE_MIN` / :data:`DATE_MAX`); a Timing spans its events, else its
``repeat.boundsPeriod``; strings that parse as dates count. Stored in ``sp_<type>_date (low,
high)``, and per resource and date parameter one row of sort keys ``sp_<type>_sort (d_min,
d_max)`` (earliest start, latest end) so that ``_sort=[-]date`` can walk an index instead of
computing a key for every match.

The parameter is part of the range index: its expression :func:`span` is the row's range in
whole seconds, shifted into a band of its own per parameter (16 bits of the parameter's hash
above 2^40 seconds, wider than the years 1 to 9999), and a GiST index on it serves every prefix
(core PostgreSQL has no GiST operator class for a text column beside a range); the range
statistics of the index expression are thereby the parameter's own. The band only narrows the
scan: the condition still tests ``param`` and the exact bounds. The range is not stored in the
row (a generated column cost 22 bytes a row, the heap row a third more): conditions spell the
index's expression, which the planner matches."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, NamedTuple

from app.fhirspec.search_parameters import SearchParam
from app.fhirtime import FhirDateError, parse_range
from app.search_types.nodes import texts_of
from app.search_types.protocol import Rows, SearchType, SideTable, SortColumns
from app.search_types.sql import Args
from app.search_types.syntax import approx_range, date_range, split_prefix

DATE_MIN = datetime.min.replace(tzinfo=UTC)
DATE_MAX = datetime.max.replace(tzinfo=UTC)
_EPOCH = "timestamptz 'epoch'"


def _band(param_sql: str) -> str:
    """The first second of a parameter's band of ``span`` values."""
    return f"((hashtext({param_sql}) & 65535)::bigint << 40)"


def _seconds(column: str, rounding: str) -> str:
    """Whole seconds since the epoch of a bound (``±infinity``, as asyncpg stores the open ends,
    beyond the years 1 and 9999)."""
    return (
        f"CASE WHEN isfinite({column}) THEN {rounding}(extract(epoch from ({column} - {_EPOCH})))::bigint"
        f" WHEN {column} < {_EPOCH} THEN {_FAR_PAST} ELSE {_FAR_FUTURE} END"
    )


_FAR_PAST, _FAR_FUTURE = -62135596801, 253402300801  # a second beyond the years 1 and 9999


def span(row: str = "") -> str:
    """The range expression of a date row (``row``: its alias and a dot, or nothing in the index)."""
    low, high = _seconds(f"{row}low", "floor"), _seconds(f"{row}high", "ceil")
    return f"int8range({_band(f'{row}param')} + {low}, {_band(f'{row}param')} + {high}, '[]')"


def _span_window(code: str, start: datetime | None, end: datetime | None, args: Args) -> str:
    """The :func:`span` of row ``s`` overlaps the window [start, end) of parameter ``code`` (None:
    open), widened by a second on each side (float seconds round)."""
    lo = math.floor(start.timestamp()) - 1 if start is not None else _FAR_PAST
    hi = math.ceil(end.timestamp()) + 1 if end is not None else _FAR_FUTURE
    band = _band(args.add(code, "text"))
    return f"{span('s.')} && int8range({band} + {args.add(lo, 'bigint')}, {band} + {args.add(hi, 'bigint')}, '[]')"


class DateValue(NamedTuple):
    low: datetime
    high: datetime


def _range(text: object) -> tuple[datetime, datetime] | None:
    if not isinstance(text, str):
        return None
    try:
        return parse_range(text)
    except FhirDateError:
        return None


def _period(value: dict) -> DateValue | None:
    start, end = value.get("start"), value.get("end")
    if start is None and end is None:
        return None
    low = _range(start) if start is not None else (DATE_MIN, DATE_MIN)
    high = _range(end) if end is not None else (DATE_MAX, DATE_MAX)
    if low is None or high is None:
        return None
    return DateValue(low[0], high[1])


def _timing(value: dict) -> DateValue | None:
    events = [r for r in (_range(e) for e in texts_of(value.get("event"))) if r is not None]
    if events:
        return DateValue(min(r[0] for r in events), max(r[1] for r in events))
    repeat = value.get("repeat")
    if isinstance(repeat, dict) and isinstance(repeat.get("boundsPeriod"), dict):
        return _period(repeat["boundsPeriod"])
    return None


_USES = {"eq": "lh", "ne": "lh", "gt": "h", "lt": "l", "ge": "lh", "le": "lh", "sa": "h", "eb": "l", "ap": "lh"}
_WINDOW = {  # the window [from, to) the stored range must overlap, implied by each prefix
    "eq": ("l", "h"),
    "gt": ("h", None),
    "ge": ("l", None),
    "lt": (None, "l"),
    "le": (None, "h"),
    "sa": ("h", None),
    "eb": (None, "l"),
    "ap": ("l", "h"),
    "ne": (None, None),
}


def _range_condition(prefix: str, low: str, high: str, vl: str, vh: str) -> str:
    """The spec's prefix semantics between a stored range [low, high) and a search range [vl, vh).

    Each form leads with a predicate on one column alone (implied by the rest, since low < high)
    so that the (param, low) / (param, high) indexes bound the scan."""
    contained = f"({low} >= {vl} AND {high} <= {vh})"
    return {
        "eq": f"({low} >= {vl} AND {low} < {vh} AND {high} <= {vh})",
        "ne": f"NOT {contained}",
        "gt": f"{high} > {vh}",
        "lt": f"{low} < {vl}",
        "ge": f"({high} > {vl} AND ({high} > {vh} OR {low} >= {vl}))",
        "le": f"({low} < {vh} AND ({low} < {vl} OR {high} <= {vh}))",
        "sa": f"{low} >= {vh}",
        "eb": f"{high} <= {vl}",
        "ap": f"({low} < {vh} AND {high} > {vl})",
    }[prefix]


def date_condition(
    code: str, value: str, args: Args, low: str = "s.low", high: str = "s.high", indexed: bool = False
) -> str:
    """The condition of ``[prefix]date`` on the range columns ``low``/``high``; ``indexed`` (a row
    of the date table) adds the parameter and the overlap of ``span`` that lets the GiST index
    bound the scan."""
    prefix, text = split_prefix(code, value)
    vl, vh = date_range(code, text)
    if prefix == "ap":
        try:
            vl, vh = approx_range(vl, vh)
        except OverflowError:
            pass
    uses = _USES[prefix]
    vl_ref = args.add(vl, "timestamptz") if "l" in uses else ""
    vh_ref = args.add(vh, "timestamptz") if "h" in uses else ""
    cond = _range_condition(prefix, low, high, vl_ref, vh_ref)
    if not indexed:
        return cond
    of_param = f"s.param = {args.add(code)}"
    if prefix == "ne":
        return f"({of_param} AND {cond})"
    bounds = {"l": vl, "h": vh, None: None}
    start, end = _WINDOW[prefix]
    return f"({_span_window(code, bounds[start], bounds[end], args)} AND {of_param} AND {cond})"


SORT_TABLE = SideTable(
    "sort",
    (("d_min", "timestamptz"), ("d_max", "timestamptz")),
    (("min", "(param, d_min, key)"), ("max", "(param, d_max DESC, key)")),
)


class DateType(SearchType):
    name = "date"
    value_class = DateValue
    tables = (
        SideTable(
            "date",
            (("low", "timestamptz"), ("high", "timestamptz")),
            (("range", f"USING gist (({span()}))"),),  # serves every prefix
        ),
        SORT_TABLE,
    )
    sort_columns = SortColumns("low", "high", "timestamptz")

    def convert(self, typ: str | None, value: Any, root: dict) -> Iterator[DateValue]:
        if isinstance(value, str):
            r = _range(value)
            if r is not None:
                yield DateValue(*r)
            return
        if not isinstance(value, dict):
            return
        if typ == "Period" or (typ is None and ("start" in value or "end" in value)):
            found = _period(value)
        elif typ == "Timing" or (typ is None and ("event" in value or "repeat" in value)):
            found = _timing(value)
        else:
            found = None  # Age, Range: not dates
        if found is not None:
            yield found

    def add_rows(self, code: str, values: list[DateValue], out: Rows) -> None:
        out["date"].extend((code, v.low, v.high) for v in values)
        if values:
            out["sort"].append((code, min(d.low for d in values), max(d.high for d in values)))

    def component(self, value: DateValue) -> tuple:
        return (None, None, None, value.low, value.high, None)

    def condition(self, code: str, value: str, modifier: str | None, param: SearchParam, args: Args, base: str) -> str:
        return date_condition(code, value, args, indexed=True)


DATE = DateType()
