"""FHIRPath Patch (https://hl7.org/fhir/R4/fhirpatch.html) applied to FHIR JSON, pure functions, no
database: add, insert and delete (replace, move and paths: test_fhirpath_patch_paths.py; malformed
and random input: test_fhirpath_patch_junk.py)."""

from __future__ import annotations

import pytest

from tests.commands.fhirpath_patch_helpers import PATIENT, op, params, patched, rejected

# --- add -----------------------------------------------------------------------------------


def test_add_primitive() -> None:
    assert patched(op("add", "Patient", name="gender", value={"valueCode": "male"}))["gender"] == "male"


def test_add_to_a_repeating_element_appends() -> None:
    result = patched(op("add", "Patient.name[0]", name="given", value={"valueString": "Jr"}))
    assert result["name"][0]["given"] == ["Peter", "James", "Jr"]


def test_add_creates_a_list_for_a_repeating_element() -> None:
    result = patched(op("add", "Patient.name[1]", name="prefix", value={"valueString": "Mr"}))
    assert result["name"][1]["prefix"] == ["Mr"]


def test_add_identifier_as_typed_value() -> None:
    identifier = {"system": "http://other", "value": "X9"}
    result = patched(op("add", "Patient", name="identifier", value={"valueIdentifier": identifier}))
    assert result["identifier"] == [*PATIENT["identifier"], identifier]


def test_add_whole_human_name_from_parts() -> None:
    parts = [
        {"name": "use", "valueCode": "maiden"},
        {"name": "family", "valueString": "Windsor"},
        {"name": "given", "valueString": "Peter"},
        {"name": "period", "part": [{"name": "end", "valueDateTime": "2002"}]},
    ]
    result = patched(op("add", "Patient", name="name", value={"part": parts}))
    assert result["name"][-1] == {"use": "maiden", "family": "Windsor", "given": ["Peter"], "period": {"end": "2002"}}


def test_add_repeated_parts_become_a_list() -> None:
    parts = [{"name": "given", "valueString": "A"}, {"name": "given", "valueString": "B"}]
    result = patched(op("add", "Patient", name="name", value={"part": parts}))
    assert result["name"][-1] == {"given": ["A", "B"]}


def test_add_repeated_parts_of_a_single_element_is_422() -> None:
    parts = [{"name": "family", "valueString": "A"}, {"name": "family", "valueString": "B"}]
    error = rejected(params(op("add", "Patient", name="name", value={"part": parts})), 422, "processing")
    assert "does not repeat" in error.diagnostics


def test_add_backbone_element_from_nested_parts() -> None:
    parts = [
        {"name": "relationship", "valueCodeableConcept": {"text": "mother"}},
        {"name": "name", "part": [{"name": "family", "valueString": "Doe"}, {"name": "given", "valueString": "Jane"}]},
        {"name": "telecom", "valueContactPoint": {"system": "phone", "value": "1"}},
        {"name": "gender", "valueCode": "female"},
    ]
    result = patched(op("add", "Patient", name="contact", value={"part": parts}))
    assert result["contact"] == [
        {
            "relationship": [{"text": "mother"}],
            "name": {"family": "Doe", "given": ["Jane"]},
            "telecom": [{"system": "phone", "value": "1"}],
            "gender": "female",
        }
    ]


def test_add_extension_from_parts_types_the_choice_element() -> None:
    parts = [{"name": "url", "valueUri": "http://x/flag"}, {"name": "value", "valueBoolean": True}]
    result = patched(op("add", "Patient", name="extension", value={"part": parts}))
    assert result["extension"][-1] == {"url": "http://x/flag", "valueBoolean": True}


def test_add_choice_element_by_stem_uses_the_value_type() -> None:
    result = patched(op("add", "Patient", name="deceased", value={"valueBoolean": False}))
    assert result["deceasedBoolean"] is False


def test_add_choice_element_by_full_name() -> None:
    result = patched(op("add", "Patient", name="deceasedDateTime", value={"valueDateTime": "2020"}))
    assert result["deceasedDateTime"] == "2020"


def test_add_choice_element_already_set_under_another_type_is_422() -> None:
    resource = {**PATIENT, "deceasedBoolean": False}
    operation = op("add", "Patient", name="deceased", value={"valueDateTime": "2020"})
    rejected(params(operation), 422, "processing", resource)


def test_add_existing_single_element_is_422() -> None:
    error = rejected(params(op("add", "Patient", name="birthDate", value={"valueDate": "2000"})), 422, "processing")
    assert error.diagnostics.startswith("FHIRPath Patch operation 0 (add Patient): 'birthDate' already has a value")
    assert error.expression == ("Parameters.parameter[0]",)


def test_add_unknown_element_is_422() -> None:
    error = rejected(params(op("add", "Patient", name="colour", value={"valueString": "x"})), 422, "processing")
    assert "not an element of Patient" in error.diagnostics


def test_add_to_a_path_with_several_matches_is_422() -> None:
    error = rejected(params(op("add", "Patient.name", name="text", value={"valueString": "x"})), 422, "processing")
    assert "matches 2 elements" in error.diagnostics


def test_add_to_nothing_is_422() -> None:
    rejected(params(op("add", "Patient.contact", name="gender", value={"valueCode": "x"})), 422, "processing")


def test_add_to_a_primitive_is_422() -> None:
    rejected(params(op("add", "Patient.birthDate", name="x", value={"valueString": "x"})), 422, "processing")


