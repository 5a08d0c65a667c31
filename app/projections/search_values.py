"""Typed search-index values of a resource, one list per search parameter
(https://hl7.org/fhir/R4/search.html), ready to be stored in search columns or side tables.

``extract_values(resource, param)`` evaluates the parameter's expression for the resource's type
(compiled by :mod:`app.fhirpath`) and turns each node into values of the parameter's type:

- string -> :class:`StringValue` ``(normalized, exact)``: ``normalized`` is NFKD without combining
  marks, case-folded (for case- and accent-insensitive starts-with / contains); ``exact`` is the raw
  text (for ``:exact``). HumanName and Address give one value per part.
- token -> :class:`TokenValue` ``(system, code, text, of_type)``; ``text`` is normalized like a string
  (for ``:text``), ``of_type`` holds an Identifier's type codings (for ``:of-type``). Per the R4 token
  table: Coding (system, code, display); CodeableConcept (each coding, plus one value with only the
  text); Identifier (system, value, type.text); ContactPoint (no system, value); boolean
  ("true"/"false"), code, uri, id, string (no system, the value).
- date -> :class:`DateValue` ``(low, high)``: the half-open UTC range the value denotes; a Period
  without start/end is open on that side (:data:`DATE_MIN` / :data:`DATE_MAX`); a Timing spans its
  events, else its ``repeat.boundsPeriod``; strings that parse as dates count.
- number -> :class:`NumberValue` (Decimal); a Range gives its low and high values.
- quantity -> :class:`QuantityValue` ``(value, system, code, unit)`` from Quantity and its profiles
  (Age, Duration, Count, Distance, SimpleQuantity), Money (system ``urn:iso:std:iso:4217``, currency
  as code), Range (low and high as two values) and SampledData (its origin).
- reference -> :class:`ReferenceValue` ``(type, id, reference, version, identifier_system,
  identifier_value)`` from Reference (string parsed as relative, absolute, contained ``#id`` or
  URN; ``Reference.type`` when the string has no type; ``Reference.identifier`` for
  ``:identifier``), canonical/uri strings (``url|version``) and resources (``Bundle.entry[0].resource``).
- uri -> :class:`UriValue`.
- composite -> :class:`CompositeValue`: for each node of the composite's expression, every
  combination of its components' values (each component expression evaluated on that node).
- special -> ``[]`` (``Location.near`` needs geographic search; nothing to index here).

Values are de-duplicated per parameter. Malformed nodes (wrong JSON type, unparseable date) are
skipped; nothing raises on valid FHIR.
"""

from __future__ import annotations

import itertools
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any, NamedTuple

from app.fhirpath import Extractor, compile_expression
from app.fhirpath.compiler import first_keys
from app.fhirpath.model import type_model
from app.fhirpath.references import parse_reference, reference_target
from app.fhirspec.search_parameters import SearchParam, all_params, params_for
from app.fhirtime import FhirDateError, parse_range

DATE_MIN = datetime.min.replace(tzinfo=UTC)
DATE_MAX = datetime.max.replace(tzinfo=UTC)
ISO_4217 = "urn:iso:std:iso:4217"


class StringValue(NamedTuple):
    normalized: str
    exact: str


class TokenValue(NamedTuple):
    system: str | None
    code: str | None
    text: str | None = None
    of_type: tuple[tuple[str | None, str | None], ...] = ()


class DateValue(NamedTuple):
    low: datetime
    high: datetime


class NumberValue(NamedTuple):
    value: Decimal


class QuantityValue(NamedTuple):
    value: Decimal
    system: str | None
    code: str | None
    unit: str | None


class ReferenceValue(NamedTuple):
    type: str | None
    id: str | None
    reference: str | None
    version: str | None = None
    identifier_system: str | None = None
    identifier_value: str | None = None


class UriValue(NamedTuple):
    uri: str


class CompositeValue(NamedTuple):
    components: tuple[Any, ...]


SearchValue = (
    StringValue | TokenValue | DateValue | NumberValue | QuantityValue | ReferenceValue | UriValue | CompositeValue
)
Converter = Callable[[str | None, Any, dict], Iterable[Any]]


