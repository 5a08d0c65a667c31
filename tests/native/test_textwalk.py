"""The compiled ``_content`` walk (app/native/textwalk.c) gives what the Python walks give, on any
JSON a resource can hold, at every cut, and is what this installation runs."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app import native
from app.search_types import text_document
from app.search_types.text_document import (
    MAX_CHARS,
    content_text,
    python_content_text,
    reference_content_text,
)
from tests.helpers import c_compiler, native_unbuildable

compiled = pytest.mark.skipif(native_unbuildable(native.textwalk), reason="no C compiler: nothing compiled to test")


class Code(str):
    """A str subclass (an enum's value, say): its text is prose like any other string's."""


_WORDS = st.sampled_from(
    ["Blood pressure", "2019-04-01", "2019-04-01T10:00:00Z", "http://loinc.org", "urn:oid:1.2", "12:30", "4",
     "²nd", "a:b", "café", "", "x" * 70, "Main St\tline\n2", "2019", "ftp:x", "85354-9"]
)  # fmt: skip
_KEYS = st.sampled_from(["text", "display", "id", "reference", "system", "meta", "url", "div", "data", "note", "k"])
_LEAVES = st.one_of(_WORDS, st.text(max_size=12), st.integers(), st.floats(allow_nan=False), st.booleans(), st.none())
_JSON = st.recursive(_LEAVES, lambda inner: st.lists(inner, max_size=5) | st.dictionaries(_KEYS, inner, max_size=5))
_RESOURCES = st.dictionaries(_KEYS | st.just("resourceType"), _JSON, max_size=8)


@compiled
@given(_RESOURCES)
@settings(max_examples=600, deadline=None)
def test_the_compiled_walk_is_the_python_walks(resource: dict) -> None:
    expected = reference_content_text(resource)
    assert content_text(resource) == expected
    assert python_content_text(resource) == expected


@compiled
@given(_RESOURCES, st.integers(min_value=0, max_value=60))
@settings(max_examples=400, deadline=None)
def test_the_text_is_cut_where_the_python_walk_cuts_it(resource: dict, cut: int) -> None:
    """At small cuts the walk stops early (once the distinct strings fill the cut): the text is the
    whole text's first ``cut`` characters all the same."""
    whole = python_content_text(resource)
    walk = native.textwalk.content_text  # type: ignore[union-attr]
    cut_text = walk(resource, text_document._NOT_CONTENT, text_document._SKIPPED_KEYS, cut)
    assert cut_text == whole[:cut]


@compiled
def test_subclasses_tuples_and_huge_resources() -> None:
    resource = {
        "resourceType": "Basic",
        "code": {"text": Code("Heart rate"), "coding": ({"display": "in a tuple: not walked"},)},
        "note": [{"text": f"word{i} " * 50} for i in range(2000)],
    }
    text = content_text(resource)
    assert text.startswith("Heart rate\nword0 ") and "tuple" not in text
    assert len(text) == MAX_CHARS == len(reference_content_text(resource))
    assert text == reference_content_text(resource)


_DATE_LIKE = st.text(st.sampled_from("0123456789٣²-T Z+:.x"), max_size=30)
_URI_LIKE = st.builds(
    lambda scheme, rest: scheme + rest,
    st.sampled_from(["http:", "https:", "urn:", "ftp:", "file:", "htt:", "mailto:", "HTTP:", "", "urn"]),
    st.text(st.sampled_from("ab/:. \t\u00a0\u2003"), max_size=8),
)


_UUID_LIKE = st.builds(
    lambda text, cut: text[:cut] + text[cut + 1 :] if cut % 7 == 0 else text,
    st.uuids().map(str) | st.uuids().map(lambda u: str(u).upper()) | st.text("0123456789abcdefgABF٣-", max_size=38),
    st.integers(0, 40),
)


@compiled
@given(st.one_of(_DATE_LIKE, _URI_LIKE, _UUID_LIKE, st.text(max_size=12)))
@settings(max_examples=3000, deadline=None)
def test_not_prose_is_the_python_pattern(text: str) -> None:
    """The compiled test of dates, URIs and UUIDs fullmatches what ``_NOT_PROSE`` does (digits of
    any script, whitespace as Python reads it, UUIDs of either case, cut or lengthened)."""
    expected = text_document._NOT_PROSE.fullmatch(text) is not None
    assert native.textwalk.not_prose(text) is expected  # type: ignore[union-attr]


@compiled
def test_dates_uris_and_uuids_are_not_prose() -> None:
    walk = native.textwalk.not_prose  # type: ignore[union-attr]
    for text in [
        "2019",
        "2019-04",
        "2019-04-01",
        "2019-04-01T10:00:00.5Z",
        "2019-04-01 10:00+02:00",
        "urn:x",
        "https:",
        "bfdd5f32-57cd-46a2-9c87-e0c68a3abb06",
        "BFDD5F32-57CD-46A2-9C87-E0C68A3ABB06",
    ]:
        assert walk(text), text
    for text in ["2019-04-01T", "2019-04-01TZ", "2019-04-01T10Z0", "201", "https: x", "12:30", "2019-4"] + [
        "bfdd5f32-57cd-46a2-9c87-e0c68a3abb0g",  # not hex
        "bfdd5f3257cd-46a2-9c87-e0c68a3abb06-",  # a dash out of place
        "bfdd5f32-57cd-46a2-9c87-e0c68a3abb061",  # 37 characters
    ]:
        assert not walk(text), text


def test_this_installation_runs_the_compiled_modules() -> None:
    """``pip install`` builds the extensions wherever a C compiler is at hand (as on CI): a build
    that broke would otherwise only show as a slower replay."""
    if c_compiler() is None:
        pytest.skip("no C compiler: the Python versions run")
    assert native.missing() == []


@compiled
def test_a_resource_nested_too_deep_is_an_error_as_in_python() -> None:
    """orjson parses 1,024 levels at most; nested deeper, both walks stop with a RecursionError
    rather than exhaust the stack."""
    deep: dict = {"text": "bottom"}
    for _ in range(3000):
        deep = {"a": [deep]}
    with pytest.raises(RecursionError):
        content_text({"resourceType": "Basic", "extension": deep})
    with pytest.raises(RecursionError):
        python_content_text({"resourceType": "Basic", "extension": deep})
