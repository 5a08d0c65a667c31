"""Reading a JSON request body: the syntax (orjson), then what orjson accepts silently but FHIR
JSON forbids (https://hl7.org/fhir/R4/json.html, https://hl7.org/fhir/R4/datatypes.html#string):
a key repeated in one object (orjson keeps the last value), and a string holding a control
character below U+0020 other than tab, line feed and carriage return (``\\u0000`` would also be
refused by PostgreSQL). Each problem is an issue with code ``structure`` and the FHIRPath-like
location of the key or string (``Bundle.entry[0].resource.name[0].family``).

Both checks cost little on ordinary bodies: duplicates are looked for (with the slower ``json``
parser) only when the text holds more colons than orjson's rendering of what it kept (every key
has one, and a dropped key takes its colon and its value's with it; a 1.2 MB Synthea Bundle costs
two single-byte counts and a render, about 2 ms), control characters only when the text holds a
``\\u000x``/``\\u001x`` escape (a raw control character is a syntax error already).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator

import orjson

from app.errors import FhirError, Issue, invalid
from app.native import bodywalk
from app.validation.primitives import control_problem

MAX_ISSUES = 100


class _Object(dict):
    """A JSON object from the slow parser, with the keys that appeared more than once."""

    repeated: dict[str, int]


def read_json(raw: bytes, control_characters: bool = True) -> tuple[object, list[Issue]]:
    """The parsed body and its JSON-level issues (empty when it is clean FHIR JSON).
    Raises 400 when the body is empty or not JSON at all. ``control_characters=False`` leaves
    the strings to the validator (``$validate``, which reports them at the resource's paths)."""
    if not raw.strip():
        raise invalid("The request body is empty; send a FHIR resource as JSON")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise invalid(f"The request body is not valid JSON: {exc}") from None
    issues: list[Issue] = []
    escaped = b"\\u00" in raw  # one scan for the rare escapes both checks look for
    if _may_repeat_keys(raw, body, escaped):
        issues += _repeated_keys(json.loads(raw, object_pairs_hook=_object))
    if control_characters and escaped and (b"\\u000" in raw or b"\\u001" in raw):
        issues += _control_characters(body)
    if len(issues) > MAX_ISSUES:
        more = len(issues) - MAX_ISSUES
        issues = [*issues[:MAX_ISSUES], Issue("error", "structure", f"... and {more} more problems of the same kinds")]
    return body, issues


def parse_json_body(raw: bytes) -> object:
    """The parsed body; 400 with every JSON-level issue when it is not clean FHIR JSON."""
    body, issues = read_json(raw)
    if issues:
        raise FhirError(
            400,
            "structure",
            f"The request body is not FHIR JSON: {len(issues)} problem(s); see the issues for each location",
            issues=issues,
        )
    return body


def _may_repeat_keys(raw: bytes, body: object, escaped: bool = True) -> bool:
    """False only when the text cannot hold a repeated key: it has as many colons as orjson's
    rendering of what it kept. Every key is followed by one, a string's colons are the same in
    both (orjson writes a colon as itself: one escaped as ``\\u003a`` counts as a colon of the
    text; ``escaped``: the text may hold ``\\u00``), and a repeated key orjson dropped takes at
    least its own colon with it. White space around a colon changes nothing."""
    colons = raw.count(b":")
    if escaped:
        colons += raw.count(b"\\u003a") + raw.count(b"\\u003A")  # at worst too many: then we look
    return colons != (python_colons(body) if bodywalk is None else bodywalk.colons(body))


def python_colons(body: object) -> int:
    """The colons of orjson's rendering of ``body`` (the compiled count's reference, in
    :mod:`app.native`: it counts them without rendering)."""
    return orjson.dumps(body).count(b":")


def _object(pairs: list[tuple[str, object]]) -> _Object:
    out = _Object(pairs)
    out.repeated = {}
    if len(out) != len(pairs):
        out.repeated = {k: n for k, n in Counter(k for k, _ in pairs).items() if n > 1}
    return out


def _root(body: object) -> str:
    if isinstance(body, dict) and isinstance(body.get("resourceType"), str):
        return body["resourceType"]
    return "$this"


def _walk(value: object, path: str) -> Iterator[tuple[str, object]]:
    """Every (location, value) below ``value``, objects and arrays included."""
    yield path, value
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(item, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _walk(item, f"{path}[{i}]")


def _repeated_keys(body: object) -> list[Issue]:
    issues = []
    for path, value in _walk(body, _root(body)):
        for key, count in getattr(value, "repeated", {}).items():
            at = f"{path}.{key}"
            message = f"{at}: the key '{key}' appears {count} times in one JSON object; a key may appear only once"
            issues.append(Issue("error", "structure", message, (at,)))
    return issues


def _control_characters(body: object) -> list[Issue]:
    issues = []
    for path, value in _walk(body, _root(body)):
        if isinstance(value, dict):
            for key in value:
                problem = control_problem(key)
                if problem is not None:
                    at = f"{path}.{key!r}"
                    issues.append(Issue("error", "structure", f"{at}: the key {problem}", (at,)))
        elif isinstance(value, str):
            problem = control_problem(value)
            if problem is not None:
                issues.append(Issue("error", "structure", f"{path}: the string {problem}", (path,)))
    return issues
