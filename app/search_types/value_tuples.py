"""Search values as plain tuples, from nodes whose FHIR type is known when the extractor is
compiled (:mod:`app.search_types.row_plan`): each converter adds the values of one node to a dict
(insertion-ordered, so it de-duplicates as :func:`dict.fromkeys` does).

A tuple equals (and hashes as) the value type's NamedTuple with the same fields (``TokenValue``,
``DateValue``...), so these are the values each type's ``convert`` gives, built without the
generic dispatch; :func:`converter` returns None for the (parameter type, node type) pairs it has
no converter for, and the caller then uses the type's own ``convert``."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from app.fhirpath.references import parse_reference, reference_target
from app.fhirspec.resource_types import resource_type_set
from app.native import references, tokens
from app.search_types.date import DATE_MAX, DATE_MIN, _range
from app.search_types.nodes import decimal_of, is_subtype, normalize_string
from app.search_types.protocol import system_hash
from app.search_types.quantity import ISO_4217
from app.search_types.text_document import MAX_CHARS

Converter = Callable[[Any, dict, dict], None]
"""(node, values, resource): add the node's values to ``values``."""

_DATE_TIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.([0-9]+))?(Z|[+-][0-9]{2}:[0-9]{2})?)?"
)
_DAY = timedelta(days=1)
_SECOND = timedelta(seconds=1)
_STEPS = [_SECOND] + [timedelta(microseconds=10 ** (6 - min(n, 6))) for n in range(1, 7)]


_RANGES: dict[str, tuple[datetime, datetime] | None] = {}
_RANGES_KEPT = 4096
"""The ranges of the texts parsed lately (emptied when full): a resource's dates repeat in the
resources of its encounter (an Observation's effective and issued are the encounter's start), so
two in three of a Synthea replay's date texts, and four in five of an ingest's, were parsed
already (3 us a parse). A range is a tuple of immutable datetimes: shared safely."""
_UNSEEN = object()  # None is a range remembered: a text that is no date


def date_range(text: str) -> tuple[datetime, datetime] | None:
    """:func:`app.fhirtime.parse_range` (None where it raises), by :meth:`datetime.fromisoformat`
    for a date and for a dateTime to the second or finer, the forms nearly every resource holds;
    remembered (:data:`_RANGES`)."""
    found = _RANGES.get(text, _UNSEEN)
    if found is not _UNSEEN:
        return found  # type: ignore[return-value]
    if len(_RANGES) >= _RANGES_KEPT:
        _RANGES.clear()
    found = _RANGES[text] = _parsed_range(text)
    return found


def _parsed_range(text: str) -> tuple[datetime, datetime] | None:
    m = _DATE_TIME.fullmatch(text)
    if m is None:
        return _range(text)
    try:
        low = datetime.fromisoformat(text)
    except ValueError:  # out of range (a 13th month, second 60): parse_range knows
        return _range(text)
    if low.tzinfo is None:
        low = low.replace(tzinfo=UTC)
    if m.group(1) is None:
        try:
            return low, low + _DAY
        except OverflowError:
            return low, DATE_MAX
    frac = m.group(2)
    step = _STEPS[min(len(frac), 6) if frac else 0]
    try:
        if low.tzinfo is UTC:
            return low, low + step
        return low.astimezone(UTC), (low + step).astimezone(UTC)  # as parse_range, in that order
    except OverflowError:
        return None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _texts(value: object) -> list[str]:
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str) and v]
    return []


def _dicts(value: object) -> list:
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, dict)]
    return []


# -- token: (system, code, text, of_type) ---------------------------------------------------------
def token_primitive(v: Any, d: dict, r: dict) -> None:
    if isinstance(v, bool):
        d[(None, "true" if v else "false", None, ())] = None
    elif isinstance(v, str) and v:
        d[(None, v, None, ())] = None


def _coding(c: dict, d: dict) -> None:
    system, code, display = c.get("system"), c.get("code"), c.get("display")
    system = system if isinstance(system, str) and system else None
    code = code if isinstance(code, str) and code else None
    display = normalize_string(display) if isinstance(display, str) and display else None
    if system is not None or code is not None or display is not None:
        d[(system, code, display, ())] = None


def python_token_coding(v: dict, d: dict, r: dict) -> None:
    """The converter of a Coding (the compiled one's reference, :mod:`app.native`)."""
    _coding(v, d)


