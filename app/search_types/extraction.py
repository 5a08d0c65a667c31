"""The search-index values of a resource, one list per search parameter: the parameter's
expression for the resource's type (compiled by :mod:`app.fhirpath`) selects nodes, which the
parameter's :class:`SearchType` turns into values. Values are de-duplicated per parameter, in
document-ish order; malformed nodes are skipped, nothing raises on valid FHIR; ``special``
parameters have no values."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.fhirpath import Extractor, compile_expression
from app.fhirpath.compiler import first_keys
from app.fhirspec.search_parameters import SearchParam, all_params, params_for
from app.search_types.registry import SEARCH_TYPES


def _indexed(param: SearchParam) -> bool:
    kind = SEARCH_TYPES.get(param.type)
    return kind is not None and bool(kind.tables)


def extract_values(resource: dict, param: SearchParam) -> list[Any]:
    """The index values of ``param`` in ``resource``."""
    kind = resource.get("resourceType")
    if not isinstance(kind, str) or not _indexed(param):
        return []
    expression = param.expression_for(kind)
    if not expression:
        return []
    return _extract(resource, param, compile_expression(expression, kind))


def _extract(resource: dict, param: SearchParam, extractor: Extractor) -> list[Any]:
    nodes = extractor.typed(resource)
    if not nodes:
        return []
    return list(dict.fromkeys(SEARCH_TYPES[param.type].extract(param, nodes, resource)))


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
        if expression and _indexed(param):
            extractor = compile_expression(expression, resource_type)
            keys = first_keys(extractor.branches) if extractor.branches is not None else None
            plan.append((code, param, extractor, keys))
    _plans[resource_type] = (params, plan)
    return plan


def extract_all(resource: dict) -> dict[str, list[Any]]:
    """code -> values for every parameter of the resource's type (empty lists left out)."""
    kind = resource.get("resourceType")
    out: dict[str, list[Any]] = {}
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
