"""FHIRPath Patch (https://hl7.org/fhir/R4/fhirpatch.html) applied to FHIR JSON: pure functions, no
database."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.commands.patching import apply_fhirpath_patch
from app.commands.patching.fhirpath_patch import parse_path
from app.errors import FhirError

PATIENT = {
    "resourceType": "Patient",
    "id": "p1",
    "active": True,
    "identifier": [{"system": "http://hospital/mrn", "value": "123"}],
    "name": [
        {"use": "official", "family": "Chalmers", "given": ["Peter", "James"]},
        {"use": "usual", "given": ["Jim"]},
    ],
    "telecom": [
        {"system": "phone", "value": "555-1", "use": "home"},
        {"system": "email", "value": "p@example.org"},
        {"system": "phone", "value": "555-2", "use": "work"},
    ],
    "birthDate": "1974-12-25",
    "_birthDate": {"extension": [{"url": "http://x/birthTime", "valueDateTime": "1974-12-25T14:35:45-05:00"}]},
    "extension": [{"url": "http://x/eye-colour", "valueString": "blue"}],
}

OBSERVATION = {
    "resourceType": "Observation",
    "id": "o1",
    "status": "final",
    "code": {"text": "weight"},
    "valueQuantity": {"value": 72, "unit": "kg"},
    "component": [
        {"code": {"text": "a"}, "valueQuantity": {"value": 1}},
        {"code": {"text": "b"}, "valueString": "two"},
    ],
}


def op(kind: str, path: str, *, name: str | None = None, value: dict | None = None, **numbers: int) -> dict:
    """One ``operation`` parameter; ``value`` is the rest of the value part (``{"valueString": ..}``
    or ``{"part": [...]}``)."""
    parts = [{"name": "type", "valueCode": kind}, {"name": "path", "valueString": path}]
    if name is not None:
        parts.append({"name": "name", "valueString": name})
    if value is not None:
        parts.append({"name": "value", **value})
    parts += [{"name": key, "valueInteger": number} for key, number in numbers.items()]
    return {"name": "operation", "part": parts}


def params(*operations: dict) -> dict:
    return {"resourceType": "Parameters", "parameter": list(operations)}


def patched(*operations: dict, resource: dict = PATIENT) -> dict:
    return apply_fhirpath_patch(resource, params(*operations))


def rejected(parameters: object, status: int, code: str, resource: dict = PATIENT) -> FhirError:
    with pytest.raises(FhirError) as info:
        apply_fhirpath_patch(resource, parameters)
    assert (info.value.status, info.value.code) == (status, code), info.value.diagnostics
    return info.value


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


# --- malformed Parameters ------------------------------------------------------------------


@pytest.mark.parametrize(
    "parameters",
    [
        None,
        [],
        {"resourceType": "Bundle"},
        {"resourceType": "Parameters", "parameter": {}},
        params({"name": "op", "part": []}),
        params({"name": "operation"}),
        params({"name": "operation", "part": [{"name": "type", "valueCode": "add"}]}),
        params(op("upsert", "Patient")),
        params(op("delete", "")),
        params(op("add", "Patient", value={"valueCode": "x"})),
        params(op("add", "Patient", name="gender")),
        params(op("add", "Patient", name="bad name", value={"valueCode": "x"})),
        params(op("insert", "Patient.telecom", value={"valueString": "x"})),
        params(op("replace", "Patient.active")),
        params(op("move", "Patient.telecom", source=0)),
        params(op("replace", "Patient.active", value={"valueBoolean": True, "valueString": "x"})),
        params(op("replace", "Patient.active", value={})),
        params(op("replace", "Patient.active", value={"part": []})),
        params(op("replace", "Patient.active", value={"part": [{"valueString": "no name"}]})),
        params(op("add", "Patient", name="name", value={"part": [{"name": "family"}]})),
        params(
            {
                "name": "operation",
                "part": [
                    {"name": "type", "valueCode": "delete"},
                    {"name": "path", "valueString": "a"},
                    {"name": "path", "valueString": "b"},
                ],
            }
        ),
        params(
            {
                "name": "operation",
                "part": [{"name": "type", "valueCode": "delete"}, {"name": "paht", "valueString": "a"}],
            }
        ),
        params(
            {
                "name": "operation",
                "part": [{"name": "type", "valueString": "delete"}, {"name": "path", "valueString": "a"}],
            }
        ),
        params({"name": "operation", "part": [{"name": ["type"]}]}),
        params({"name": "operation", "part": [{"name": "type", "valueCode": ["delete"]}]}),
    ],
)
def test_malformed_parameters_are_400(parameters: object) -> None:
    rejected(parameters, 400, "invalid")


def test_index_must_be_an_integer() -> None:
    operation = op("move", "Patient.telecom", source=0, destination=1)
    operation["part"][-1] = {"name": "destination", "valueInteger": True}
    rejected(params(operation), 400, "invalid")
    operation["part"][-1] = {"name": "destination", "valueString": "1"}
    rejected(params(operation), 400, "invalid")


# --- property: junk never raises anything but FhirError ------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=10,
)
SEGMENTS = [
    "name",
    "given",
    "family",
    "telecom",
    "[0]",
    "[1]",
    "[5]",
    "where(system='phone')",
    "where(use='usual')",
    "where($this = 'Jim')",
    "first()",
    "last()",
    "tail()",
    "single()",
    "skip(1)",
    "take(1)",
    "ofType(string)",
    "extension('http://x/eye-colour')",
    "extension",
    "url",
    "value",
    "birthDate",
    "identifier",
    "id",
    "resourceType",
    "active",
    "contact",
    "`family`",
    "where(value.exists())",
    "where(%resource.id = 'p1')",
]
GOOD_PATHS = st.lists(st.sampled_from(SEGMENTS), max_size=4).map(
    lambda segments: "Patient" + "".join(s if s.startswith("[") else "." + s for s in segments)
)
JUNK_PATHS = st.text(max_size=20) | st.lists(
    st.sampled_from([*SEGMENTS, "where(", ")", "'", "..", "("]), min_size=1, max_size=4
).map(".".join)
NAMES = st.sampled_from(
    ["given", "gender", "name", "value", "deceased", "telecom", "extension", "url", "family", "x y"]
)
SUBPARTS = st.lists(
    st.fixed_dictionaries(
        {"name": NAMES},
        optional={"valueString": st.text(max_size=3), "valueCode": st.text(max_size=3), "valueBoolean": st.booleans()},
    ),
    max_size=3,
)
VALUE_PARTS = st.one_of(
    st.fixed_dictionaries({"valueString": st.text(max_size=5)}),
    st.fixed_dictionaries({"valueBoolean": st.booleans()}),
    st.fixed_dictionaries({"valueHumanName": st.fixed_dictionaries({}, optional={"family": st.text(max_size=3)})}),
    st.fixed_dictionaries({"part": SUBPARTS}),
    st.fixed_dictionaries({"part": st.lists(st.fixed_dictionaries({"name": NAMES, "part": SUBPARTS}), max_size=2)}),
    st.fixed_dictionaries({"resource": JSON}),
    st.fixed_dictionaries({"part": JSON}),
    st.fixed_dictionaries({}, optional={"valueString": st.text(max_size=5), "valueBoolean": st.booleans()}),
)


def rarely(draw: st.DrawFn) -> bool:
    return draw(st.sampled_from(range(10))) == 9


@st.composite
def operations(draw: st.DrawFn) -> dict:
    kind = draw(st.sampled_from(["add", "insert", "delete", "replace", "move", "add", "replace", "nope"]))
    path = draw(st.one_of(GOOD_PATHS, GOOD_PATHS, GOOD_PATHS, JUNK_PATHS))
    parts: list = [{"name": "type", "valueCode": kind}, {"name": "path", "valueString": path}]
    if kind == "add" or rarely(draw):
        parts.append({"name": "name", "valueString": draw(NAMES)})
    if kind in ("add", "insert", "replace") or rarely(draw):
        parts.append({"name": "value", **draw(VALUE_PARTS)})
    for key in ("index", "source", "destination"):
        if kind in ("insert", "move") or rarely(draw):
            parts.append({"name": key, "valueInteger": draw(JSON) if rarely(draw) else draw(st.integers(-1, 3))})
    if rarely(draw):
        parts.append(draw(JSON))
    return {"name": "operation", "part": draw(st.permutations(parts))}


def _applies_or_fails_cleanly(parameters: object) -> None:
    before = copy.deepcopy(PATIENT)
    try:
        result = apply_fhirpath_patch(PATIENT, parameters)
    except FhirError as error:
        assert error.status in (400, 422)
        assert "could not be applied" not in error.diagnostics, error.diagnostics
    else:
        assert result["resourceType"] == "Patient" and result["id"] == "p1"
    assert PATIENT == before


@settings(max_examples=400, deadline=None)
@given(st.lists(operations(), max_size=4).map(lambda ops: {"resourceType": "Parameters", "parameter": ops}))
def test_random_operations_only_raise_fhir_error(parameters: object) -> None:
    _applies_or_fails_cleanly(parameters)


@settings(max_examples=200, deadline=None)
@given(JSON | st.fixed_dictionaries({"resourceType": st.just("Parameters"), "parameter": JSON}))
def test_junk_only_raises_fhir_error(parameters: object) -> None:
    _applies_or_fails_cleanly(parameters)
