"""The ``quantity`` search type: ``[prefix][number]|[system]|[code]`` (the code also matches the
unit when no system is given). A value is ``(value, system, code, unit)`` from Quantity and its
profiles (Age, Duration, Count, Distance, SimpleQuantity), Money (system ``urn:iso:std:iso:4217``,
the currency as code), Range (low and high as two values) and SampledData (its origin). Stored in
``sp_<type>_quantity (value, system_hash, code, unit)`` (the system as its 8-byte
:func:`~app.search_types.protocol.system_hash`, as the token table keeps it) with the generated
``hash`` of (param, code),
indexed on ``(hash, value)`` (a search with a unit code) and ``(param, value)`` (one without)."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any, NamedTuple

from app.fhirspec.search_parameters import SearchParam
from app.search_types.nodes import decimal_of, is_subtype, text_of
from app.search_types.number import prefixed_number_condition
from app.search_types.protocol import Rows, SearchType, SideTable, SortColumns, hash_condition, system_hash
from app.search_types.sql import Args, all_of
from app.search_types.syntax import split_pipe, split_prefix

ISO_4217 = "urn:iso:std:iso:4217"
COLUMNS = ("s.value", "s.system_hash", "s.code", "s.unit")


class QuantityValue(NamedTuple):
    value: Decimal
    system: str | None
    code: str | None
    unit: str | None


def _quantity_of(value: object) -> QuantityValue | None:
    if not isinstance(value, dict):
        return None
    found = decimal_of(value.get("value"))
    if found is None:
        return None
    return QuantityValue(found, text_of(value.get("system")), text_of(value.get("code")), text_of(value.get("unit")))


def quantity_condition(
    code: str, value: str, args: Args, cols: tuple[str, str, str, str] = COLUMNS, hashed: bool = True
) -> str:
    """``cols``: the (value, system, code, unit) columns; ``hashed``: the parameter is tested too,
    with the hash of (param, code) where the unit code is given, and the system column holds the
    :func:`~app.search_types.protocol.system_hash` (a composite's component is not hashed: its
    first component tests the parameter, and its system column holds the text)."""
    num, system, unit_code = (split_pipe(value, 3) + ["", ""])[:3]
    prefix, text = split_prefix(code, num)

    def system_is() -> str:
        return f"{cols[1]} = " + (args.add(system_hash(system), "bigint") if hashed else args.add(system))

    parts = [prefixed_number_condition(code, prefix, text, args, cols[0])]
    if system and unit_code:
        unit = hash_condition(code, unit_code, args) if hashed else f"{cols[2]} = {args.add(unit_code)}"
        parts = [unit, *parts, system_is()]
    elif unit_code:
        ref = args.add(unit_code)
        if hashed:
            of_param = f"s.param = {args.add(code)}"
            parts.append(f"({hash_condition(code, unit_code, args)} OR ({of_param} AND {cols[3]} = {ref}))")
        else:
            parts.append(f"({cols[2]} = {ref} OR {cols[3]} = {ref})")
    else:
        if system:
            parts.append(system_is())
        if hashed:
            parts.insert(0, f"s.param = {args.add(code)}")
    return all_of(parts)


class QuantityType(SearchType):
    name = "quantity"
    value_class = QuantityValue
    tables = (
        SideTable(
            "quantity",
            (("value", "numeric"), ("system_hash", "bigint"), ("code", "text"), ("unit", "text")),
            (("hash_value", "(hash, value) INCLUDE (key)"), ("value", "(param, value) INCLUDE (key)")),
            hash="code",
            depends=("system_hash",),
        ),
    )
    sort_columns = SortColumns("value", "value", "numeric")

    def convert(self, typ: str | None, value: Any, root: dict) -> Iterator[QuantityValue]:
        if not isinstance(value, dict):
            return
        if typ == "Money" or (typ is None and "currency" in value):
            found, currency = decimal_of(value.get("value")), text_of(value.get("currency"))
            if found is not None:
                yield QuantityValue(found, ISO_4217 if currency else None, currency, None)
            return
        if typ == "Range" or (typ is None and ("low" in value or "high" in value)):
            candidates: list[object] = [value.get("low"), value.get("high")]
        elif typ == "SampledData" or (typ is None and "origin" in value):
            candidates = [value.get("origin")]
        elif typ is None or is_subtype(typ, "Quantity"):
            candidates = [value]
        else:
            candidates = []
        for candidate in candidates:
            quantity = _quantity_of(candidate)
            if quantity is not None:
                yield quantity

    def add_rows(self, code: str, values: list[QuantityValue], out: Rows) -> None:
        out["quantity"].extend((code, v.value, system_hash(v.system), v.code, v.unit) for v in values)

    def component(self, value: QuantityValue) -> tuple:
        return (value.system, value.code, value.value, None, None, None)

    def condition(self, code: str, value: str, modifier: str | None, param: SearchParam, args: Args, base: str) -> str:
        return quantity_condition(code, value, args)


QUANTITY = QuantityType()