def test_add_contained_resource() -> None:
    practitioner = {"resourceType": "Practitioner", "id": "pr1"}
    operation = op("add", "Patient", name="contained", value={"resource": practitioner})
    assert patched(operation)["contained"] == [practitioner]


def test_add_inside_a_where_match() -> None:
    operation = op("add", "Patient.name.where(use='usual')", name="family", value={"valueString": "Chalmers"})
    assert patched(operation)["name"][1] == {"use": "usual", "given": ["Jim"], "family": "Chalmers"}


# --- insert --------------------------------------------------------------------------------


def test_insert_at_start_middle_and_end() -> None:
    result = patched(
        op("insert", "Patient.name[0].given", value={"valueString": "A"}, index=0),
        op("insert", "Patient.name[0].given", value={"valueString": "B"}, index=2),
        op("insert", "Patient.name[0].given", value={"valueString": "C"}, index=4),
    )
    assert result["name"][0]["given"] == ["A", "Peter", "B", "James", "C"]


def test_insert_complex_value() -> None:
    identifier = {"system": "http://other", "value": "1"}
    result = patched(op("insert", "Patient.identifier", value={"valueIdentifier": identifier}, index=0))
    assert result["identifier"] == [identifier, *PATIENT["identifier"]]


def test_insert_from_parts() -> None:
    parts = [{"name": "system", "valueCode": "fax"}, {"name": "value", "valueString": "9"}]
    result = patched(op("insert", "Patient.telecom", value={"part": parts}, index=1))
    assert result["telecom"][1] == {"system": "fax", "value": "9"}
    assert len(result["telecom"]) == 4


def test_insert_into_a_missing_list_creates_it() -> None:
    operation = op("insert", "Patient.address", value={"valueAddress": {"city": "Oz"}}, index=0)
    assert patched(operation)["address"] == [{"city": "Oz"}]


@pytest.mark.parametrize("index", [-1, 4])
def test_insert_index_out_of_range_is_422(index: int) -> None:
    operation = op("insert", "Patient.telecom", value={"valueContactPoint": {}}, index=index)
    error = rejected(params(operation), 422, "processing")
    assert "out of range" in error.diagnostics


def test_insert_into_a_single_element_is_422() -> None:
    operation = op("insert", "Patient.birthDate", value={"valueDate": "2000"}, index=0)
    rejected(params(operation), 422, "processing")


def test_insert_path_must_end_with_a_name() -> None:
    operation = op("insert", "Patient.telecom.where(system='phone')", value={"valueContactPoint": {}}, index=0)
    rejected(params(operation), 400, "invalid")


def test_insert_into_the_list_of_a_filtered_parent() -> None:
    operation = op("insert", "Patient.name.where(use='usual').given", value={"valueString": "J"}, index=1)
    assert patched(operation)["name"][1]["given"] == ["Jim", "J"]


# --- delete --------------------------------------------------------------------------------


def test_delete_single_element() -> None:
    result = patched(op("delete", "Patient.active"))
    assert "active" not in result


def test_delete_primitive_drops_its_extensions() -> None:
    result = patched(op("delete", "Patient.birthDate"))
    assert "birthDate" not in result and "_birthDate" not in result


def test_delete_list_item_by_where() -> None:
    result = patched(op("delete", "Patient.telecom.where(system='email')"))
    assert [t["system"] for t in result["telecom"]] == ["phone", "phone"]


def test_delete_list_item_by_index() -> None:
    result = patched(op("delete", "Patient.name[0].given[1]"))
    assert result["name"][0]["given"] == ["Peter"]


def test_delete_primitive_list_item_keeps_extensions_aligned() -> None:
    resource = {**PATIENT, "name": [{"given": ["A", "B", "C"], "_given": [None, {"id": "b"}, {"id": "c"}]}]}
    result = patched(op("delete", "Patient.name.given[1]"), resource=resource)
    assert result["name"][0] == {"given": ["A", "C"], "_given": [None, {"id": "c"}]}
    result = patched(op("delete", "Patient.name.given[2]"), op("delete", "Patient.name.given[1]"), resource=resource)
    assert result["name"][0] == {"given": ["A"]}


def test_delete_last_item_removes_the_list() -> None:
    result = patched(op("delete", "Patient.identifier[0]"))
    assert "identifier" not in result


def test_delete_of_nothing_is_a_no_op() -> None:
    assert patched(op("delete", "Patient.contact")) == PATIENT
    assert patched(op("delete", "Patient.telecom.where(system='fax')")) == PATIENT
    assert patched(op("delete", "Patient.name[7]")) == PATIENT
    assert patched(op("delete", "Observation.status")) == PATIENT


def test_delete_of_several_is_422() -> None:
    error = rejected(params(op("delete", "Patient.telecom.where(system='phone')")), 422, "processing")
    assert "matches 2 elements" in error.diagnostics


def test_delete_first_of_several() -> None:
    result = patched(op("delete", "Patient.telecom.where(system='phone').first()"))
    assert [t["value"] for t in result["telecom"]] == ["p@example.org", "555-2"]


def test_delete_extension_by_url() -> None:
    assert "extension" not in patched(op("delete", "Patient.extension('http://x/eye-colour')"))


def test_delete_whole_resource_is_422() -> None:
    rejected(params(op("delete", "Patient")), 422, "processing")