def python_token_concept(v: dict, d: dict, r: dict) -> None:
    """The converter of a CodeableConcept (the compiled one's reference, :mod:`app.native`)."""
    codings = v.get("coding")
    if isinstance(codings, list):
        for c in codings:
            if isinstance(c, dict):  # _coding, inlined
                system, code, display = c.get("system"), c.get("code"), c.get("display")
                system = system if isinstance(system, str) and system else None
                code = code if isinstance(code, str) and code else None
                display = normalize_string(display) if isinstance(display, str) and display else None
                if system is not None or code is not None or display is not None:
                    d[(system, code, display, ())] = None
    elif isinstance(codings, dict):
        _coding(codings, d)
    text = v.get("text")
    if isinstance(text, str) and text:
        folded = normalize_string(text)
        if folded:
            d[(None, None, folded, ())] = None


if tokens is None:
    token_coding, token_concept = python_token_coding, python_token_concept
else:
    tokens.configure(normalize_string, system_hash, MAX_CHARS)
    token_coding, token_concept = tokens.token_coding, tokens.token_concept


def token_identifier(v: dict, d: dict, r: dict) -> None:
    kind = v.get("type") if isinstance(v.get("type"), dict) else {}
    of_type = tuple((_text(c.get("system")), _text(c.get("code"))) for c in _dicts(kind.get("coding")))
    system, code = _text(v.get("system")), _text(v.get("value"))
    if system or code or of_type:
        text = _text(kind.get("text"))
        d[(system, code, normalize_string(text) if text else None, of_type)] = None


def token_contact(v: dict, d: dict, r: dict) -> None:
    code = _text(v.get("value"))
    if code:
        d[(None, code, None, ())] = None


# -- string: (normalized, exact) ----------------------------------------------------------------
def string_primitive(v: Any, d: dict, r: dict) -> None:
    if isinstance(v, str) and v:
        d[(normalize_string(v), v)] = None


def _string_parts(parts: tuple[str, ...]) -> Converter:
    def convert(v: dict, d: dict, r: dict) -> None:
        get = v.get
        for part in parts:
            value = get(part)
            if value is None:
                continue
            if type(value) is str:  # the common case, without a list of one
                if value:
                    d[(normalize_string(value), value)] = None
                continue
            for text in _texts(value):
                d[(normalize_string(text), text)] = None

    return convert


# -- date: (low, high) --------------------------------------------------------------------------
def date_primitive(v: Any, d: dict, r: dict) -> None:
    if isinstance(v, str):
        found = date_range(v)
        if found is not None:
            d[found] = None


def _period(v: dict) -> tuple[datetime, datetime] | None:
    start, end = v.get("start"), v.get("end")
    if start is None and end is None:
        return None
    low = (date_range(start) if isinstance(start, str) else None) if start is not None else (DATE_MIN, DATE_MIN)
    high = (date_range(end) if isinstance(end, str) else None) if end is not None else (DATE_MAX, DATE_MAX)
    if low is None or high is None:
        return None
    return (low[0], high[1])


def date_period(v: dict, d: dict, r: dict) -> None:
    found = _period(v)
    if found is not None:
        d[found] = None


def date_timing(v: dict, d: dict, r: dict) -> None:
    events = [x for x in (date_range(e) for e in _texts(v.get("event"))) if x is not None]
    if events:
        d[(min(x[0] for x in events), max(x[1] for x in events))] = None
        return
    repeat = v.get("repeat")
    if isinstance(repeat, dict) and isinstance(repeat.get("boundsPeriod"), dict):
        date_period(repeat["boundsPeriod"], d, r)


# -- number: (value,); quantity: (value, system, code, unit) -------------------------------------
def number_primitive(v: Any, d: dict, r: dict) -> None:
    found = decimal_of(v)
    if found is not None:
        d[(found,)] = None


def number_range(v: dict, d: dict, r: dict) -> None:
    for end in ("low", "high"):
        bound = v.get(end)
        found = decimal_of(bound.get("value")) if isinstance(bound, dict) else None
        if found is not None:
            d[(found,)] = None


def _quantity(v: object, d: dict) -> None:
    if isinstance(v, dict):
        value = v.get("value")
        found = _decimal(value) if type(value) is float else decimal_of(value)
        if found is not None:
            d[(found, _text(v.get("system")), _text(v.get("code")), _text(v.get("unit")))] = None


def _decimal(value: float) -> Decimal | None:
    """:func:`decimal_of` of a float."""
    found = Decimal(repr(value))
    return found if found.is_finite() else None


