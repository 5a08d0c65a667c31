"""Turning one search parameter (name and value) into a :class:`Criterion`: plain parameters
with their modifiers, chains of several levels (``subject:Patient.organization.name``) and
reverse chains, nested or not (``_has:Observation:patient:_has:AuditEvent:entity:agent``)
(https://hl7.org/fhir/R4/search.html#chaining). A parameter this server cannot apply raises
:class:`Unusable`; a malformed value or a chain beyond the limits raises a 400."""

from __future__ import annotations

from app.errors import FhirError, invalid
from app.fhirspec.resource_types import is_resource_type
from app.fhirspec.search_parameters import SearchParam, params_for
from app.queries.search.model import MAX_CHAIN_BRANCHES, MAX_CHAIN_DEPTH, Criterion, Unusable, split_values
from app.search_types.param_aliases import rebuilding
from app.search_types.registry import SEARCH_TYPES, search_type
from app.search_types.text import as_text_search

ALL_MODIFIERS: dict[str, set[str]] = {name: set(t.modifiers) for name, t in SEARCH_TYPES.items()}
"""type name -> the modifiers its searches accept (a reference also takes ``:[type]``)"""


def resolve(
    resource_type: str, name: str, value: str, building: frozenset[str] = frozenset(), depth: int = 0
) -> Criterion:
    """The criterion of ``name=value`` on ``resource_type``; ``depth``: reference hops so far."""
    if name.startswith("_has:"):
        return _reverse_chained(resource_type, name, value, building, depth)
    if "." in name:
        criterion = _chained(resource_type, name, value, building, depth)
        if depth == 0 and _branches(criterion) > MAX_CHAIN_BRANCHES:
            raise invalid(
                f"Chained parameter '{name[:100]}' fans out to more than {MAX_CHAIN_BRANCHES} target types; "
                "name the target type at each level, e.g. subject:Patient.organization.name"
            )
        return criterion
    code, _, modifier = name.partition(":")
    param = params_for(resource_type).get(code)
    if param is None:
        raise Unusable(f"'{code}' is not a search parameter of {resource_type}")
    if param.url in building or rebuilding(resource_type, code, building):
        raise FhirError(
            503,
            "transient",
            f"The index of search parameter '{code}' ({param.url}) is still being "
            "built; its progress shows in `fhirledger projections status`",
            headers={"Retry-After": "5"},
        )
    return _criterion(code, param, modifier or None, value)


def _deeper(name: str, depth: int) -> int:
    if depth + 1 > MAX_CHAIN_DEPTH:
        raise invalid(
            f"Search parameter '{name[:100]}' goes beyond the maximum chain depth of {MAX_CHAIN_DEPTH} "
            "reference hops (chained parameters and nested _has together)"
        )
    return depth + 1


def _branches(c: Criterion) -> int:
    if not c.chain:
        return 1
    return sum(_branches(inner) for _, inner in c.chain)


def _chained(resource_type: str, name: str, value: str, building: frozenset[str], depth: int) -> Criterion:
    """``subject:Patient.name``, ``patient.organization.partof.name``: the reference parameter
    before the first dot, the rest resolved on each of its target types."""
    head, _, tail = name.partition(".")
    ref_code, _, target = head.partition(":")
    ref = params_for(resource_type).get(ref_code)
    if ref is None or ref.type != "reference":
        raise Unusable(f"'{ref_code}' is not a reference search parameter of {resource_type}")
    inner_depth = _deeper(name, depth)
    targets = [target] if target else list(ref.target)
    chain: list[tuple[str, Criterion]] = []
    reasons: list[str] = []
    for t in targets:
        if not is_resource_type(t):
            raise Unusable(f"'{t}' is not a resource type")
        try:
            chain.append((t, resolve(t, tail, value, building, inner_depth)))
        except Unusable as exc:
            reasons.append(exc.why)
    if not chain:
        if len(reasons) == 1:
            raise Unusable(reasons[0])
        raise Unusable(f"no target type of '{ref_code}' ({', '.join(targets) or 'none'}) has a parameter '{tail}'")
    return Criterion(ref_code, ref, None, (), tuple(chain))


def _reverse_chained(resource_type: str, name: str, value: str, building: frozenset[str], depth: int) -> Criterion:
    """``_has:Observation:patient:code=x``: resources some current Observation refers to by
    ``patient`` while matching ``code=x``; the inner parameter may itself be ``_has`` or a chain."""
    parts = name.split(":", 3)
    if len(parts) != 4 or not is_resource_type(parts[1]):
        raise Unusable("_has takes the form _has:[type]:[reference parameter]:[parameter]")
    source, ref_code, rest = parts[1], parts[2], parts[3]
    ref = params_for(source).get(ref_code)
    if ref is None or ref.type != "reference":
        raise Unusable(f"'{ref_code}' is not a reference search parameter of {source}")
    if ref.target and resource_type not in ref.target:
        raise Unusable(f"{source}.{ref_code} does not refer to {resource_type}")
    inner = resolve(source, rest, value, building, _deeper(name, depth))
    return Criterion("_has", ref, None, (), ((source, inner),), reverse=True)


def _check_modifier(code: str, param: SearchParam, modifier: str) -> None:
    allowed = ALL_MODIFIERS.get(param.type, set())
    if param.type == "reference" and modifier in (param.target or ()):
        return
    if param.type == "reference" and modifier[:1].isupper():
        raise Unusable(
            f"modifier ':{modifier}' on '{code}': {modifier} is not a target type of this parameter "
            f"({', '.join(param.target) or 'none'})"
        )
    if modifier not in allowed:
        raise Unusable(
            f"unknown or unsupported modifier ':{modifier}' on search parameter '{code}' "
            f"(type {param.type}; supported: {', '.join(sorted(allowed))})"
        )


def _criterion(code: str, param: SearchParam, modifier: str | None, raw: str) -> Criterion:
    param, modifier = as_text_search(param, modifier)  # _content, _text, :text: full-text search
    if modifier is not None:
        _check_modifier(code, param, modifier)
    if not search_type(param.type).searchable:
        raise Unusable(f"'{code}' is a {param.type} parameter, which this server does not support")
    if modifier == "missing":
        if raw not in ("true", "false"):
            raise invalid(f"{code}:missing='{raw[:40]}' must be true or false")
        return Criterion(code, param, modifier, (raw,))
    values = split_values(raw)
    if any(v == "" for v in values):
        raise invalid(f"Search parameter '{code}' has an empty value ('{raw[:80]}')")
    return Criterion(code, param, modifier, values)
