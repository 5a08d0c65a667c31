"""One targeted broken resource per rule: the right issue code at the exact FHIRPath location."""

from __future__ import annotations

import pytest

from app.validation import validate_resource
from tests.validation.validation_samples import bundle, observation, patient, questionnaire


def only(resource: object, **kwargs: bool) -> tuple[str, str, str]:
    issues = [i for i in validate_resource(resource, **kwargs) if i.severity == "error"]
    assert len(issues) == 1, issues
    (issue,) = issues
    assert issue.diagnostics.startswith(issue.expression[0]), issue
    return issue.code, issue.expression[0], issue.diagnostics


def with_(base: dict, **changes: object) -> dict:
    out = dict(base)
    for key, value in changes.items():
        if value is ...:
            del out[key]
        else:
            out[key] = value
    return out


@pytest.mark.parametrize(
    "resource, code, expression",
    [
        # top level
        ([1, 2], "structure", "$this"),
        ("Patient", "structure", "$this"),
        (None, "structure", "$this"),
        ({"id": "x"}, "required", "resourceType"),
        ({"resourceType": "Foo"}, "invalid", "resourceType"),
        ({"resourceType": 7}, "invalid", "resourceType"),
        # unknown elements, at every depth
        (with_(patient(), foo=1), "processing", "Patient.foo"),
        (with_(patient(), name=[{"family": "X", "nickname": "Y"}]), "processing", "Patient.name[0].nickname"),
        (with_(patient(), _gender={"foo": 1}), "processing", "Patient.gender.foo"),
        (with_(patient(), _active2={"extension": []}), "processing", "Patient._active2"),
        # cardinality
        (with_(observation(), status=...), "required", "Observation.status"),
        (with_(observation(), code=...), "required", "Observation.code"),
        (with_(patient(), link=[{"type": "seealso"}]), "required", "Patient.link[0].other"),
        (with_(patient(), name=[{}]), "structure", "Patient.name[0]"),
        # JSON shape
        (with_(patient(), gender=["male"]), "structure", "Patient.gender"),
        (with_(patient(), name={"family": "X"}), "structure", "Patient.name"),
        (with_(patient(), name=[]), "structure", "Patient.name"),
        (with_(patient(), name=["Peter"]), "structure", "Patient.name[0]"),
        (with_(patient(), maritalStatus="M"), "structure", "Patient.maritalStatus"),
        (with_(patient(), birthDate=None), "structure", "Patient.birthDate"),
        (with_(patient(), name=[{"given": ["A", None]}]), "structure", "Patient.name[0].given[1]"),
        (with_(patient(), name=[{"given": []}]), "structure", "Patient.name[0].given"),
        # primitives: JSON types (the JSON itself is wrong: "structure") and formats ("value")
        (with_(patient(), active="true"), "structure", "Patient.active"),
        (with_(patient(), active=1), "structure", "Patient.active"),
        (with_(patient(), birthDate="1974-13-25"), "value", "Patient.birthDate"),
        (with_(patient(), birthDate="25/12/1974"), "value", "Patient.birthDate"),
        (with_(patient(), birthDate=19741225), "structure", "Patient.birthDate"),
        (with_(patient(), id="bad id!"), "value", "Patient.id"),
        (with_(patient(), id="x" * 65), "value", "Patient.id"),
        (with_(patient(), name=[{"given": ["A", ""]}]), "value", "Patient.name[0].given[1]"),
        (with_(patient(), multipleBirthInteger="2"), "structure", "Patient.multipleBirthInteger"),
        (with_(patient(), multipleBirthInteger=2.5), "value", "Patient.multipleBirthInteger"),
        (with_(patient(), multipleBirthInteger=2**31), "value", "Patient.multipleBirthInteger"),
        (with_(patient(), implicitRules="http://a b"), "value", "Patient.implicitRules"),
        (with_(patient(), language="en  US"), "value", "Patient.language"),
        (
            with_(patient(), photo=[{"contentType": "image/png", "data": "not base64!"}]),
            "value",
            "Patient.photo[0].data",
        ),
        (with_(patient(), photo=[{"size": -1}]), "value", "Patient.photo[0].size"),
        (with_(patient(), meta={"lastUpdated": "2024-01-15"}), "value", "Patient.meta.lastUpdated"),
        (with_(patient(), meta={"source": "urn:uuid:NOT-A-UUID"}), None, None),
        (
            with_(patient(), identifier=[{"system": "urn:oid:1.2", "value": "1", "period": {"start": "24:00"}}]),
            "value",
            "Patient.identifier[0].period.start",
        ),
        (with_(observation(), valueDecimal=True, valueQuantity=...), "processing", "Observation.valueDecimal"),
        (with_(observation(), valueTime="25:00:00", valueQuantity=...), "value", "Observation.valueTime"),
        (with_(observation(), valueInteger=1.0, valueQuantity=...), "value", "Observation.valueInteger"),
        (with_(observation(), issued="2013-04-03"), "value", "Observation.issued"),
        (with_(observation(), valueQuantity={"value": "6.3"}), "structure", "Observation.valueQuantity.value"),
        # choice types
        (with_(observation(), valueString="x"), "processing", "Observation.value"),
        (with_(observation(), valueFoo="x"), "processing", "Observation.valueFoo"),
        (
            with_(observation(), effectivePeriod=..., effectiveDate="2024-01-01"),
            "processing",
            "Observation.effectiveDate",
        ),
        # datatypes recursively
        (
            with_(observation(), subject={"reference": "Patient/1", "kind": "x"}),
            "processing",
            "Observation.subject.kind",
        ),
        (
            with_(observation(), subject={"reference": "Patient/1", "identifier": {"value": 1}}),
            "structure",
            "Observation.subject.identifier.value",
        ),
        (
            with_(observation(), valueQuantity={"value": 1, "comparator": "<<"}),
            "code-invalid",
            "Observation.valueQuantity.comparator",
        ),
        (
            with_(patient(), telecom=[{"system": "fax", "value": "1", "use": "mobile", "period": {"end": 5}}]),
            "structure",
            "Patient.telecom[0].period.end",
        ),
        # required bindings
        (with_(patient(), gender="mal"), "code-invalid", "Patient.gender"),
        (with_(observation(), status="done"), "code-invalid", "Observation.status"),
        (
            with_(patient(), link=[{"other": {"reference": "Patient/2"}, "type": "same"}]),
            "code-invalid",
            "Patient.link[0].type",
        ),
        (
            with_(
                observation(),
                category=[
                    {
                        "coding": [
                            {"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "lab"}
                        ]
                    }
                ],
            ),
            None,
            None,
        ),
        # primitive extensions
        (with_(patient(), _birthDate="x"), "structure", "Patient.birthDate"),
        (
            with_(patient(), _birthDate={"extension": [{"url": "http://x"}]}),
            "invariant",
            "Patient.birthDate.extension[0]",
        ),
        (with_(patient(), name=[{"given": ["A"], "_given": [None, None]}]), "structure", "Patient.name[0]._given"),
        (with_(patient(), name=[{"given": [None], "_given": [None]}]), "structure", "Patient.name[0].given[0]"),
        # invariants
        (with_(patient(), contact=[{"gender": "male"}]), "invariant", "Patient.contact[0]"),
        (
            with_(
                patient(),
                extension=[
                    {"url": "http://x", "valueString": "a", "extension": [{"url": "http://y", "valueString": "b"}]}
                ],
            ),
            "invariant",
            "Patient.extension[0]",
        ),
        (with_(patient(), managingOrganization={"reference": "#missing"}), "invariant", "Patient.managingOrganization"),
        (
            with_(
                patient(),
                deceasedDateTime="2020-01-01",
                deceasedBoolean=...,
                identifier=[{"period": {"start": "2020-02-01", "end": "2020-01-01"}}],
            ),
            "invariant",
            "Patient.identifier[0].period",
        ),
        (with_(observation(), valueQuantity={"value": 1, "code": "mg"}), "invariant", "Observation.valueQuantity"),
    ],
)
def test_invalid(resource: object, code: str | None, expression: str | None) -> None:
    if code is None:
        # documented false positives we avoid: formats/bindings the validator must not refuse
        issues = [i for i in validate_resource(resource) if i.severity == "error"]
        assert issues == []
        return
    got_code, got_expression, diagnostics = only(resource)
    assert (got_code, got_expression) == (code, expression), diagnostics


def test_gender_message_names_the_value_set_and_codes() -> None:
    (issue,) = validate_resource(with_(patient(), gender="mal"))
    assert issue.diagnostics == (
        "Patient.gender: 'mal' is not in the required value set "
        "http://hl7.org/fhir/ValueSet/administrative-gender (male | female | other | unknown)"
    )
    assert issue.expression == ("Patient.gender",)


def test_contained_resources_are_validated() -> None:
    resource = patient()
    resource["contained"] = [{"resourceType": "Patient", "id": "p2", "gender": "x", "name": [{"given": [""]}]}]
    resource["link"] = [{"other": {"reference": "#p2"}, "type": "seealso"}]
    expressions = {(i.code, i.expression[0]) for i in validate_resource(resource)}
    assert expressions == {
        ("code-invalid", "Patient.contained[0].gender"),
        ("value", "Patient.contained[0].name[0].given[0]"),
    }


def test_contained_resource_type_is_checked() -> None:
    resource = with_(patient(), contained=[{"resourceType": "Nope", "id": "a"}, {"id": "b"}, "x"])
    got = {(i.code, i.expression[0]) for i in validate_resource(resource) if i.code != "invariant"}
    assert got == {
        ("invalid", "Patient.contained[0].resourceType"),
        ("required", "Patient.contained[1]"),
        ("structure", "Patient.contained[2]"),
    }


def test_nested_contained_is_refused() -> None:
    inner = {
        "resourceType": "Organization",
        "id": "o",
        "name": "x",
        "contained": [{"resourceType": "Organization", "id": "o2", "name": "y"}],
    }
    resource = with_(patient(), contained=[inner], managingOrganization={"reference": "#o"})
    assert ("invariant", "Patient") in {(i.code, i.expression[0]) for i in validate_resource(resource)}


def test_unreferenced_contained_resource_fails_dom_3() -> None:
    resource = with_(patient(), contained=[{"resourceType": "Organization", "id": "o", "name": "x"}])
    (issue,) = validate_resource(resource)
    assert (issue.code, issue.expression, issue.diagnostics.split(":")[1].strip()) == (
        "invariant",
        ("Patient",),
        "constraint dom-3 failed",
    )


def test_bundle_entry_resources_are_validated() -> None:
    b = bundle()
    b["entry"][1]["resource"]["status"] = "bogus"
    b["entry"][0]["resource"]["unknownThing"] = 1
    got = {(i.code, i.expression[0]) for i in validate_resource(b)}
    assert got == {
        ("code-invalid", "Bundle.entry[1].resource.status"),
        ("processing", "Bundle.entry[0].resource.unknownThing"),
    }


def test_parameters_resource_is_validated() -> None:
    params = {
        "resourceType": "Parameters",
        "parameter": [{"name": "r", "resource": {"resourceType": "Patient", "active": "yes"}}],
    }
    (issue,) = [i for i in validate_resource(params) if i.severity == "error"]
    assert (issue.code, issue.expression) == ("structure", ("Parameters.parameter[0].resource.active",))


def test_content_reference_items_are_validated_at_depth() -> None:
    q = questionnaire(depth=3)
    q["item"][1]["item"][2]["item"][0]["type"] = "nonsense"
    q["item"][0]["item"][0]["item"][1].pop("linkId")
    got = {(i.code, i.expression[0]) for i in validate_resource(q) if i.code != "invariant"}
    assert got == {
        ("code-invalid", "Questionnaire.item[1].item[2].item[0].type"),
        ("required", "Questionnaire.item[0].item[0].item[1].linkId"),
    }


def test_all_errors_are_reported_together() -> None:
    resource = with_(
        patient(),
        gender="mal",
        birthDate="1974-13-01",
        active="yes",
        foo=1,
        name=[{"given": ["A", ""]}],
        contact=[{"gender": "male"}],
    )
    got = {(i.code, i.expression[0]) for i in validate_resource(resource)}
    assert got == {
        ("code-invalid", "Patient.gender"),
        ("value", "Patient.birthDate"),
        ("structure", "Patient.active"),
        ("processing", "Patient.foo"),
        ("value", "Patient.name[0].given[1]"),
        ("invariant", "Patient.contact[0]"),
    }


def test_lenient_turns_unknown_elements_into_warnings() -> None:
    resource = with_(patient(), foo=1, name=[{"family": "X", "bar": 2}], gender="mal")
    strict = {(i.severity, i.code, i.expression[0]) for i in validate_resource(resource)}
    lenient = {(i.severity, i.code, i.expression[0]) for i in validate_resource(resource, lenient=True)}
    assert strict == {
        ("error", "processing", "Patient.foo"),
        ("error", "processing", "Patient.name[0].bar"),
        ("error", "code-invalid", "Patient.gender"),
    }
    assert lenient == {
        ("warning", "processing", "Patient.foo"),
        ("warning", "processing", "Patient.name[0].bar"),
        ("error", "code-invalid", "Patient.gender"),
    }


def test_warning_constraints_give_warnings() -> None:
    resource = with_(patient(), text=...)
    (issue,) = validate_resource(resource)
    assert (issue.severity, issue.code, issue.expression) == ("warning", "invariant", ("Patient",))
    assert "dom-6" in issue.diagnostics