@lru_cache(maxsize=65536)
def normalize_string(text: str) -> str:
    """Case- and accent-insensitive form for string matching: NFKD, no combining marks, casefold."""
    if text.isascii():
        return text.lower()  # the same result, much faster
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def _is(typ: str | None, ancestor: str) -> bool:
    return typ is not None and type_model().is_subtype(typ, ancestor)


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _strs(value: object) -> list[str]:
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str) and v]
    return []


def _dicts(value: object) -> list[dict]:
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, dict)]
    return []


def _decimal(value: object) -> Decimal | None:
    if isinstance(value, bool):
        return None
    try:
        if isinstance(value, int | Decimal):
            result = Decimal(value)
        elif isinstance(value, float):
            result = Decimal(repr(value))
        else:
            return None
    except (InvalidOperation, ValueError):
        return None
    return result if result.is_finite() else None


# -- string ------------------------------------------------------------------------------------
_NAME_PARTS = ("text", "family", "given", "prefix", "suffix")
_ADDRESS_PARTS = ("text", "line", "city", "district", "state", "postalCode", "country")


def _string(typ: str | None, value: Any, root: dict) -> Iterator[StringValue]:
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
        for text in _strs(value.get(part)):
            yield StringValue(normalize_string(text), text)


# -- token -------------------------------------------------------------------------------------
def _norm_text(value: object) -> str | None:
    text = _str(value)
    return normalize_string(text) if text else None


def _coding(value: dict) -> TokenValue | None:
    system, code, display = _str(value.get("system")), _str(value.get("code")), _norm_text(value.get("display"))
    if system is None and code is None and display is None:
        return None
    return TokenValue(system, code, display)


def _token(typ: str | None, value: Any, root: dict) -> Iterator[TokenValue]:
    if isinstance(value, bool):
        yield TokenValue(None, "true" if value else "false")
        return
    if isinstance(value, str):
        if value:
            yield TokenValue(None, value)
        return
    if not isinstance(value, dict):
        return
    if typ is None:
        typ = _guess_token_type(value)
    if typ == "Coding":
        coding = _coding(value)
        if coding is not None:
            yield coding
    elif typ == "CodeableConcept":
        for c in _dicts(value.get("coding")):
            coding = _coding(c)
            if coding is not None:
                yield coding
        text = _norm_text(value.get("text"))
        if text:
            yield TokenValue(None, None, text)
    elif typ == "Identifier":
        kind = value.get("type") if isinstance(value.get("type"), dict) else {}
        of_type = tuple((_str(c.get("system")), _str(c.get("code"))) for c in _dicts(kind.get("coding")))
        system, code = _str(value.get("system")), _str(value.get("value"))
        if system or code or of_type:
            yield TokenValue(system, code, _norm_text(kind.get("text")), of_type)
    elif typ == "ContactPoint":
        code = _str(value.get("value"))
        if code:
            yield TokenValue(None, code)


_CONTACT_SYSTEMS = frozenset({"phone", "fax", "email", "pager", "url", "sms", "other"})


def _guess_token_type(value: dict) -> str:
    """For fallback results, which carry no type: tell the token data types apart by shape."""
    if "coding" in value or "text" in value:
        return "CodeableConcept"
    if "code" in value or "display" in value:
        return "Coding"
    if "use" in value and "system" not in value or value.get("system") in _CONTACT_SYSTEMS or "rank" in value:
        return "ContactPoint"
    return "Identifier"


# -- date --------------------------------------------------------------------------------------
def _range(text: object) -> tuple[datetime, datetime] | None:
    if not isinstance(text, str):
        return None
    try:
        return parse_range(text)
    except FhirDateError:
        return None


def _period(value: dict) -> DateValue | None:
    start, end = value.get("start"), value.get("end")
    if start is None and end is None:
        return None
    low = _range(start) if start is not None else (DATE_MIN, DATE_MIN)
    high = _range(end) if end is not None else (DATE_MAX, DATE_MAX)
    if low is None or high is None:
        return None
    return DateValue(low[0], high[1])


