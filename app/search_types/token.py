"""The ``token`` search type: ``[system]|[code]``, ``:not``, ``:text`` and ``:of-type``.

A value is ``(system, code, text, of_type)``; ``text`` is folded like a string (the full-text
search of ``:text``, :mod:`app.search_types.text`, indexes it),
``of_type`` holds an Identifier's type codings (for ``:of-type``). Per the R4 token table: Coding
(system, code, display); CodeableConcept (each coding, plus one value with only the text);
Identifier (system, value, type.text); ContactPoint (no system, value); boolean ("true"/"false"),
code, uri, id, string (no system, the value). Stored in ``sp_<type>_token (system_hash, code,
of_type)`` (the text only in the full-text table), one row per type coding, with the generated
``hash`` of (param, code), indexed on ``(hash, key) INCLUDE (system_hash)``: a code search is one
index range in key order, a ``system|code`` search the same range tested on the index's 8-byte
:func:`~app.search_types.protocol.system_hash`, and the hash's statistics count each
parameter's codes apart. The system's text (16-41 bytes in nearly every row:
``http://loinc.org``, ``https://github.com/synthetichealth/synthea``) is not stored: nothing but a
search for it reads it, and a 64-bit hash equality is accepted for the code already.
``[system]|`` alone (no code) tests ``param`` and the system's hash."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

from app.errors import invalid
from app.fhirspec.search_parameters import SearchParam
from app.search_types.nodes import dicts_of, folded_text, text_of
from app.search_types.protocol import Rows, SearchType, SideTable, SortColumns, hash_condition, system_hash
from app.search_types.sql import Args
from app.search_types.syntax import split_pipe, unescape


class TokenValue(NamedTuple):
    system: str | None
    code: str | None
    text: str | None = None
    of_type: tuple[tuple[str | None, str | None], ...] = ()


_CONTACT_SYSTEMS = frozenset({"phone", "fax", "email", "pager", "url", "sms", "other"})


def _guess_type(value: dict) -> str:
    """For fallback results, which carry no type: tell the token data types apart by shape."""
    if "coding" in value or "text" in value:
        return "CodeableConcept"
    if "code" in value or "display" in value:
        return "Coding"
    if "use" in value and "system" not in value or value.get("system") in _CONTACT_SYSTEMS or "rank" in value:
        return "ContactPoint"
    return "Identifier"


def _coding(value: dict) -> TokenValue | None:
    system, code, display = text_of(value.get("system")), text_of(value.get("code")), folded_text(value.get("display"))
    if system is None and code is None and display is None:
        return None
    return TokenValue(system, code, display)


def _object_values(typ: str, value: dict) -> Iterator[TokenValue]:
    if typ == "Coding":
        coding = _coding(value)
        if coding is not None:
            yield coding
    elif typ == "CodeableConcept":
        for c in dicts_of(value.get("coding")):
            coding = _coding(c)
            if coding is not None:
                yield coding
        text = folded_text(value.get("text"))
        if text:
            yield TokenValue(None, None, text)
    elif typ == "Identifier":
        kind = value.get("type") if isinstance(value.get("type"), dict) else {}
        of_type = tuple((text_of(c.get("system")), text_of(c.get("code"))) for c in dicts_of(kind.get("coding")))
        system, code = text_of(value.get("system")), text_of(value.get("value"))
        if system or code or of_type:
            yield TokenValue(system, code, folded_text(kind.get("text")), of_type)
    elif typ == "ContactPoint":
        code = text_of(value.get("value"))
        if code:
            yield TokenValue(None, code)


def token_condition(
    code: str,
    value: str,
    modifier: str | None,
    args: Args,
    cols: tuple[str, str],
    hashed: str | None = "s.hash",
    hashed_system: bool = False,
) -> str:
    """``[code]``, ``|[code]`` (no system), ``[system]|``, ``[system]|[code]``; ``:of-type`` on an
    Identifier's type and value (``:text`` is a full-text search: :mod:`app.search_types.text`).
    ``cols``: the (system, code) columns; ``hashed``: the hash column of (param, code) (the parameter is tested
    with it; where a value has no code, with ``s.param``), or None for a composite's later
    component, whose parameter its first component tests; ``hashed_system``: the system column
    holds the :func:`~app.search_types.protocol.system_hash` (NULL where there is no system), not the text."""
    system_col, code_col = cols

    def system_is(system: str | None) -> str:
        if system is None:
            return f"{system_col} IS NULL"
        if hashed_system:
            return f"{system_col} = {args.add(system_hash(system), 'bigint')}"
        return f"{system_col} = {args.add(system)}"

    def match(token: str) -> str:
        if hashed is None:
            return f"{code_col} = {args.add(token)}"
        return hash_condition(code, token, args, hashed)

    def of_param(cond: str) -> str:
        return cond if hashed is None else f"(s.param = {args.add(code)} AND {cond})"

    if modifier == "of-type":
        parts = split_pipe(value, 3)
        if len(parts) != 3 or not parts[1] or not parts[2]:
            raise invalid(f"{code}:of-type='{value[:60]}' must be [type-system]|[type-code]|[value]")
        return f"({match(parts[2])} AND s.of_type = {args.add(parts[0] + '|' + parts[1])})"
    if "|" not in value.replace("\\|", ""):
        return match(unescape(value))
    system, token = split_pipe(value, 2)
    if token == "":
        return of_param(system_is(system))
    return f"({match(token)} AND {system_is(system or None)})"


class TokenType(SearchType):
    name = "token"
    value_class = TokenValue
    tables = (
        SideTable(
            "token",
            (("system_hash", "bigint"), ("code", "text"), ("of_type", "text")),
            (("hashes", "(hash, key) INCLUDE (system_hash)"),),
            hash="code",
            depends=("system_hash",),
        ),
    )
    modifiers = frozenset({"missing", "not", "text", "of-type"})
    sort_columns = SortColumns("code", "code", "text")

    def convert(self, typ: str | None, value: Any, root: dict) -> Iterator[TokenValue]:
        if isinstance(value, bool):
            yield TokenValue(None, "true" if value else "false")
        elif isinstance(value, str):
            if value:
                yield TokenValue(None, value)
        elif isinstance(value, dict):
            yield from _object_values(typ or _guess_type(value), value)

    def add_rows(self, code: str, values: list[TokenValue], out: Rows) -> None:
        """One row per value and type coding; a value with only a text (searched in the full-text
        table) leaves an empty row only when the parameter has no other, so ``:missing`` sees it."""
        rows = out["token"]
        start = len(rows)
        for v in values:
            types = [f"{s or ''}|{c or ''}" for s, c in v.of_type] or [None]
            for of_type in types:
                if v.system is not None or v.code is not None or of_type is not None:
                    rows.append((code, system_hash(v.system), v.code, of_type))
        if len(rows) == start and values:
            rows.append((code, None, None, None))

    def component(self, value: TokenValue) -> tuple:
        return (value.system, value.code, None, None, None, None)

    def condition(self, code: str, value: str, modifier: str | None, param: SearchParam, args: Args, base: str) -> str:
        return token_condition(code, value, modifier, args, ("s.system_hash", "s.code"), hashed_system=True)


TOKEN = TokenType()
