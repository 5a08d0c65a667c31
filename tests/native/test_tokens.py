"""The compiled token converter and row writer (app/native/tokens.c) add the values and append
the rows their Python references do: Codings and a CodeableConcept's text folded (ASCII lowered
here, the rest by ``normalize_string``), the token rows with their system hashes and type codes,
the empty row of a parameter with values but no row, and the text row of the distinct texts."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app import native
from app.search_types.row_writers import python_token_rows, token_rows
from app.search_types.text_document import MAX_CHARS
from app.search_types.value_tuples import python_token_coding, python_token_concept, token_coding, token_concept
from tests.helpers import native_unbuildable

pytestmark = pytest.mark.skipif(native_unbuildable(native.tokens), reason="no C compiler: nothing compiled to test")

_TEXTS = st.sampled_from(["", "abc", "ABC Déf", "x" * 3, "Ångström", "ﬁ", "e\u0301", "\u0301", "Hello World"])
_ANY = _TEXTS | st.none() | st.integers(0, 3) | st.just(["a"]) | st.text(max_size=6)
_CODING = st.fixed_dictionaries({}, optional={"system": _ANY, "code": _ANY, "display": _ANY, "version": _ANY})
_CONCEPT = st.fixed_dictionaries(
    {},
    optional={"coding": st.lists(_CODING | _ANY, max_size=4) | _CODING | _ANY, "text": _ANY},
)
_NULLABLE = st.none() | st.sampled_from(["", "http://loinc.org", "urn:oid:1.2", "sys"])
_OF_TYPE = st.lists(st.tuples(_NULLABLE, _NULLABLE), max_size=3).map(tuple)
_VALUE = st.tuples(_NULLABLE, _NULLABLE, st.none() | _TEXTS, _OF_TYPE)


@given(_CONCEPT, st.lists(_VALUE, max_size=2))
@settings(max_examples=800, deadline=None)
def test_the_compiled_converter_adds_the_python_converters_values(concept: dict, earlier: list) -> None:
    compiled, python = dict.fromkeys(earlier), dict.fromkeys(earlier)
    token_concept(concept, compiled, {})
    python_token_concept(concept, python, {})
    assert repr(list(compiled)) == repr(list(python))


@given(_CODING, st.lists(_VALUE, max_size=2))
@settings(max_examples=400, deadline=None)
def test_the_compiled_coding_converter_adds_the_python_converters_value(coding: dict, earlier: list) -> None:
    compiled, python = dict.fromkeys(earlier), dict.fromkeys(earlier)
    token_coding(coding, compiled, {})
    python_token_coding(coding, python, {})
    assert repr(list(compiled)) == repr(list(python))


@given(st.lists(_VALUE, max_size=6))
@settings(max_examples=800, deadline=None)
def test_the_compiled_writer_appends_the_python_writers_rows(values: list[tuple]) -> None:
    d = dict.fromkeys(values)
    compiled = {"token": [("earlier",)]}
    python = {"token": [("earlier",)]}
    compiled_texts: list[tuple] = [("before", "x")]
    python_texts: list[tuple] = [("before", "x")]
    token_rows("code", d, compiled, compiled_texts)
    python_token_rows("code", d, python, python_texts)
    assert repr(compiled) == repr(python)
    assert repr(compiled_texts) == repr(python_texts)


def test_a_concepts_codings_and_text() -> None:
    d: dict = {}
    token_concept(
        {
            "coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart RATE"}, {"code": ""}, "x"],
            "text": "Pulse Ångström",
        },
        d,
        {},
    )
    assert list(d) == [("http://loinc.org", "8867-4", "heart rate", ()), (None, None, "pulse angstrom", ())]


def test_rows_type_codes_the_empty_row_and_a_long_text() -> None:
    o: dict = {"token": []}
    texts: list[tuple] = []
    token_rows("identifier", {("sys", "v1", None, (("http://t", "MR"), (None, "SS"))): None}, o, texts)
    assert [row[2:] for row in o["token"]] == [("v1", "http://t|MR"), ("v1", "|SS")]
    assert o["token"][0][1] == o["token"][1][1] is not None  # the system's hash
    token_rows("category", {(None, None, "long " * MAX_CHARS, ()): None}, o, texts)
    assert o["token"][-1] == ("category", None, None, None)  # a text alone: the empty row
    assert texts == [("category", ("long " * MAX_CHARS)[:MAX_CHARS])]