def _timing(value: dict) -> DateValue | None:
    events = [r for r in (_range(e) for e in _strs(value.get("event"))) if r is not None]
    if events:
        return DateValue(min(r[0] for r in events), max(r[1] for r in events))
    repeat = value.get("repeat")
    if isinstance(repeat, dict) and isinstance(repeat.get("boundsPeriod"), dict):
        return _period(repeat["boundsPeriod"])
    return None


def _date(typ: str | None, value: Any, root: dict) -> Iterator[DateValue]:
    if isinstance(value, str):
        r = _range(value)
        if r is not None:
            yield DateValue(*r)
        return
    if not isinstance(value, dict):
        return
    if typ == "Period" or (typ is None and ("start" in value or "end" in value)):
        found = _period(value)
    elif typ == "Timing" or (typ is None and ("event" in value or "repeat" in value)):
        found = _timing(value)
    else:
        found = None  # Age, Range: not dates
    if found is not None:
        yield found


# -- number and quantity -----------------------------------------------------------------------
def _number(typ: str | None, value: Any, root: dict) -> Iterator[NumberValue]:
    if isinstance(value, dict):  # a Range
        for end in ("low", "high"):
            bound = value.get(end)
            number = _decimal(bound.get("value")) if isinstance(bound, dict) else None
            if number is not None:
                yield NumberValue(number)
        return
    number = _decimal(value)
    if number is not None:
        yield NumberValue(number)


def _quantity_of(value: object) -> QuantityValue | None:
    if not isinstance(value, dict):
        return None
    number = _decimal(value.get("value"))
    if number is None:
        return None
    return QuantityValue(number, _str(value.get("system")), _str(value.get("code")), _str(value.get("unit")))


def _quantity(typ: str | None, value: Any, root: dict) -> Iterator[QuantityValue]:
    if not isinstance(value, dict):
        return
    if typ == "Money" or (typ is None and "currency" in value):
        number, currency = _decimal(value.get("value")), _str(value.get("currency"))
        if number is not None:
            yield QuantityValue(number, ISO_4217 if currency else None, currency, None)
        return
    if typ == "Range" or (typ is None and ("low" in value or "high" in value)):
        candidates: list[object] = [value.get("low"), value.get("high")]
    elif typ == "SampledData" or (typ is None and "origin" in value):
        candidates = [value.get("origin")]
    elif typ is None or _is(typ, "Quantity"):
        candidates = [value]
    else:
        candidates = []
    for candidate in candidates:
        found = _quantity_of(candidate)
        if found is not None:
            yield found


# -- reference and uri -------------------------------------------------------------------------
def _reference(typ: str | None, value: Any, root: dict) -> Iterator[ReferenceValue]:
    if isinstance(value, str):
        if value:
            parsed = parse_reference(value, root)
            yield ReferenceValue(parsed.type, parsed.id, value.partition("|")[0], parsed.version)
        return
    if not isinstance(value, dict) or typ == "Attachment":
        return
    if "resourceType" in value:  # a resource, e.g. Bundle.entry[0].resource
        kind, rid = _str(value.get("resourceType")), _str(value.get("id"))
        if kind:
            yield ReferenceValue(kind, rid, f"{kind}/{rid}" if rid else None)
        return
    parsed = reference_target(value, root)
    ref = _str(value.get("reference"))
    identifier = value.get("identifier") if isinstance(value.get("identifier"), dict) else {}
    id_system, id_value = _str(identifier.get("system")), _str(identifier.get("value"))
    if parsed is None or (ref is None and id_value is None and parsed.type is None):
        return
    yield ReferenceValue(parsed.type, parsed.id, ref, parsed.version, id_system, id_value)


def _uri(typ: str | None, value: Any, root: dict) -> Iterator[UriValue]:
    if isinstance(value, str) and value:
        yield UriValue(value)


_CONVERTERS: dict[str, Converter] = {
    "string": _string,
    "token": _token,
    "date": _date,
    "number": _number,
    "quantity": _quantity,
    "reference": _reference,
    "uri": _uri,
}


