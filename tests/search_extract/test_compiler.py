"""The FHIRPath compiler (app/fhirpath/): the expression forms R4 uses, and the fallback."""

import pytest

from app.fhirpath import compile_expression, fallback_expressions
from app.fhirpath.parser import Unsupported, parse
from app.fhirspec.expressions import split_union
from app.fhirspec.search_parameters import SearchParam
from app.projections.search_values import StringValue, TokenValue, extract_values

PATIENT = {
    "resourceType": "Patient",
    "id": "p1",
    "name": [{"family": "Doe", "given": ["Jane", "Q"]}, {"family": "Roe"}],
    "telecom": [
        {"system": "phone", "value": "555-1"},
        {"system": "email", "value": "j@x.org"},
        {"system": "phone", "value": "555-2"},
    ],
    "extension": [
        {"url": "http://example.org/eye", "valueCode": "blue"},
        {"url": "http://example.org/other", "valueString": "x"},
    ],
    "deceasedDateTime": "2020-01-01",
    "contained": [{"resourceType": "Practitioner", "id": "pr"}],
    "generalPractitioner": [{"reference": "Practitioner/1"}, {"reference": "Organization/2"}, {"reference": "#pr"}],
}


def values(expression, resource=PATIENT, context=None):
    return compile_expression(expression, context)(resource)


def test_paths_flatten_arrays():
    assert values("Patient.name.given") == ["Jane", "Q"]
    assert values("Patient.name.family") == ["Doe", "Roe"]
    assert values("Patient.id") == ["p1"]
    assert values("Resource.id") == ["p1"]
    assert values("Patient.birthDate") == []


def test_type_prefix_filters_by_resource_type():
    assert values("Practitioner.name") == []
    assert values("Patient.name.family | Practitioner.name.family") == ["Doe", "Roe"]
    assert compile_expression("Practitioner.name", "Patient").branches == []


def test_where_with_literal_comparisons():
    assert values("Patient.telecom.where(system='phone').value") == ["555-1", "555-2"]
    assert values("Patient.telecom.where(system != 'phone').value") == ["j@x.org"]
    assert values("Patient.telecom.where(system='phone' and value='555-2').value") == ["555-2"]


def test_choice_types_as_of_type_is():
    obs = {"resourceType": "Observation", "valueQuantity": {"value": 3}, "effectiveDateTime": "2020"}
    assert values("Observation.value as Quantity", obs) == [{"value": 3}]
    assert values("(Observation.value as Quantity).value", obs) == [3]
    assert values("Observation.value.ofType(Quantity)", obs) == [{"value": 3}]
    assert values("Observation.value.as(Quantity)", obs) == [{"value": 3}]
    assert values("Observation.value as CodeableConcept", obs) == []
    assert values("Observation.value is Quantity", obs) == [True]
    assert values("Observation.value.is(string)", obs) == [False]
    typed = compile_expression("Observation.effective", "Observation").typed(obs)
    assert typed == [("dateTime", "2020")]
    assert len(compile_expression("Observation.effective").branches) == 4  # one per variant


def test_resolve_is_type():
    gp = "Patient.generalPractitioner"
    assert values(f"{gp}.where(resolve() is Practitioner)") == [{"reference": "Practitioner/1"}, {"reference": "#pr"}]
    assert values(f"{gp}.where(resolve() is Organization)") == [{"reference": "Organization/2"}]
    assert values(f"{gp}.resolve()") == [
        {"resourceType": "Practitioner", "id": "1"},
        {"resourceType": "Organization", "id": "2"},
        {"resourceType": "Practitioner", "id": "pr"},
    ]


def test_extensions():
    assert values("Patient.extension('http://example.org/eye').value") == ["blue"]
    assert values("Patient.extension.where(url='http://example.org/eye').value") == ["blue"]
    assert compile_expression("Patient.extension('http://example.org/eye').value").typed(PATIENT) == [("code", "blue")]


def test_functions_and_booleans():
    assert values("Patient.name.first().family") == ["Doe"]
    assert values("Patient.name.last().family") == ["Roe"]
    assert values("Patient.name[1].family") == ["Roe"]
    assert values("Patient.name.exists()") == [True]
    assert values("Patient.photo.empty()") == [True]
    assert values("Patient.deceased.exists() and Patient.deceased != false") == [True]
    assert values("Patient.deceased.exists() and Patient.deceased != false", {"resourceType": "Patient"}) == [False]
    alive = {"resourceType": "Patient", "deceasedBoolean": False}
    assert values("Patient.deceased.exists() and Patient.deceased != false", alive) == [False]
    assert values("Patient.name.where(given.exists()).family") == ["Doe"]
    assert values("Patient.active.not()", {"resourceType": "Patient", "active": False}) == [True]


def test_relative_expressions_and_resource_variable():
    component = {"code": {"text": "c"}, "valueString": "v"}
    obs = {"resourceType": "Observation", "id": "o", "component": [component]}
    ex = compile_expression("value.as(string)", "Observation.component")
    assert ex.typed(component, obs) == [("string", "v")]
    assert compile_expression("%resource.id", "Observation.component").typed(component, obs) == [("string", "o")]


def test_malformed_json_is_skipped():
    bad = {"resourceType": "Patient", "name": "Doe", "telecom": {"system": "phone", "value": 5}, "link": [None, 3]}
    assert values("Patient.name.family", bad) == []
    assert values("Patient.telecom.where(system='phone').value", bad) == [5]
    assert values("Patient.link.other", bad) == []


def test_parser_and_union_split():
    assert parse("a | b")[1] == "|"
    assert split_union("(A.b as C) | A.where(x='|').y") == ["(A.b as C)", "A.where(x='|').y"]
    with pytest.raises(Unsupported):
        parse("Patient.name.given.substring(0, 1) + 'x'")


def test_unsupported_forms_fall_back_to_fhirpathpy():
    expression = "Patient.name.given.select($this.substring(0, 2))"
    ex = compile_expression(expression, "Patient")
    assert ex.is_fallback
    assert ex(PATIENT) == ["Ja", "Q"]
    assert (expression, "Patient") in fallback_expressions()
    custom = SearchParam.from_resource(
        {
            "url": "http://example.org/sp/given2",
            "code": "given2",
            "base": ["Patient"],
            "type": "string",
            "expression": expression,
        }
    )
    assert extract_values(PATIENT, custom) == [StringValue("ja", "Ja"), StringValue("q", "Q")]


def test_fallback_keeps_resolve_semantics():
    ex = compile_expression("Patient.generalPractitioner.where(resolve() is Organization).select($this)", "Patient")
    assert ex.is_fallback
    assert ex(PATIENT) == [{"reference": "Organization/2"}]
    token = SearchParam.from_resource(
        {
            "url": "http://example.org/sp/tc",
            "code": "tc",
            "base": ["Patient"],
            "type": "token",
            "expression": "Patient.telecom.select($this)",
        }
    )
    assert TokenValue(None, "555-1") in extract_values(PATIENT, token)
