"""FHIR R4 primitive types: JSON representation and lexical format.

The regular expressions are read from ``profiles-types.json`` (the ``regex`` extension on each
primitive's ``value`` element), see https://hl7.org/fhir/R4/datatypes.html#primitive and
https://hl7.org/fhir/R4/json.html#primitive. ``check`` returns ``None`` for a good value or a
sentence saying what is wrong; ``json_problem`` finds the JSON-level problems (a value of the
wrong JSON type, a forbidden control character) that are reported before the lexical checks.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from typing import cast

from app.fhirspec.loader import load_json

REGEX_URL = "http://hl7.org/fhir/StructureDefinition/regex"

PRIMITIVE_TYPES = frozenset(
    {
        "base64Binary",
        "boolean",
        "canonical",
        "code",
        "date",
        "dateTime",
        "decimal",
        "id",
        "instant",
        "integer",
        "markdown",
        "oid",
        "positiveInt",
        "string",
        "time",
        "unsignedInt",
        "uri",
        "url",
        "uuid",
        "xhtml",
    }
)

INTEGER_RANGES: dict[str, tuple[int, int]] = {
    "integer": (-2147483648, 2147483647),
    "unsignedInt": (0, 2147483647),
    "positiveInt": (1, 2147483647),
}
MAX_STRING_LENGTH = 1048576

# How each lexical form is described to a person when it is not matched.
FORMAT_HINTS = {
    "date": "YYYY, YYYY-MM or YYYY-MM-DD",
    "dateTime": "YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm:ss[.fff]+zz:zz",
    "instant": "YYYY-MM-DDThh:mm:ss[.fff]+zz:zz (with a time zone)",
    "time": "hh:mm:ss[.fff]",
    "id": "1 to 64 characters of A-Z, a-z, 0-9, '-' and '.'",
    "oid": "urn:oid: followed by dotted digits",
    "uuid": "urn:uuid: followed by a lowercase UUID",
    "code": "no leading, trailing or double whitespace",
    "uri": "no whitespace",
    "url": "no whitespace",
    "canonical": "no whitespace",
    "base64Binary": "base64 characters in groups of 4",
    "string": "at least one character",
    "markdown": "at least one character",
}


@lru_cache(maxsize=1)
def regexes() -> dict[str, re.Pattern[str]]:
    """Compiled full-match regex per primitive type, from the R4 type definitions."""
    out: dict[str, re.Pattern[str]] = {}
    for entry in load_json("profiles-types.json")["entry"]:
        sd = entry["resource"]
        if sd.get("kind") != "primitive-type":
            continue
        for element in sd["snapshot"]["element"]:
            if element["path"] != f"{sd['type']}.value":
                continue
            for type_ in element.get("type", []):
                for ext in type_.get("extension", []):
                    if ext.get("url") == REGEX_URL:
                        out[sd["type"]] = re.compile(ext["valueString"])
    return out


def _describe(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"'{value[:80]}'" if len(value) <= 80 else f"'{value[:77]}...'"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    return type(value).__name__


def _regex_check(type_code: str, value: str) -> str | None:
    if value == "":
        return "an empty string is not allowed (omit the element instead)"
    pattern = regexes().get(type_code)
    if pattern is not None and pattern.fullmatch(value) is None:
        hint = FORMAT_HINTS.get(type_code)
        expected = f" (expected {hint})" if hint else ""
        return f"{_describe(value)} is not a valid {type_code}{expected}"
    return None


def _check_string_like(type_code: str) -> Callable[[object], str | None]:
    def check(value: object) -> str | None:
        text = cast(str, value)
        if len(text) > MAX_STRING_LENGTH:
            return f"a {type_code} may hold at most {MAX_STRING_LENGTH} characters"
        return _regex_check(type_code, text)

    return check


def _check_integer(type_code: str) -> Callable[[object], str | None]:
    low, high = INTEGER_RANGES[type_code]

    def check(value: object) -> str | None:
        if not isinstance(value, int):
            return f"{_describe(value)} is not a valid {type_code}: expected a whole number"
        if not low <= value <= high:
            return f"{value} is out of range for {type_code} (expected {low} to {high})"
        return None

    return check


def _check_decimal(value: object) -> str | None:
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return f"{value} is not a valid decimal: expected a finite number"
    return None


def _check_xhtml(value: object) -> str | None:
    text = cast(str, value)
    if not text.lstrip().startswith("<div") or not text.rstrip().endswith("</div>"):
        return "narrative xhtml must be a single <div> element (<div xmlns=...>...</div>)"
    return None


@lru_cache(maxsize=1)
def checkers() -> dict[str, Callable[[object], str | None]]:
    """One value checker per primitive type code, for a value of the right JSON type (see
    ``json_problem``): lexical form, range, length."""
    table: dict[str, Callable[[object], str | None]] = {
        "boolean": lambda _: None,
        "decimal": _check_decimal,
        "xhtml": _check_xhtml,
    }
    for code in INTEGER_RANGES:
        table[code] = _check_integer(code)
    for code in PRIMITIVE_TYPES - table.keys():
        table[code] = _check_string_like(code)
    return table


_NUMBERS = frozenset({"decimal", *INTEGER_RANGES})
# The C0 controls but tab, line feed and carriage return: R4 strings may not hold characters
# below U+0020 other than those three (https://hl7.org/fhir/R4/datatypes.html#string).
CONTROL_CHARACTER = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")


def control_problem(value: str) -> str | None:
    """Why a JSON string cannot be an R4 string value (a forbidden control character), or None."""
    found = CONTROL_CHARACTER.search(value)
    if found is None:
        return None
    return (
        f"contains the control character U+{ord(found.group()):04X} at position {found.start()}; "
        "FHIR strings may not hold characters below U+0020 other than tab, line feed and carriage return"
    )


def json_problem(type_code: str, value: object) -> str | None:
    """A JSON-level problem with a primitive's value: the wrong JSON type for ``type_code``, or
    a forbidden control character in a string. ``None`` when the value can be read."""
    if type_code == "boolean":
        if isinstance(value, bool):
            return None
        return f"{_describe(value)} is not a valid boolean: expected JSON true or false"
    if type_code in _NUMBERS:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return None
        return f"{_describe(value)} is not a valid {type_code}: expected a JSON number"
    if not isinstance(value, str):
        return f"{_describe(value)} is not a valid {type_code}: expected a JSON string"
    return control_problem(value)


def describe(value: object) -> str:
    return _describe(value)


_REMEMBERED_VALUES = 20000  # per type
_REMEMBERED_LENGTH = 200


def _fast_string(type_code: str) -> Callable[[object], bool]:
    """One regular expression for everything a string-like value is checked for: no forbidden
    control character, not empty, the type's lexical form (the length is compared apart)."""
    form = regexes().get(type_code)
    pattern = re.compile(
        r"(?=[^\x00-\x08\x0b\x0c\x0e-\x1f]*\Z)(?=[\s\S])" + (f"(?:{form.pattern})" if form else r"[\s\S]*")
    )
    match = pattern.fullmatch
    good: set[str] = set()  # values already found good (codes, systems, displays repeat a lot)

    def ok(value: object) -> bool:
        if type(value) is not str:
            return False
        if value in good:
            return True
        if len(value) > MAX_STRING_LENGTH or match(value) is None:
            return False
        if len(value) <= _REMEMBERED_LENGTH:
            if len(good) >= _REMEMBERED_VALUES:
                good.clear()
            good.add(value)
        return True

    return ok


def _fast_integer(type_code: str) -> Callable[[object], bool]:
    low, high = INTEGER_RANGES[type_code]
    return lambda value: type(value) is int and low <= value <= high  # type: ignore[operator]


def _fast_decimal(value: object) -> bool:
    kind = type(value)
    return kind is int or (kind is float and value - value == 0)  # type: ignore[operator]  # finite


def _fast_xhtml(value: object) -> bool:
    return type(value) is str and CONTROL_CHARACTER.search(value) is None and _check_xhtml(value) is None


@lru_cache(maxsize=1)
def fast_checks() -> dict[str, Callable[[object], bool]]:
    """Per primitive type code, a test that is True only when a value has no problem at all
    (neither :func:`json_problem` nor the type's checker finds one): the walker's fast path. A
    False sends the value through those two, which say what is wrong."""
    table: dict[str, Callable[[object], bool]] = {
        "boolean": lambda value: type(value) is bool,
        "decimal": _fast_decimal,
        "xhtml": _fast_xhtml,
    }
    for code in INTEGER_RANGES:
        table[code] = _fast_integer(code)
    for code in PRIMITIVE_TYPES - table.keys():
        table[code] = _fast_string(code)
    return table
