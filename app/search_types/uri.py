"""The ``uri`` search type: exact match, ``:below`` (starts with) and ``:above`` (a prefix of the
search value). Stored in ``sp_<type>_uri (uri)`` with the generated ``hash`` of (param, uri):
indexed on ``(hash, key)`` (exact) and ``(param, uri text_pattern_ops)`` (``:below``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

from app.fhirspec.search_parameters import SearchParam
from app.search_types.protocol import Rows, SearchType, SideTable, SortColumns, hash_condition
from app.search_types.sql import Args, like_prefix
from app.search_types.syntax import unescape


class UriValue(NamedTuple):
    uri: str


class UriType(SearchType):
    name = "uri"
    value_class = UriValue
    tables = (
        SideTable(
            "uri",
            (("uri", "text"),),
            (("hash", "(hash, key)"), ("prefix", "(param, uri text_pattern_ops)")),
            hash="uri",
        ),
    )
    modifiers = frozenset({"missing", "below", "above"})
    sort_columns = SortColumns("uri", "uri", "text")

    def convert(self, typ: str | None, value: Any, root: dict) -> Iterator[UriValue]:
        if isinstance(value, str) and value:
            yield UriValue(value)

    def add_rows(self, code: str, values: list[UriValue], out: Rows) -> None:
        out["uri"].extend((code, v.uri) for v in values)

    def condition(self, code: str, value: str, modifier: str | None, param: SearchParam, args: Args, base: str) -> str:
        text = unescape(value)
        if modifier == "below":
            return f"(s.param = {args.add(code)} AND s.uri LIKE {args.add(like_prefix(text))})"
        if modifier == "above":
            pattern = "(replace(replace(s.uri, '%', '\\%'), '_', '\\_') || '%')"
            return f"(s.param = {args.add(code)} AND {args.add(text)} LIKE {pattern})"
        return hash_condition(code, text, args)


URI = UriType()
