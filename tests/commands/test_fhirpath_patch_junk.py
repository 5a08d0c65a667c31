"""FHIRPath Patch: malformed Parameters are refused with 400, and junk or random operations never
raise anything but a FhirError."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.commands.patching import apply_fhirpath_patch
from tests.commands.fhirpath_patch_helpers import PATIENT, op, params, rejected
from tests.helpers import applies_or_fails_cleanly

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
    applies_or_fails_cleanly(apply_fhirpath_patch, PATIENT, parameters)


@settings(max_examples=400, deadline=None)
@given(st.lists(operations(), max_size=4).map(lambda ops: {"resourceType": "Parameters", "parameter": ops}))
def test_random_operations_only_raise_fhir_error(parameters: object) -> None:
    _applies_or_fails_cleanly(parameters)


@settings(max_examples=200, deadline=None)
@given(JSON | st.fixed_dictionaries({"resourceType": st.just("Parameters"), "parameter": JSON}))
def test_junk_only_raises_fhir_error(parameters: object) -> None:
    _applies_or_fails_cleanly(parameters)
