"""The search-parameter registry (app/fhirspec/search_parameters.py)."""

from collections import Counter

import pytest

from app.fhirspec.resource_types import resource_types
from app.fhirspec.search_parameters import (
    SearchParam,
    SearchParamRegistry,
    all_params,
    get_param,
    params_for,
    registry,
    split_by_base,
)

COMMON = ("_id", "_lastUpdated", "_tag", "_profile", "_security", "_source", "_content", "_query")


def test_all_r4_parameters_loaded_with_counts_per_type():
    params = [p for p in all_params() if not p.custom]  # custom ones may be registered by other tests
    assert len(params) == 1378
    assert Counter(p.type for p in params) == {
        "token": 539,
        "reference": 472,
        "string": 133,
        "date": 109,
        "composite": 46,
        "uri": 45,
        "quantity": 27,
        "number": 6,
        "special": 1,
    }
    assert len({p.url for p in params}) == 1378


@pytest.mark.parametrize("resource_type", resource_types())
def test_common_parameters_on_every_type(resource_type):
    params = params_for(resource_type)
    for code in COMMON:
        assert code in params, code
    domain = resource_type not in ("Bundle", "Binary", "Parameters")
    assert ("_text" in params) is domain


def test_common_parameter_details():
    last_updated = get_param("Patient", "_lastUpdated")
    assert last_updated.type == "date"
    assert last_updated.expression_for("Patient") == "Resource.meta.lastUpdated"
    assert set(last_updated.comparators) == {"eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap"}
    assert get_param("Observation", "_tag").expression_for("Observation") == "Resource.meta.tag"
    assert get_param("Patient", "_text").expression is None


def test_expression_split_per_base_type():
    name = get_param("Patient", "phone")
    assert name.expression.count("|") == 4
    assert name.expression_for("Patient") == "Patient.telecom.where(system='phone')"
    assert name.expression_for("RelatedPerson") == "RelatedPerson.telecom.where(system='phone')"
    code = get_param("MedicationRequest", "code")
    assert code.expression_for("MedicationRequest") == "(MedicationRequest.medication as CodeableConcept)"
    assert (
        code.expression_for("AllergyIntolerance") == "AllergyIntolerance.code | AllergyIntolerance.reaction.substance"
    )
    quantity = get_param("Observation", "combo-value-quantity")
    assert quantity.expression_for("Observation") == quantity.expression  # one base, all branches kept
    assert get_param("Observation", "patient").expression_for("Patient") is None


def test_every_base_gets_a_part_of_a_multi_base_expression():
    for p in all_params():
        if p.expression and len(p.base) > 1:
            for base in p.base:
                part = p.expression_for(base)
                assert part and base in part, (p.id, base)


def test_unprefixed_branches_keep_the_whole_expression():
    assert split_by_base("name | alias", ["A", "B"]) == (("A", "name | alias"), ("B", "name | alias"))


def test_reference_targets_modifiers_and_components():
    subject = get_param("Observation", "subject")
    assert "Patient" in subject.target and "Group" in subject.target
    assert "identifier" in subject.modifiers and "type" in subject.modifiers
    assert "of-type" in get_param("Patient", "identifier").modifiers
    assert get_param("Patient", "name").modifiers == ("missing", "exact", "contains")
    cvq = get_param("Observation", "code-value-quantity")
    assert cvq.multiple_or is False
    assert [(c.expression, c.param.code, c.param.type) for c in cvq.components] == [
        ("code", "code", "token"),
        ("value.as(Quantity)", "value-quantity", "quantity"),
    ]
    assert all(c.param is not None for p in all_params() for c in p.components)


def test_params_hashable_and_lookup():
    p = get_param("Patient", "name")
    assert {p: 1}[p] == 1
    assert get_param("Patient", "nope") is None
    assert params_for("NotAType") == {}


CUSTOM = {
    "resourceType": "SearchParameter",
    "id": "patient-eye-colour",
    "url": "http://example.org/SearchParameter/patient-eye-colour",
    "name": "eyeColour",
    "code": "eye-colour",
    "base": ["Patient"],
    "type": "token",
    "expression": "Patient.extension('http://example.org/eye-colour').value",
    "status": "active",
}


def test_register_and_unregister_custom_parameter():
    reg = SearchParamRegistry(all_params())
    param = SearchParam.from_resource(CUSTOM)
    assert param.custom and param.modifiers[0] == "missing"
    reg.register(param)
    assert reg.get("Patient", "eye-colour") is param
    assert reg.get("Observation", "eye-colour") is None
    assert reg.by_url(CUSTOM["url"]) is param
    assert reg.unregister(CUSTOM["url"]) is param
    assert reg.get("Patient", "eye-colour") is None
    assert registry().get("Patient", "eye-colour") is None  # the process registry was not touched


def test_register_custom_composite_resolves_components():
    reg = SearchParamRegistry(all_params())
    composite = SearchParam.from_resource(
        {
            "url": "http://example.org/SearchParameter/obs-code-string",
            "code": "code-string",
            "base": ["Observation"],
            "type": "composite",
            "expression": "Observation",
            "component": [
                {"definition": "http://hl7.org/fhir/SearchParameter/clinical-code", "expression": "code"},
                {"definition": "http://hl7.org/fhir/SearchParameter/Observation-value-string", "expression": "value"},
            ],
        }
    )
    assert composite.components[0].param is None
    registered = reg.register(composite)
    assert [c.param.code for c in registered.components] == ["code", "value-string"]


def test_from_resource_rejects_unknown_type():
    with pytest.raises(ValueError):
        SearchParam.from_resource({**CUSTOM, "type": "nonsense"})
