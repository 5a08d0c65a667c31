"""JSON Patch (RFC 6902) applied to FHIR JSON: pure functions, no database."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.commands.patching import apply_json_patch
from app.commands.patching.json_patch import json_equal, parse_pointer
from app.errors import FhirError
from tests.helpers import applies_or_fails_cleanly

PATIENT = {
    "resourceType": "Patient",
    "id": "p1",
    "active": True,
    "name": [{"family": "Chalmers", "given": ["Peter", "James"]}, {"use": "usual", "given": ["Jim"]}],
    "telecom": [{"system": "phone", "value": "555"}],
    "extension": [{"url": "http://x/a~b/c", "valueString": "odd key"}],
    "a/b": 1,
    "m~n": 2,
}


def patched(*operations: dict) -> dict:
    return apply_json_patch(PATIENT, list(operations))


def rejected(patch: object, status: int, code: str) -> FhirError:
    with pytest.raises(FhirError) as info:
        apply_json_patch(PATIENT, patch)
    assert (info.value.status, info.value.code) == (status, code), info.value.diagnostics
    return info.value


# --- add -----------------------------------------------------------------------------------


def test_add_new_member() -> None:
    assert patched({"op": "add", "path": "/gender", "value": "male"})["gender"] == "male"


def test_add_existing_member_replaces_it() -> None:
    assert patched({"op": "add", "path": "/active", "value": False})["active"] is False


def test_add_into_array_at_index_inserts() -> None:
    result = patched({"op": "add", "path": "/name/0/given/1", "value": "Middle"})
    assert result["name"][0]["given"] == ["Peter", "Middle", "James"]


def test_add_at_index_zero_and_at_length() -> None:
    result = patched(
        {"op": "add", "path": "/name/0/given/0", "value": "First"},
        {"op": "add", "path": "/name/0/given/3", "value": "Last"},
    )
    assert result["name"][0]["given"] == ["First", "Peter", "James", "Last"]


def test_add_dash_appends() -> None:
    result = patched({"op": "add", "path": "/name/-", "value": {"family": "New"}})
    assert result["name"][-1] == {"family": "New"}
    assert len(result["name"]) == 3


def test_add_whole_complex_value() -> None:
    identifier = {"system": "http://hospital/mrn", "value": "123", "type": {"text": "MRN"}}
    result = patched({"op": "add", "path": "/identifier", "value": [identifier]})
    assert result["identifier"] == [identifier]


def test_add_index_past_end_is_422() -> None:
    error = rejected([{"op": "add", "path": "/name/5", "value": {}}], 422, "processing")
    assert "operation 0 (add /name/5)" in error.diagnostics


def test_add_with_missing_parent_is_422() -> None:
    rejected([{"op": "add", "path": "/contact/0/name", "value": {}}], 422, "processing")


def test_add_below_a_primitive_is_422() -> None:
    rejected([{"op": "add", "path": "/active/x", "value": 1}], 422, "processing")


def test_add_null_value_is_allowed() -> None:
    assert patched({"op": "add", "path": "/gender", "value": None})["gender"] is None


# --- remove --------------------------------------------------------------------------------


def test_remove_member() -> None:
    assert "telecom" not in patched({"op": "remove", "path": "/telecom"})


def test_remove_array_item_shifts_the_rest() -> None:
    result = patched({"op": "remove", "path": "/name/0"})
    assert result["name"] == [{"use": "usual", "given": ["Jim"]}]


def test_remove_missing_is_422_naming_index_and_path() -> None:
    error = rejected(
        [{"op": "test", "path": "/id", "value": "p1"}, {"op": "remove", "path": "/gender"}], 422, "processing"
    )
    assert error.diagnostics.startswith("JSON Patch operation 1 (remove /gender): the path does not exist")


def test_remove_dash_is_422() -> None:
    rejected([{"op": "remove", "path": "/name/-"}], 422, "processing")


def test_remove_whole_document_is_422() -> None:
    rejected([{"op": "remove", "path": ""}], 422, "processing")


# --- replace -------------------------------------------------------------------------------


def test_replace_member_keeps_key_order() -> None:
    result = patched({"op": "replace", "path": "/active", "value": False})
    assert result["active"] is False
    assert list(result) == list(PATIENT)


def test_replace_array_item() -> None:
    result = patched({"op": "replace", "path": "/name/1/given/0", "value": "Jimmy"})
    assert result["name"][1]["given"] == ["Jimmy"]


def test_replace_missing_path_is_422_with_the_documented_message() -> None:
    patch = [{"op": "add", "path": "/gender", "value": "male"}, {"op": "test", "path": "/gender", "value": "male"}]
    patch.append({"op": "replace", "path": "/name/3/family", "value": "X"})
    error = rejected(patch, 422, "processing")
    assert error.diagnostics.startswith("JSON Patch operation 2 (replace /name/3/family): the path does not exist")


def test_replace_missing_member_is_422() -> None:
    rejected([{"op": "replace", "path": "/gender", "value": "male"}], 422, "processing")


def test_replace_whole_document() -> None:
    replacement = {"resourceType": "Patient", "id": "p1", "gender": "female"}
    assert patched({"op": "replace", "path": "", "value": replacement}) == replacement


# --- move and copy -------------------------------------------------------------------------


def test_move_member() -> None:
    result = patched({"op": "move", "from": "/telecom/0", "path": "/telecom/-"})
    assert result["telecom"] == PATIENT["telecom"]
    result = patched({"op": "move", "from": "/name/1/given", "path": "/name/0/suffix"})
    assert result["name"] == [{"family": "Chalmers", "given": ["Peter", "James"], "suffix": ["Jim"]}, {"use": "usual"}]


def test_move_within_array() -> None:
    result = patched({"op": "move", "from": "/name/0/given/0", "path": "/name/0/given/1"})
    assert result["name"][0]["given"] == ["James", "Peter"]


def test_move_to_same_place_is_a_no_op() -> None:
    assert patched({"op": "move", "from": "/active", "path": "/active"}) == PATIENT


def test_move_into_own_child_is_400() -> None:
    rejected([{"op": "move", "from": "/name", "path": "/name/0/x"}], 400, "invalid")


def test_move_from_missing_is_422() -> None:
    error = rejected([{"op": "move", "from": "/gender", "path": "/sex"}], 422, "processing")
    assert "'from' path does not exist" in error.diagnostics


def test_copy_is_deep() -> None:
    result = patched({"op": "copy", "from": "/name/0", "path": "/name/-"})
    assert result["name"][2] == result["name"][0]
    assert result["name"][2] is not result["name"][0]


def test_copy_into_own_child_is_allowed() -> None:
    result = patched({"op": "copy", "from": "/telecom/0", "path": "/telecom/0/copy"})
    assert result["telecom"][0]["copy"] == {"system": "phone", "value": "555"}


# --- test ----------------------------------------------------------------------------------


def test_test_passes_and_changes_nothing() -> None:
    assert patched({"op": "test", "path": "/name/0/given", "value": ["Peter", "James"]}) == PATIENT


def test_test_compares_objects_unordered() -> None:
    patched({"op": "test", "path": "/telecom/0", "value": {"value": "555", "system": "phone"}})


def test_failing_test_is_422_and_nothing_applies() -> None:
    patch = [{"op": "replace", "path": "/active", "value": False}, {"op": "test", "path": "/active", "value": True}]
    error = rejected(patch, 422, "processing")
    assert error.diagnostics.startswith("JSON Patch operation 1 (test /active): the test failed")
    assert PATIENT["active"] is True


def test_test_true_is_not_one() -> None:
    rejected([{"op": "test", "path": "/active", "value": 1}], 422, "processing")
    rejected([{"op": "test", "path": "/a~1b", "value": True}], 422, "processing")


def test_test_numbers_by_value() -> None:
    patched({"op": "test", "path": "/a~1b", "value": 1.0})


def test_test_on_missing_path_is_422() -> None:
    rejected([{"op": "test", "path": "/gender", "value": None}], 422, "processing")


def test_test_null_value() -> None:
    result = patched({"op": "add", "path": "/x", "value": None}, {"op": "test", "path": "/x", "value": None})
    assert result["x"] is None


# --- pointers ------------------------------------------------------------------------------


def test_pointer_escapes() -> None:
    assert parse_pointer("/a~1b/m~0n/~01") == ["a/b", "m~n", "~1"]
    assert parse_pointer("") == []
    assert parse_pointer("/") == [""]


def test_escaped_keys_in_patches() -> None:
    result = patched(
        {"op": "test", "path": "/a~1b", "value": 1},
        {"op": "test", "path": "/m~0n", "value": 2},
        {"op": "replace", "path": "/m~0n", "value": 3},
        {"op": "test", "path": "/extension/0/url", "value": "http://x/a~b/c"},
    )
    assert result["m~n"] == 3


@pytest.mark.parametrize("pointer", ["name", "~", "/a~2", "/a~", "#/name"])
def test_bad_pointer_is_400(pointer: str) -> None:
    error = rejected([{"op": "remove", "path": pointer}], 400, "invalid")
    assert "JSON Pointer" in error.diagnostics


@pytest.mark.parametrize("index", ["01", "-1", "1.0", "x", " 1"])
def test_non_index_tokens_on_arrays_are_422(index: str) -> None:
    rejected([{"op": "replace", "path": f"/name/{index}", "value": {}}], 422, "processing")


# --- malformed documents -------------------------------------------------------------------


@pytest.mark.parametrize("patch", [{}, None, "[]", 3, {"op": "add", "path": "/a", "value": 1}])
def test_patch_must_be_a_list(patch: object) -> None:
    rejected(patch, 400, "invalid")


@pytest.mark.parametrize(
    "operation",
    [
        "add",
        [],
        {},
        {"op": "frobnicate", "path": "/a"},
        {"op": 1, "path": "/a"},
        {"op": "add", "value": 1},
        {"op": "add", "path": 5, "value": 1},
        {"op": "add", "path": "/a"},
        {"op": "replace", "path": "/active"},
        {"op": "test", "path": "/active"},
        {"op": "move", "path": "/a"},
        {"op": "copy", "path": "/a", "from": None},
        {"op": "ADD", "path": "/a", "value": 1},
    ],
)
def test_malformed_operation_is_400(operation: object) -> None:
    error = rejected([operation], 400, "invalid")
    assert "operation 0" in error.diagnostics


def test_unknown_members_are_ignored() -> None:
    assert patched({"op": "add", "path": "/gender", "value": "male", "comment": "x"})["gender"] == "male"


def test_empty_patch_returns_an_equal_copy() -> None:
    result = apply_json_patch(PATIENT, [])
    assert result == PATIENT and result is not PATIENT


# --- identity and immutability -------------------------------------------------------------


@pytest.mark.parametrize(
    "operation",
    [
        {"op": "replace", "path": "/id", "value": "other"},
        {"op": "remove", "path": "/id"},
        {"op": "replace", "path": "/resourceType", "value": "Practitioner"},
        {"op": "move", "from": "/id", "path": "/identifier"},
        {"op": "replace", "path": "", "value": {"resourceType": "Patient", "id": "p2"}},
        {"op": "replace", "path": "", "value": [1]},
    ],
)
def test_cannot_change_type_or_id(operation: dict) -> None:
    error = rejected([operation], 422, "processing")
    assert "type or id" in error.diagnostics or "must produce a resource" in error.diagnostics


def test_changing_id_and_back_is_fine() -> None:
    result = patched({"op": "replace", "path": "/id", "value": "x"}, {"op": "replace", "path": "/id", "value": "p1"})
    assert result["id"] == "p1"


def test_input_and_patch_are_not_mutated() -> None:
    before = copy.deepcopy(PATIENT)
    value = {"family": "Added", "given": ["A"]}
    patch = [
        {"op": "add", "path": "/name/-", "value": value},
        {"op": "remove", "path": "/name/0/given/0"},
        {"op": "replace", "path": "/telecom/0/value", "value": "999"},
        {"op": "move", "from": "/extension", "path": "/modifierExtension"},
        {"op": "copy", "from": "/name/1", "path": "/name/-"},
    ]
    patch_before = copy.deepcopy(patch)
    result = apply_json_patch(PATIENT, patch)
    assert PATIENT == before
    assert patch == patch_before
    result["name"][-1]["given"].append("changed")
    assert value == {"family": "Added", "given": ["A"]}
    assert PATIENT == before


def test_failed_patch_leaves_input_untouched() -> None:
    before = copy.deepcopy(PATIENT)
    rejected([{"op": "remove", "path": "/name"}, {"op": "remove", "path": "/nothing"}], 422, "processing")
    assert PATIENT == before


def test_json_equal() -> None:
    assert json_equal({"a": [1, {"b": None}]}, {"a": [1.0, {"b": None}]})
    assert not json_equal([1, 2], [2, 1])
    assert not json_equal(False, 0)
    assert not json_equal("1", 1)
    assert not json_equal({"a": 1}, {"a": 1, "b": 2})


# --- property: junk never raises anything but FhirError ------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)
POINTERS = st.one_of(
    st.text(max_size=12),
    st.just(""),
    st.lists(
        st.sampled_from(["name", "0", "1", "-", "given", "telecom", "id", "~0", "~1", "~", "01", "resourceType", ""]),
        max_size=4,
    ).map(lambda tokens: "".join("/" + t for t in tokens)),
)
JUNK_OPERATIONS = st.fixed_dictionaries(
    {"op": st.sampled_from(["add", "remove", "replace", "move", "copy", "test", "bogus"]) | JSON},
    optional={"path": POINTERS | JSON, "from": POINTERS | JSON, "value": JSON},
)
WELL_FORMED_OPERATIONS = st.fixed_dictionaries(
    {"op": st.sampled_from(["add", "remove", "replace", "move", "copy", "test"]), "path": POINTERS, "from": POINTERS},
    optional={"value": JSON},
)
OPERATIONS = WELL_FORMED_OPERATIONS | JUNK_OPERATIONS


def _applies_or_fails_cleanly(patch: object) -> None:
    applies_or_fails_cleanly(apply_json_patch, PATIENT, patch)


@settings(max_examples=400, deadline=None)
@given(st.lists(OPERATIONS, max_size=5) | JSON)
def test_junk_patches_only_raise_fhir_error(patch: object) -> None:
    _applies_or_fails_cleanly(patch)