def quantity_quantity(v: dict, d: dict, r: dict) -> None:
    _quantity(v, d)


def quantity_range(v: dict, d: dict, r: dict) -> None:
    _quantity(v.get("low"), d)
    _quantity(v.get("high"), d)


def quantity_sampled(v: dict, d: dict, r: dict) -> None:
    _quantity(v.get("origin"), d)


def quantity_money(v: dict, d: dict, r: dict) -> None:
    found, currency = decimal_of(v.get("value")), _text(v.get("currency"))
    if found is not None:
        d[(found, ISO_4217 if currency else None, currency, None)] = None


# -- reference: (type, id, reference, version, identifier system, identifier value) ----------------
def reference_primitive(v: Any, d: dict, r: dict) -> None:
    if isinstance(v, str) and v:
        parsed = parse_reference(v, r)
        d[(parsed.type, parsed.id, v.partition("|")[0], parsed.version, None, None)] = None


def python_reference_object(v: dict, d: dict, r: dict) -> None:
    """The converter of a Reference object (in C where built: :data:`reference_object`)."""
    if "resourceType" in v:  # a resource, e.g. Bundle.entry[0].resource
        kind, rid = _text(v.get("resourceType")), _text(v.get("id"))
        if kind:
            d[(kind, rid, f"{kind}/{rid}" if rid else None, None, None, None)] = None
        return
    ref = v.get("reference")
    if type(ref) is str and ref and "identifier" not in v and "type" not in v:  # display, extensions: no row part
        if "/" not in ref and ref[0] != "#":  # a URN
            d[(None, None, ref, ref.partition("|")[2] or None, None, None)] = None
            return
        parsed = parse_reference(ref, r)
        d[(parsed.type, parsed.id, ref, parsed.version, None, None)] = None
        return
    ref = _text(ref)
    identifier = v.get("identifier") if isinstance(v.get("identifier"), dict) else {}
    id_system, id_value = _text(identifier.get("system")), _text(identifier.get("value"))
    if ref is not None and "/" not in ref and ref[0] != "#":  # a URN, or no type/id to read
        declared = v.get("type")
        kind = declared if isinstance(declared, str) and declared in resource_type_set() else None
        d[(kind, None, ref, ref.partition("|")[2] or None, id_system, id_value)] = None
        return
    parsed = reference_target(v, r)
    if parsed is None or (ref is None and id_value is None and parsed.type is None):
        return
    d[(parsed.type, parsed.id, ref, parsed.version, id_system, id_value)] = None


if references is None:
    reference_object = python_reference_object
else:  # the common case, Type/id, in C; the rest by the Python converter
    references.configure(resource_type_set, python_reference_object)
    reference_object = references.reference_object


def uri_primitive(v: Any, d: dict, r: dict) -> None:
    if isinstance(v, str) and v:
        d[(v,)] = None


_OBJECT: dict[tuple[str, str], Converter] = {
    ("token", "Coding"): token_coding,
    ("token", "CodeableConcept"): token_concept,
    ("token", "Identifier"): token_identifier,
    ("token", "ContactPoint"): token_contact,
    ("string", "HumanName"): _string_parts(("text", "family", "given", "prefix", "suffix")),
    ("string", "Address"): _string_parts(("text", "line", "city", "district", "state", "postalCode", "country")),
    ("date", "Period"): date_period,
    ("date", "Timing"): date_timing,
    ("quantity", "Money"): quantity_money,
    ("quantity", "Range"): quantity_range,
    ("quantity", "SampledData"): quantity_sampled,
    ("reference", "Reference"): reference_object,
}
_PRIMITIVE: dict[str, Converter] = {
    "token": token_primitive,
    "string": string_primitive,
    "date": date_primitive,
    "number": number_primitive,
    "reference": reference_primitive,
    "uri": uri_primitive,
}


def converter(param_type: str, node_type: str, primitive: bool) -> Converter | None:
    """The converter of nodes of ``node_type`` for a parameter of ``param_type`` (a primitive
    node: its JSON value; else an object), or None where the type's own ``convert`` must run."""
    if primitive:
        return _PRIMITIVE.get(param_type)
    found = _OBJECT.get((param_type, node_type))
    if found is None and param_type == "quantity" and is_subtype(node_type, "Quantity"):
        return quantity_quantity
    if found is None and param_type == "number":
        return number_range
    return found
