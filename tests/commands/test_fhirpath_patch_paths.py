"""FHIRPath Patch applied to FHIR JSON: replace, move, several operations in one patch, and the
paths it accepts or refuses."""

from __future__ import annotations

import copy

import pytest

from app.commands.patching import apply_fhirpath_patch
from app.commands.patching.fhirpath_patch import parse_path
from tests.commands.fhirpath_patch_helpers import OBSERVATION, PATIENT, op, params, patched, rejected

# --- replace -------------------------------------------------------------------------------


def test_replace_primitive_keeps_its_extensions() -> None:
    result = patched(op("replace", "Patient.birthDate", value={"valueDate": "1975-01-01"}))
    assert result["birthDate"] == "1975-01-01"
    assert result["_birthDate"] == PATIENT["_birthDate"]


def test_replace_value_inside_where_match() -> None:
    result = patched(
        op("replace", "Patient.telecom.where(system='phone' and use='work').value", value={"valueString": "9"})
    )
    assert [t["value"] for t in result["telecom"]] == ["555-1", "p@example.org", "9"]


def test_replace_list_item_with_complex_value() -> None:
    result = patched(op("replace", "Patient.telecom[1]", value={"valueContactPoint": {"system": "sms", "value": "7"}}))
    assert result["telecom"][1] == {"system": "sms", "value": "7"}


def test_replace_with_parts() -> None:
    parts = [{"name": "family", "valueString": "Smith"}, {"name": "given", "valueString": "Ann"}]
    result = patched(op("replace", "Patient.name.where(use='usual')", value={"part": parts}))
    assert result["name"][1] == {"family": "Smith", "given": ["Ann"]}


def test_replace_of_several_matches_is_422() -> None:
    error = rejected(params(op("replace", "Patient.name.given", value={"valueString": "x"})), 422, "processing")
    assert error.diagnostics == (
        "FHIRPath Patch operation 0 (replace Patient.name.given): "
        "the path matches 3 elements; replace needs exactly one"
    )


def test_replace_of_nothing_is_422() -> None:
    error = rejected(params(op("replace", "Patient.gender", value={"valueCode": "male"})), 422, "processing")
    assert "matches no element" in error.diagnostics


def test_replace_choice_value_with_another_type() -> None:
    result = patched(op("replace", "Observation.value", value={"valueString": "heavy"}), resource=OBSERVATION)
    assert result["valueString"] == "heavy" and "valueQuantity" not in result
    assert list(result)[-2:] == ["component", "valueString"]


def test_replace_choice_value_named_by_its_full_name() -> None:
    result = patched(op("replace", "Observation.valueQuantity", value={"valueInteger": 3}), resource=OBSERVATION)
    assert result["valueInteger"] == 3 and "valueQuantity" not in result


def test_replace_choice_value_with_a_type_it_cannot_hold_is_422() -> None:
    operation = op("replace", "Observation.value", value={"valueHumanName": {"text": "x"}})
    rejected(params(operation), 422, "processing", OBSERVATION)


def test_replace_inside_oftype() -> None:
    operation = op("replace", "Observation.value.ofType(Quantity).value", value={"valueDecimal": 73.5})
    assert patched(operation, resource=OBSERVATION)["valueQuantity"] == {"value": 73.5, "unit": "kg"}


def test_where_on_choice_elements_uses_the_model() -> None:
    operation = op(
        "replace", "Observation.component.where(value.ofType(Quantity).value = 1).code.text", value={"valueString": "A"}
    )
    assert patched(operation, resource=OBSERVATION)["component"][0]["code"] == {"text": "A"}
    operation = op("delete", "Observation.component.where(value = 'two')")
    assert len(patched(operation, resource=OBSERVATION)["component"]) == 1


# --- move ----------------------------------------------------------------------------------


def test_move_forward_and_back() -> None:
    result = patched(op("move", "Patient.telecom", source=0, destination=2))
    assert [t["value"] for t in result["telecom"]] == ["p@example.org", "555-2", "555-1"]
    result = patched(op("move", "Patient.telecom", source=2, destination=0))
    assert [t["value"] for t in result["telecom"]] == ["555-2", "555-1", "p@example.org"]


def test_move_primitive_list_moves_extensions() -> None:
    resource = {**PATIENT, "name": [{"given": ["A", "B"], "_given": [{"id": "a"}, None]}]}
    result = patched(op("move", "Patient.name.given", source=0, destination=1), resource=resource)
    assert result["name"][0] == {"given": ["B", "A"], "_given": [None, {"id": "a"}]}


@pytest.mark.parametrize(("source", "destination"), [(3, 0), (0, 3), (-1, 0)])
def test_move_out_of_range_is_422(source: int, destination: int) -> None:
    rejected(params(op("move", "Patient.telecom", source=source, destination=destination)), 422, "processing")


# --- several operations, identity, immutability --------------------------------------------


