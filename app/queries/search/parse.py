"""Parsing a search request's parameters (https://hl7.org/fhir/R4/search.html).

Parameters of the same name are ANDed; comma-separated values within one are ORed (``\\,``
escapes a comma). Result parameters (``_count``, ``_sort``, ``_total``, ``_summary``,
``_elements``) shape the Bundle. An unknown parameter is ignored with a warning under
``Prefer: handling=lenient`` (the default) and rejected with 400 under ``handling=strict``; a
malformed value is always 400, naming the parameter and value.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from app.errors import FhirError, Issue, invalid
from app.fhirspec.resource_types import is_resource_type
from app.fhirspec.search_parameters import SearchParam, params_for
from app.queries.paging import CURSOR_PARAM, decode_cursor, parse_count

# Parameters that shape the result or transport, not the match.
RESULT_PARAMS = frozenset(
    {
        "_count",
        "_sort",
        "_total",
        "_summary",
        "_elements",
        CURSOR_PARAM,
        "_format",
        "_pretty",
        "_type",
    }
)
# Accepted and ignored without a warning: they change nothing for a JSON server without includes.
QUIET_PARAMS = frozenset({"_contained", "_containedType"})
ALL_MODIFIERS = {
    "string": {"exact", "contains", "missing"},
    "token": {"missing", "not", "text", "of-type"},
    "date": {"missing"},
    "number": {"missing"},
    "quantity": {"missing"},
    "reference": {"missing", "identifier"},
    "uri": {"missing", "below", "above"},
    "composite": {"missing"},
    "special": {"missing"},
}
SUMMARY_VALUES = {"true", "false", "text", "data", "count"}
TOTAL_VALUES = {"none", "estimate", "accurate"}


@dataclass(frozen=True)
class Criterion:
    code: str
    param: SearchParam
    modifier: str | None  # a resource type for reference ``:[type]``
    values: tuple[str, ...]  # ORed
    chain: tuple[tuple[str, Criterion], ...] = ()  # ``subject:Patient.name=x``: (target type, criterion)
    reverse: bool = False  # ``_has:Observation:patient:code=x``: chain holds (source type, criterion)


@dataclass(frozen=True)
class SortKey:
    code: str
    param: SearchParam | None  # None for _id and _lastUpdated
    descending: bool


@dataclass
class SearchQuery:
    resource_type: str
    criteria: list[Criterion] = field(default_factory=list)
    sort: list[SortKey] = field(default_factory=list)
    count: int = 20
    total: str = "accurate"
    summary: str | None = None
    elements: tuple[str, ...] | None = None
    cursor: dict | None = None
    warnings: list[Issue] = field(default_factory=list)
    includes: list[Include] = field(default_factory=list)
    revincludes: list[Include] = field(default_factory=list)


@dataclass(frozen=True)
class Include:
    """``_include=Observation:subject[:Patient]`` / ``_revinclude=Observation:subject``."""

    source_type: str
    code: str
    target_type: str | None


def split_values(raw: str) -> tuple[str, ...]:
    """Split on unescaped commas; ``\\,`` is a literal comma."""
    out, buf, i = [], [], 0
    while i < len(raw):
        ch = raw[i]
        if ch == "\\" and i + 1 < len(raw) and raw[i + 1] in ",$|\\":
            buf.append("\\" + raw[i + 1] if raw[i + 1] in "$|" else raw[i + 1])
            i += 2
            continue
        if ch == ",":
            out.append("".join(buf))
            buf = []
        else:
            buf.append(ch)
        i += 1
    out.append("".join(buf))
    return tuple(out)


def unescape(value: str) -> str:
    return value.replace("\\$", "$").replace("\\|", "|")


def parse_search(
    resource_type: str,
    params: list[tuple[str, str]],
    *,
    strict: bool,
    default_count: int,
    max_count: int,
    building: frozenset[str] = frozenset(),
) -> SearchQuery:
    """``building``: URLs of custom parameters whose index is still being built (→ 503)."""
    known = params_for(resource_type)
    query = SearchQuery(resource_type)
    singles: dict[str, str] = {}
    for name, value in params:
        base, _, modifier = name.partition(":")
        if base in RESULT_PARAMS:
            if base in singles and base not in ("_sort", "_elements", "_type"):
                raise invalid(f"{base} may be given only once")
            singles[base] = value
            continue
        if base in QUIET_PARAMS:
            continue
        if base in ("_include", "_revinclude"):
            (query.includes if base == "_include" else query.revincludes).append(_include(base, value))
            continue
        if name.startswith("_has:") or "." in name:
            chain = (_reverse_chained if name.startswith("_has:") else _chained)(resource_type, name, value)
            if isinstance(chain, str):  # why it cannot be used
                _unknown(query, strict, name, chain)
            else:
                query.criteria.append(chain)
            continue
        param = known.get(base)
        if param is None:
            _unknown(query, strict, name, f"'{base}' is not a search parameter of {resource_type}")
            continue
        if param.url in building:
            raise FhirError(
                503,
                "transient",
                f"The index of search parameter '{base}' ({param.url}) is still being "
                "built; its progress shows in `fhirledger projections status`",
                headers={"Retry-After": "5"},
            )
        query.criteria.append(_criterion(resource_type, base, param, modifier or None, value))
    query.count = parse_count(singles.get("_count"), default_count, max_count)
    if "_sort" in singles:
        query.sort = _sort(resource_type, known, singles["_sort"])
    total = singles.get("_total")
    if total is not None:
        if total not in TOTAL_VALUES:
            raise invalid(f"_total='{total[:40]}' is not one of none, estimate, accurate")
        query.total = total
    summary = singles.get("_summary")
    if summary is not None:
        if summary not in SUMMARY_VALUES:
            raise invalid(f"_summary='{summary[:40]}' is not one of true, false, text, data, count")
        query.summary = None if summary == "false" else summary
    if "_elements" in singles:
        names = tuple(e.strip() for e in singles["_elements"].split(",") if e.strip())
        query.elements = names or None
    if CURSOR_PARAM in singles:
        query.cursor = decode_cursor(singles[CURSOR_PARAM])
    return query


def _include(kind: str, value: str) -> Include:
    parts = value.split(":")
    if len(parts) not in (2, 3) or not is_resource_type(parts[0]):
        raise invalid(f"{kind}='{value[:80]}' must be [type]:[search parameter] or [type]:[parameter]:[target type]")
    param = params_for(parts[0]).get(parts[1])
    if param is None or param.type != "reference":
        raise invalid(f"{kind}='{value[:80]}': '{parts[1]}' is not a reference search parameter of {parts[0]}")
    target = parts[2] if len(parts) == 3 else None
    if target is not None and not is_resource_type(target):
        raise invalid(f"{kind}='{value[:80]}': '{target}' is not a resource type")
    return Include(parts[0], parts[1], target)


def _chained(resource_type: str, name: str, value: str) -> Criterion | str:
    """``subject:Patient.name`` / ``patient.identifier``: one level of chaining; a reason when unusable."""
    head, _, tail = name.partition(".")
    if "." in tail:
        return "chains of more than one level are not supported"
    ref_code, _, target = head.partition(":")
    ref = params_for(resource_type).get(ref_code)
    if ref is None or ref.type != "reference":
        return f"'{ref_code}' is not a reference search parameter of {resource_type}"
    tail_code, _, tail_modifier = tail.partition(":")
    targets = [target] if target else list(ref.target)
    chain = []
    for t in targets:
        if not is_resource_type(t):
            return f"'{t}' is not a resource type"
        inner = params_for(t).get(tail_code)
        if inner is not None:
            chain.append((t, _criterion(t, tail_code, inner, tail_modifier or None, value)))
    if not chain:
        return f"no target type of '{ref_code}' has a search parameter '{tail_code}'"
    return Criterion(ref_code, ref, None, (), tuple(chain))


def _reverse_chained(resource_type: str, name: str, value: str) -> Criterion | str:
    """``_has:Observation:patient:code=x``: resources some Observation refers to by ``patient``
    while matching ``code=x`` (one level); a reason when unusable."""
    parts = name.split(":", 3)
    if len(parts) != 4 or not is_resource_type(parts[1]):
        return "_has takes the form _has:[type]:[reference parameter]:[parameter]"
    source, ref_code, rest = parts[1], parts[2], parts[3]
    if rest.startswith("_has:"):
        return "nested _has is not supported"
    ref = params_for(source).get(ref_code)
    if ref is None or ref.type != "reference":
        return f"'{ref_code}' is not a reference search parameter of {source}"
    if ref.target and resource_type not in ref.target:
        return f"{source}.{ref_code} does not refer to {resource_type}"
    inner_code, _, inner_modifier = rest.partition(":")
    inner = params_for(source).get(inner_code)
    if inner is None:
        return f"'{inner_code}' is not a search parameter of {source}"
    criterion = _criterion(source, inner_code, inner, inner_modifier or None, value)
    return Criterion("_has", ref, None, (), ((source, criterion),), reverse=True)


def _unknown(query: SearchQuery, strict: bool, name: str, why: str) -> None:
    if strict:
        raise FhirError(400, "not-supported", f"Unknown search parameter '{name[:80]}': {why}")
    query.warnings.append(Issue("warning", "not-supported", f"Search parameter '{name[:80]}' was ignored: {why}"))


def _criterion(resource_type: str, code: str, param: SearchParam, modifier: str | None, raw: str) -> Criterion:
    if modifier is not None:
        allowed = ALL_MODIFIERS.get(param.type, set())
        if param.type == "reference" and modifier in (param.target or ()):
            pass
        elif param.type == "reference" and modifier[:1].isupper():
            raise invalid(
                f"Modifier ':{modifier}' on '{code}': {modifier} is not a target type of this parameter "
                f"({', '.join(param.target) or 'none'})"
            )
        elif modifier not in allowed:
            raise invalid(
                f"Unknown or unsupported modifier ':{modifier}' on search parameter '{code}' "
                f"(type {param.type}; supported: {', '.join(sorted(allowed))})"
            )
    if param.type == "special":
        raise FhirError(400, "not-supported", f"Search parameter '{code}' (special) is not supported by this server")
    if modifier == "missing":
        if raw not in ("true", "false"):
            raise invalid(f"{code}:missing='{raw[:40]}' must be true or false")
        return Criterion(code, param, modifier, (raw,))
    values = split_values(raw)
    if any(v == "" for v in values):
        raise invalid(f"Search parameter '{code}' has an empty value ('{raw[:80]}')")
    return Criterion(code, param, modifier, values)


def _sort(resource_type: str, known: dict, raw: str) -> list[SortKey]:
    keys = []
    for part in raw.split(","):
        part = part.strip()
        if not part:
            continue
        descending = part.startswith("-")
        code = part.lstrip("-")
        if code in ("_id", "_lastUpdated"):
            keys.append(SortKey(code, None, descending))
            continue
        param = known.get(code)
        if param is None:
            raise invalid(f"_sort: '{code[:60]}' is not a search parameter of {resource_type}")
        if param.type in ("composite", "special"):
            raise invalid(f"_sort: '{code}' is a {param.type} parameter and cannot be sorted on")
        keys.append(SortKey(code, param, descending))
    return keys
