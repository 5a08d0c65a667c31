"""The ``string`` search type: case- and accent-insensitive starts-with, ``:contains``, ``:exact``
(``:text`` is a full-text search: :mod:`app.search_types.text`).

A value is ``(normalized, exact)``: ``normalized`` is NFKD without combining marks, case-folded;
``exact`` the raw text. HumanName and Address give one value per part. Stored in
``sp_<type>_string (norm, exact)``, indexed on ``(param, norm text_pattern_ops)``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

from app.fhirspec.search_parameters import SearchParam
from app.search_types.nodes import normalize_string, texts_of
from app.search_types.protocol import Rows, SearchType, SideTable, SortColumns
from app.search_types.sql import Args, escape_like, like_prefix
from app.search_types.syntax import unescape


class StringValue(NamedTuple):
    normalized: str
    exact: str


_NAME_PARTS = ("text", "family", "given", "prefix", "suffix")
_ADDRESS_PARTS = ("text", "line", "city", "district", "state", "postalCode", "country")


def string_condition(value: str, modifier: str | None, args: Args, norm: str = "s.norm") -> str:
    """Starts-with on the folded text; ``:contains`` anywhere; ``:exact`` on the raw text."""
    text = unescape(value)
    if modifier == "exact":
        return f"s.exact = {args.add(text)}"
    folded = normalize_string(text)
    if modifier == "contains":
        return f"{norm} LIKE {args.add('%' + escape_like(folded) + '%')}"
    return f"{norm} LIKE {args.add(like_prefix(folded))}"


class StringType(SearchType):
    name = "string"
    value_class = StringValue
    tables = (
        SideTable("string", (("norm", "text"), ("exact", "text")), ("param, norm text_pattern_ops) INCLUDE (id",)),
    )
    modifiers = frozenset({"exact", "contains", "missing", "text"})  # :text: app/search_types/text.py
    sort_columns = SortColumns("norm", "norm", "text")

    def convert(self, typ: str | None, value: Any, root: dict) -> Iterator[StringValue]:
        if isinstance(value, str):
            if value:
                yield StringValue(normalize_string(value), value)
            return
        if not isinstance(value, dict):
            return
        if typ is None:
            typ = "HumanName" if ("family" in value or "given" in value) else "Address"
        parts = _NAME_PARTS if typ == "HumanName" else _ADDRESS_PARTS if typ == "Address" else ()
        for part in parts:
            for text in texts_of(value.get(part)):
                yield StringValue(normalize_string(text), text)

    def add_rows(self, code: str, values: list[StringValue], out: Rows) -> None:
        out["string"].extend((code, v.normalized, v.exact) for v in values)

    def component(self, value: StringValue) -> tuple:
        return (None, None, None, None, None, value.normalized)

    def condition(self, code: str, value: str, modifier: str | None, param: SearchParam, args: Args, base: str) -> str:
        return string_condition(value, modifier, args)


STRING = StringType()
