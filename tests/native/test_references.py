"""The compiled reference-row writer (app/native/references.c) appends the rows the Python writer
appends: UUID ids apart, the reference left out where ``type/id`` spells it, in the values' order."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app import native
from app.search_types import value_tuples
from app.search_types.row_writers import python_reference_rows, reference_rows
from app.search_types.value_tuples import python_reference_object
from tests.helpers import native_unbuildable

pytestmark = pytest.mark.skipif(native_unbuildable(native.references), reason="no C compiler: nothing compiled to test")

UUID = "9c7e591a-4084-54c1-9edc-91e87d47cf6c"
_TYPES = st.sampled_from([None, "", "Patient", "Practitioner"])
_IDS = st.sampled_from([None, "", "abc", UUID, UUID.upper(), UUID.replace("-", "_"), UUID[:35] + "g", UUID + "0"])
_VALUES = st.tuples(
    _TYPES,
    _IDS,
    st.one_of(st.none(), st.sampled_from(["Patient/abc", f"Patient/{UUID}", "urn:uuid:x", "#p1", "/abc"])),
    st.none() | st.just("2"),
    st.none() | st.just("http://sys"),
    st.none() | st.just("v"),
)


def _spelled(value: tuple) -> tuple:
    """The value with its reference spelled from its type and id (the common case)."""
    t, i, _, *rest = value
    return (t, i, f"{t}/{i}", *rest)


@given(st.lists(_VALUES | _VALUES.map(_spelled), max_size=6))
@settings(max_examples=800, deadline=None)
def test_the_compiled_writer_appends_the_python_writers_rows(values: list[tuple]) -> None:
    d = dict.fromkeys(values)
    compiled: dict[str, list] = {"reference": [("earlier",)]}
    python: dict[str, list] = {"reference": [("earlier",)]}
    reference_rows("subject", d, compiled, [])
    python_reference_rows("subject", d, python, [])
    assert repr(compiled) == repr(python)


def test_uuid_ids_and_spelled_references() -> None:
    out: dict[str, list] = {"reference": []}
    values = {
        ("Patient", UUID, f"Patient/{UUID}", None, None, None): None,
        ("Patient", "abc", "http://other/fhir/Patient/abc", None, None, None): None,
        (None, None, "urn:uuid:x", None, "http://sys", "v"): None,
    }
    reference_rows("subject", values, out, [])
    assert out["reference"] == [
        ("subject", "Patient", UUID, None, None, None, None),
        ("subject", "Patient", None, "abc", "http://other/fhir/Patient/abc", None, None),
        ("subject", None, None, None, "urn:uuid:x", "http://sys", "v"),
    ]


def test_a_value_of_another_shape_is_refused() -> None:
    with pytest.raises(TypeError, match="6-tuple"):
        reference_rows("subject", {("Patient", "abc"): None}, {"reference": []}, [])


_REFERENCE_TEXTS = st.sampled_from(
    ["Patient/abc", f"Patient/{UUID}", "Patient/", "Patient/a b", "Patient/" + "x" * 65, "Patient/" + "x" * 64,
     "NotAType/abc", "Patient/abc/_history/2", "http://s/fhir/Patient/abc", "urn:uuid:x", "#p1", "", "/abc", "Patient"]
)  # fmt: skip
_REFERENCES = st.fixed_dictionaries(
    {},
    optional={
        "reference": _REFERENCE_TEXTS | st.integers() | st.none(),
        "display": st.just("Dr X"),
        "type": st.sampled_from(["Patient", "Nope"]),
        "identifier": st.just({"system": "http://sys", "value": "v"}),
        "resourceType": st.just("Patient"),
        "id": st.just("abc"),
    },
)


@given(_REFERENCES)
@settings(max_examples=1500, deadline=None)
def test_the_compiled_reference_converter_adds_what_the_python_one_adds(value: dict) -> None:
    root = {"resourceType": "Observation", "contained": [{"resourceType": "Patient", "id": "p1"}]}
    compiled: dict = {"earlier": None}
    python: dict = {"earlier": None}
    value_tuples.reference_object(value, compiled, root)
    python_reference_object(value, python, root)
    assert repr(compiled) == repr(python)


def test_the_compiled_converter_is_the_one_the_row_functions_use() -> None:
    assert value_tuples.reference_object is native.references.reference_object  # type: ignore[union-attr]
    d: dict = {}
    value_tuples.reference_object({"reference": f"Patient/{UUID}", "display": "X"}, d, {})
    assert list(d) == [("Patient", UUID, f"Patient/{UUID}", None, None, None)]
