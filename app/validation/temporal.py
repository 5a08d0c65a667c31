"""FHIRPath ordering and equality of date, dateTime and instant values, for the invariants.

fhirpathpy compares two element values (``start <= end`` in ``per-1``) as plain strings, so
``2020-10-29T01:46:40-04:00 <= 2020-10-29T01:31:40-05:00`` is false although the end is 45
minutes later. These operators replace ``<``, ``<=``, ``>``, ``>=``, ``=`` and ``!=`` in the
invariants' evaluation (``invariants._USER_FUNCTIONS``) and follow FHIRPath N1 (section 6.1.1,
6.2, https://hl7.org/fhirpath/N1/#comparison): values are compared precision by precision from
the year; when both have a time of day they are first moved to UTC (a value without an offset
is read as UTC, this server's time zone); a precision one value has and the other lacks makes
the result empty (unknown), which lets an invariant pass; seconds and their fraction are one
precision, compared as a decimal. Anything that is not a date/time goes to fhirpathpy.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from fhirpathpy.engine.invocations import invocation_registry
from fhirpathpy.engine.nodes import FP_DateTime, ResourceNode

_MOMENT = re.compile(
    r"(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2})"
    r"(?:T(?P<H>\d{2})(?::(?P<M>\d{2})(?::(?P<S>\d{2}(?:\.\d+)?))?)?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?"
)
TEMPORAL_TYPES = frozenset({"date", "dateTime", "instant"})
Components = tuple[int | Decimal | None, ...]  # year, month, day, hour, minute, second


@dataclass(frozen=True, slots=True)
class Moment:
    parts: Components
    offset: int | None  # minutes east of UTC, None when not written

    @property
    def has_time(self) -> bool:
        return self.parts[3] is not None


def parse_moment(text: str) -> Moment | None:
    """The components of a FHIR date/dateTime/instant (or FHIRPath literal), or None."""
    match = _MOMENT.fullmatch(text.lstrip("@"))
    if match is None:
        return None
    g = match.groupdict()
    parts: list[int | Decimal | None] = [int(g[k]) if g[k] else None for k in ("y", "m", "d", "H", "M")]
    parts.append(Decimal(g["S"]) if g["S"] else None)
    offset = None
    if g["tz"]:
        offset = 0 if g["tz"] == "Z" else (1 if g["tz"][0] == "+" else -1) * (int(g["tz"][1:3]) * 60 + int(g["tz"][4:]))
    return Moment(tuple(parts), offset)


def _utc(moment: Moment) -> Components | None:
    """The components moved to UTC (None when that cannot be done at the value's precision)."""
    if not moment.offset:
        return moment.parts
    year, month, day, hour, minute, second = moment.parts
    if minute is None and moment.offset % 60:
        return None  # an hour-precision value with a half-hour offset has no UTC hour
    try:
        local = datetime(int(year), int(month), int(day), int(hour), int(minute or 0))  # type: ignore[arg-type]
        shifted = local - timedelta(minutes=moment.offset)
    except (ValueError, OverflowError, TypeError):
        return None
    return (
        shifted.year,
        shifted.month,
        shifted.day,
        shifted.hour,
        None if minute is None else shifted.minute,
        second,
    )


def compare(left: Moment, right: Moment) -> int | None:
    """-1, 0 or 1; None when the values cannot be compared at their precisions."""
    a: Components | None = left.parts
    b: Components | None = right.parts
    if left.has_time and right.has_time:
        a, b = _utc(left), _utc(right)
        if a is None or b is None:
            return None
    for x, y in zip(a, b, strict=True):  # type: ignore[arg-type]
        if x is None and y is None:
            return 0
        if x is None or y is None:
            return None
        if x != y:
            return -1 if x < y else 1  # type: ignore[operator]
    return 0


def _temporal(item: object, typed_only: bool) -> Moment | None:
    if isinstance(item, ResourceNode):
        if item.path in TEMPORAL_TYPES and isinstance(item.data, str):
            return parse_moment(item.data)
        return None
    if isinstance(item, FP_DateTime) and isinstance(item.asStr, str):
        return parse_moment(item.asStr)
    if isinstance(item, str) and not typed_only:
        return parse_moment(item)
    return None


def _operator(symbol: str, decide: Callable[[int], bool]) -> Callable[[list, list], object]:
    original = invocation_registry[symbol]["fn"]

    def operate(left: list, right: list) -> object:
        # fhirpathpy hands user operators the left operand as bare data (its type is lost) and
        # the right one as nodes: a date/time on either typed side makes both dates/times.
        if len(left) == 1 and len(right) == 1:
            typed_left = _temporal(left[0], typed_only=True)
            typed_right = _temporal(right[0], typed_only=True)
            if typed_left is not None or typed_right is not None:
                a = typed_left or _temporal(left[0], typed_only=False)
                b = typed_right or _temporal(right[0], typed_only=False)
                if a is not None and b is not None:
                    outcome = compare(a, b)
                    return [] if outcome is None else [decide(outcome)]
        return original(None, left, right)

    return operate


def operators() -> dict[str, dict]:
    """User invocation table entries replacing fhirpathpy's comparison operators."""
    table = {
        "<": lambda c: c < 0,
        "<=": lambda c: c <= 0,
        ">": lambda c: c > 0,
        ">=": lambda c: c >= 0,
        "=": lambda c: c == 0,
        "!=": lambda c: c != 0,
    }
    return {
        symbol: {"fn": _operator(symbol, decide), "arity": {2: ["Any", "Any"]}, "nullable": True}
        for symbol, decide in table.items()
    }
