"""The ``string`` search type: case- and accent-insensitive starts-with, ``:contains``, ``:exact``
(``:text`` is a full-text search of the same rows: :mod:`app.search_types.string_text`).

A value is ``(normalized, exact)``: ``normalized`` is NFKD without combining marks, case-folded;
``exact`` the raw text. HumanName and Address give one value per part. Stored in
``sp_<type>_string (norm, exact)`` with the generated ``hash`` of (param, the first character of
``norm``), as HAPI's hash of the normalised prefix: indexed on ``(hash, norm text_pattern_ops)``,
so a starts-with search is one index range and the hash's statistics are the parameter's own."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

from app.fhirspec.search_parameters import SearchParam
from app.search_types.nodes import normalize_string, texts_of
from app.search_types.protocol import Rows, SearchType, SideTable, SortColumns, hash_condition
from app.search_types.sql import Args, escape_like, like_prefix
from app.search_types.string_text import WORDS_INDEX, words_index_body
from app.search_types.syntax import unescape


class StringValue(NamedTuple):
    normalized: str
    exact: str


_NAME_PARTS = ("text", "family", "given", "prefix", "suffix")
_ADDRESS_PARTS = ("text", "line", "city", "district", "state", "postalCode", "country")


def string_condition(code: str, value: str, modifier: str | None, args: Args) -> str:
    """Starts-with on the folded text; ``:contains`` anywhere; ``:exact`` on the raw text; each
    with the hash of the parameter and the folded text's first character where it has one."""
    text = unescape(value)
    folded = normalize_string(text)
    if modifier == "contains" or not folded:
        of_param = f"s.param = {args.add(code)}"
        if modifier == "exact":
            return f"({of_param} AND s.exact = {args.add(text)})"
        return f"({of_param} AND s.norm LIKE {args.add('%' + escape_like(folded) + '%')})"
    prefix = hash_condition(code, folded[:1], args)
    if modifier == "exact":
        return f"({prefix} AND s.exact = {args.add(text)})"
    return f"({prefix} AND s.norm LIKE {args.add(like_prefix(folded))})"


class StringTable(SideTable):
    """The string table, with the index of its values' words for ``:text``
    (:mod:`app.search_types.string_text`), defined when the DDL is made (it holds the configured
    text-search configuration)."""

    def index_names(self, table: str) -> list[str]:
        return [*super().index_names(table), f"{table}_{WORDS_INDEX}"]

    def lookup_ddl(self, table: str) -> list[str]:
        words = f"CREATE INDEX IF NOT EXISTS {table}_{WORDS_INDEX} ON {table} {words_index_body()};"
        return [*super().lookup_ddl(table), words]


class StringType(SearchType):
    name = "string"
    value_class = StringValue
    tables = (
        StringTable(
            "string",
            (("norm", "text"), ("exact", "text")),
            (("hash_norm", "(hash, norm text_pattern_ops) INCLUDE (key)"),),
            hash="left(norm, 1)",
        ),
    )
    modifiers = frozenset({"exact", "contains", "missing", "text"})  # :text: app/search_types/string_text.py
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
        return string_condition(code, value, modifier, args)


STRING = StringType()