def test_operations_apply_in_order() -> None:
    result = patched(
        op("add", "Patient", name="gender", value={"valueCode": "male"}),
        op("replace", "Patient.gender", value={"valueCode": "female"}),
        op("delete", "Patient.active"),
    )
    assert result["gender"] == "female" and "active" not in result


def test_a_failing_operation_names_its_index() -> None:
    parameters = params(op("delete", "Patient.active"), op("replace", "Patient.active", value={"valueBoolean": True}))
    error = rejected(parameters, 422, "processing")
    assert error.diagnostics.startswith("FHIRPath Patch operation 1 (replace Patient.active)")


@pytest.mark.parametrize(
    "operation",
    [
        op("replace", "Patient.id", value={"valueId": "p2"}),
        op("delete", "Patient.id"),
        op("replace", "Patient.resourceType", value={"valueString": "Person"}),
    ],
)
def test_cannot_change_type_or_id(operation: dict) -> None:
    error = rejected(params(operation), 422, "processing")
    assert error.diagnostics == "A PATCH cannot change the resource's type or id"


def test_inputs_are_not_mutated() -> None:
    before = copy.deepcopy(PATIENT)
    name_parts = [{"name": "family", "valueString": "X"}]
    identifier = {"system": "s", "value": "v"}
    parameters = params(
        op("add", "Patient", name="name", value={"part": name_parts}),
        op("insert", "Patient.identifier", value={"valueIdentifier": identifier}, index=0),
        op("replace", "Patient.birthDate", value={"valueDate": "2000"}),
        op("delete", "Patient.telecom[0]"),
        op("move", "Patient.name", source=0, destination=1),
        op("add", "Patient.name[0]", name="given", value={"valueString": "Z"}),
    )
    parameters_before = copy.deepcopy(parameters)
    result = apply_fhirpath_patch(PATIENT, parameters)
    assert PATIENT == before
    assert parameters == parameters_before
    result["identifier"][0]["value"] = "changed"
    assert identifier["value"] == "v"


def test_empty_patch_returns_an_equal_copy() -> None:
    result = apply_fhirpath_patch(PATIENT, {"resourceType": "Parameters"})
    assert result == PATIENT and result is not PATIENT


# --- paths ---------------------------------------------------------------------------------


def test_parse_path() -> None:
    assert parse_path("Patient.name[0].given") == [
        ("type", "Patient"),
        ("member", "name"),
        ("index", 0),
        ("member", "given"),
    ]
    assert parse_path("name . `family`") == [("member", "name"), ("member", "family")]
    assert parse_path("Patient.extension('http://x/a(b)')") == [("type", "Patient"), ("extension", "http://x/a(b)")]
    kinds = [kind for kind, _ in parse_path("Patient.telecom.where(value.contains(')')).skip(1).take(1).last()")]
    assert kinds == ["type", "member", "where", "skip", "take", "last"]


def test_paths_without_the_type_and_with_resource_or_domain_resource() -> None:
    assert "active" not in patched(op("delete", "active"))
    assert "active" not in patched(op("delete", "Resource.active"))
    assert "active" not in patched(op("delete", "DomainResource.active"))


def test_where_with_resource_variable() -> None:
    operation = op(
        "replace", "Patient.telecom.where(%resource.id = 'p1' and use = 'home').value", value={"valueString": "0"}
    )
    assert patched(operation)["telecom"][0]["value"] == "0"


def test_where_on_primitive_items() -> None:
    result = patched(op("delete", "Patient.name.given.where($this = 'James')"))
    assert result["name"][0]["given"] == ["Peter"]


def test_single_with_several_is_422() -> None:
    rejected(params(op("delete", "Patient.telecom.single()")), 422, "processing")


def test_tail_skip_take_last() -> None:
    assert patched(op("delete", "Patient.telecom.tail().first()"))["telecom"][1]["value"] == "555-2"
    assert patched(op("delete", "Patient.telecom.skip(2)"))["telecom"][-1]["value"] == "p@example.org"
    assert patched(op("delete", "Patient.telecom.take(1)"))["telecom"][0]["value"] == "p@example.org"
    assert patched(op("delete", "Patient.telecom.last()"))["telecom"][-1]["value"] == "p@example.org"


@pytest.mark.parametrize(
    "path",
    [
        "Patient.name.given.select($this)",
        "Patient.name[-1]",
        "Patient.name[x]",
        "Patient.where(",
        "Patient.telecom.where(system = )",
        "Patient..name",
        "Patient.name +",
        "(Patient.name)",
        "Patient.first(1)",
        "Patient.ofType('x')",
        "Patient.extension(url)",
        "Patient.name.resolve()",
    ],
)
def test_unsupported_or_invalid_paths_are_400(path: str) -> None:
    error = rejected(params(op("delete", path)), 400, "invalid")
    assert error.diagnostics.startswith(f"FHIRPath Patch operation 0 (delete {path})")