# -- entry points ------------------------------------------------------------------------------
def _unique(values: Iterable[Any]) -> list[Any]:
    return list(dict.fromkeys(values))


def _convert(param: SearchParam, nodes: list[tuple[str | None, Any]], root: dict) -> list[Any]:
    convert = _CONVERTERS[param.type]
    primitives = type_model().primitives
    out: list[Any] = []
    for typ, value in nodes:
        if typ is not None and (typ in primitives) == isinstance(value, dict):
            continue  # malformed: an object where a primitive belongs, or the other way round
        out.extend(convert(typ, value, root))
    return out


def _composite(param: SearchParam, nodes: list[tuple[str | None, Any]], root: dict) -> list[CompositeValue]:
    out: list[CompositeValue] = []
    if any(c.param is None or c.param.type in ("composite", "special") for c in param.components):
        return []
    for typ, node in nodes:
        parts: list[list[Any]] = []
        # the last components (the values) are the ones most often absent: test them first
        for comp in reversed(param.components):
            sub = compile_expression(comp.expression, typ)
            values = _convert(comp.param, sub.typed(node, root), root)
            if comp.param.type == "token":  # a CodeableConcept's text-only value is for :text only
                values = [v for v in values if v.code is not None]
            parts.append(_unique(values))
            if not parts[-1]:
                break
        else:
            parts.reverse()
            out.extend(CompositeValue(combo) for combo in itertools.product(*parts))
    return out


def extract_values(resource: dict, param: SearchParam) -> list[SearchValue]:
    """The index values of ``param`` in ``resource`` (de-duplicated, in document-ish order)."""
    kind = resource.get("resourceType")
    if not isinstance(kind, str) or param.type == "special":
        return []
    expression = param.expression_for(kind)
    if not expression:
        return []
    return _extract(resource, param, compile_expression(expression, kind))


def _extract(resource: dict, param: SearchParam, extractor: Extractor) -> list[SearchValue]:
    nodes = extractor.typed(resource)
    if not nodes:
        return []
    if param.type == "composite":
        return _unique(_composite(param, nodes, resource))
    return _unique(_convert(param, nodes, resource))


PlanItem = tuple[str, SearchParam, Extractor, "frozenset[str] | None"]
# resource type -> (the registry's mapping it was built from, [(code, param, extractor, first keys)])
_plans: dict[str, tuple[Mapping[str, SearchParam], list[PlanItem]]] = {}


def _plan(resource_type: str) -> list[PlanItem]:
    params = params_for(resource_type)
    cached = _plans.get(resource_type)
    if cached is not None and cached[0] is params:  # the registry swaps mappings on change
        return cached[1]
    plan: list[PlanItem] = []
    for code, param in params.items():
        expression = param.expression_for(resource_type)
        if expression and param.type != "special":
            extractor = compile_expression(expression, resource_type)
            keys = first_keys(extractor.branches) if extractor.branches is not None else None
            plan.append((code, param, extractor, keys))
    _plans[resource_type] = (params, plan)
    return plan


def extract_all(resource: dict) -> dict[str, list[SearchValue]]:
    """code -> values for every parameter of the resource's type (empty lists left out)."""
    kind = resource.get("resourceType")
    out: dict[str, list[SearchValue]] = {}
    if not isinstance(kind, str):
        return out
    for code, param, extractor, keys in _plan(kind):
        if keys is not None and keys.isdisjoint(resource):
            continue  # none of the elements the expression starts from is present
        values = _extract(resource, param, extractor)
        if values:
            out[code] = values
    return out


def fallback_params() -> list[str]:
    """Ids of the R4 parameters (on some base type, or a composite's component) that the compiler
    leaves to fhirpathpy."""
    out = set()
    for param in all_params():
        for base in param.base:
            expression = param.expression_for(base)
            if not expression:
                continue
            extractor = compile_expression(expression, base)
            if extractor.is_fallback:
                out.add(param.id)
                continue
            node_types = {t for _, t in extractor.branches or ()}
            for comp in param.components:
                if any(compile_expression(comp.expression, t).is_fallback for t in node_types):
                    out.add(param.id)
    return sorted(out)
