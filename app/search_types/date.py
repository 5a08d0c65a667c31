"""The ``date`` search type: every prefix (eq ne gt lt ge le sa eb ap) between ranges.

A value is the half-open UTC range ``[low, high)`` it denotes; a Period without start/end is open
on that side (:data:`DATE_MIN` / :data:`DATE_MAX`); a Timing spans its events, else its
``repeat.boundsPeriod``; strings that parse as dates count. Stored in ``sp_<type>_date (low,
high)`` with a GiST index on ``tstzrange(low, high)`` serving every prefix, and per resource and
date parameter one row of sort keys ``sp_<type>_sort (d_min, d_max)`` (earliest start, latest
end) so that ``_sort=[-]date`` can walk an index instead of computing a key for every match."""

from __future__ import annotations

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
RANGE = "tstzrange(s.low, s.high, '[)')"  # the GiST-indexed expression of the date side tables


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
    """The condition of ``[prefix]date`` on the range columns ``low``/``high``; ``indexed`` adds
    the overlap with :data:`RANGE` that lets the GiST index bound the scan."""
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
    if not indexed or prefix == "ne":
        return cond
    refs = {"l": vl_ref, "h": vh_ref, None: "NULL"}
    start, end = _WINDOW[prefix]
    return f"({RANGE} && tstzrange({refs[start]}, {refs[end]}, '[)') AND {cond})"


SORT_TABLE = SideTable(
    "sort", (("d_min", "timestamptz"), ("d_max", "timestamptz")), ("param, d_min, id", "param, d_max DESC, id")
)


class DateType(SearchType):
    name = "date"
    value_class = DateValue
    tables = (
        SideTable(
            "date",
            (("low", "timestamptz"), ("high", "timestamptz")),
            (),  # the GiST index on the range serves every prefix
            (("range", "USING gist (tstzrange(low, high, '[)'))"),),
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
