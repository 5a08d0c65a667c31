"""The ``number`` search type: every prefix, ``eq``/``ne`` over the value's implicit precision
range (``100`` → [99.5, 100.5)), ``ap`` within 10%. A value is a Decimal; a Range gives its low
and high values. Stored in ``sp_<type>_number (value)``, indexed on ``(param, value)`` (a range on the parameter's
values; number parameters are few and their values ranges, where a hash would not help)."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any, NamedTuple

from app.fhirspec.search_parameters import SearchParam
from app.search_types.nodes import decimal_of
from app.search_types.protocol import Rows, SearchType, SideTable, SortColumns
from app.search_types.sql import Args
from app.search_types.syntax import number, precision_range, split_prefix


class NumberValue(NamedTuple):
    value: Decimal


def prefixed_number_condition(code: str, prefix: str, text: str, args: Args, column: str) -> str:
    """``column`` against the number ``text`` under ``prefix`` (shared with quantities)."""
    value = number(code, text)
    if prefix in ("eq", "ne"):
        lo, hi = precision_range(value)
        cond = f"({column} >= {args.add(lo, 'numeric')} AND {column} < {args.add(hi, 'numeric')})"
        return cond if prefix == "eq" else f"NOT {cond}"
    if prefix == "ap":
        spread = abs(value) * Decimal("0.1") or Decimal("0.1")
        return (
            f"({column} >= {args.add(value - spread, 'numeric')} AND {column} <= {args.add(value + spread, 'numeric')})"
        )
    op = {"gt": ">", "lt": "<", "ge": ">=", "le": "<=", "sa": ">", "eb": "<"}[prefix]
    return f"{column} {op} {args.add(value, 'numeric')}"


def number_condition(code: str, value: str, args: Args, column: str = "s.value") -> str:
    prefix, text = split_prefix(code, value)
    return prefixed_number_condition(code, prefix, text, args, column)


class NumberType(SearchType):
    name = "number"
    value_class = NumberValue
    tables = (SideTable("number", (("value", "numeric"),), (("value", "(param, value) INCLUDE (key)"),)),)
    sort_columns = SortColumns("value", "value", "numeric")

    def convert(self, typ: str | None, value: Any, root: dict) -> Iterator[NumberValue]:
        if isinstance(value, dict):  # a Range
            for end in ("low", "high"):
                bound = value.get(end)
                found = decimal_of(bound.get("value")) if isinstance(bound, dict) else None
                if found is not None:
                    yield NumberValue(found)
            return
        found = decimal_of(value)
        if found is not None:
            yield NumberValue(found)

    def add_rows(self, code: str, values: list[NumberValue], out: Rows) -> None:
        out["number"].extend((code, v.value) for v in values)

    def component(self, value: NumberValue) -> tuple:
        return (None, None, value.value, None, None, None)

    def condition(self, code: str, value: str, modifier: str | None, param: SearchParam, args: Args, base: str) -> str:
        return f"(s.param = {args.add(code)} AND {number_condition(code, value, args)})"


NUMBER = NumberType()
