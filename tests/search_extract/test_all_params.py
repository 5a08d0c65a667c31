"""Every R4 search parameter over dense resources of each of its base types: nothing raises,
almost every parameter yields values, the compiled extractors agree with fhirpathpy, and the
parameters left to fhirpathpy are listed."""

import re
from decimal import Decimal

import orjson
import pytest

from app.fhirpath import compile_expression
from app.fhirpath.fallback import FallbackExpression
from app.fhirpath.model import type_model
from app.fhirspec.resource_types import resource_types
from app.fhirspec.search_parameters import all_params
from app.projections.search_values import extract_values, fallback_params
from tests.search_extract.dense import all_dense

# Parameters that cannot yield a value: no expression (_text, _content, _query), `special`
# (Location-near), and DocumentReference-relationship, whose R4 definition swaps its components
# (the reference component `relatesto` points at `relatesTo.code`, the token one at `.target`).
NO_VALUES = {
    "DomainResource-text",
    "Resource-content",
    "Resource-query",
    "Location-near",
    "DocumentReference-relationship",
}


def _types_of(base: str) -> list[str]:
    if base in ("Resource", "DomainResource"):
        return [t for t in resource_types() if type_model().is_subtype(t, base)]
    return [base]


def test_every_parameter_on_every_base_type_extracts_without_error():
    dense = all_dense()
    hits: dict[str, int] = {}
    runs = 0
    for param in all_params():
        hits[param.id] = 0
        for base in param.base:
            for rt in _types_of(base):
                for resource in dense[rt]:
                    runs += 1
                    if extract_values(resource, param):
                        hits[param.id] += 1
    assert runs > 20_000
    without = {pid for pid, n in hits.items() if n == 0}
    assert without == NO_VALUES, sorted(without ^ NO_VALUES)


def _plain(value):
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _canon(values: list) -> set[bytes]:
    return {orjson.dumps(_plain(v), default=str, option=orjson.OPT_SORT_KEYS) for v in values}


def _for_fhirpathpy(expression: str, resource_type: str) -> str:
    """fhirpathpy returns nothing for `Resource.id` on a Patient, rejects `as` on collections of
    several items (R4 expressions use `as` where R5 says `ofType`), and reads `as(DateTime)` (in
    Observation-code-value-date) as System.DateTime, which no FHIR dateTime is; the compiler reads
    it as FHIR `dateTime`, as the parameter intends. Rewrite all three for the comparison."""
    expression = re.sub(r"\b(Resource|DomainResource)\.", resource_type + ".", expression)
    expression = expression.replace("as(DateTime)", "as(dateTime)")
    expression = re.sub(r" as (\w+)", r".ofType(\1)", expression)
    return re.sub(r"\.as\((\w+)\)", r".ofType(\1)", expression)


def test_compiled_extractors_match_fhirpathpy():
    dense = all_dense()
    reference: dict[str, FallbackExpression] = {}
    compared = 0
    mismatches = []
    for param in all_params():
        for base in param.base:
            for rt in _types_of(base)[:3]:
                expression = param.expression_for(rt)
                if not expression:
                    continue
                extractor = compile_expression(expression, rt)
                assert not extractor.is_fallback
                rewritten = _for_fhirpathpy(expression, rt)
                other = reference.setdefault(rewritten, FallbackExpression(rewritten))
                for resource in dense[rt][:4]:
                    compared += 1
                    theirs = other._fn(resource, {"resource": resource})
                    if _canon(extractor(resource)) != _canon(theirs):
                        mismatches.append((param.id, rt, resource["id"]))
                    # composite components, relative to each node of the composite's expression
                    for typ, node in extractor.typed(resource) if param.components else ():
                        for comp in param.components:
                            sub = compile_expression(comp.expression, typ)
                            other_sub = FallbackExpression(_for_fhirpathpy(comp.expression, rt))
                            mine = [v for _, v in sub.typed(node, resource)]
                            compared += 1
                            if _canon(mine) != _canon(other_sub.evaluate(node, resource, typ)):
                                mismatches.append((param.id, comp.expression, resource["id"]))
    assert compared > 7_000
    assert mismatches == []


def test_fallback_list():
    # Every R4 expression (and composite component) compiles; nothing is left to fhirpathpy.
    assert fallback_params() == []


@pytest.mark.parametrize("resource_type", ["Patient", "Observation", "Bundle", "ExplanationOfBenefit"])
def test_all_values_are_hashable(resource_type):
    from app.projections.search_values import extract_all

    for resource in all_dense()[resource_type]:
        for values in extract_all(resource).values():
            assert len(set(values)) == len(values)
