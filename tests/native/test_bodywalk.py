"""The compiled walks of a parsed body (app/native/bodywalk.c) find what their Python references
find: the strings a transaction's references may rewrite (local, conditional or a named fullUrl,
with their paths, in document order), and the colons of orjson's rendering for the repeated-key
check."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app import native
from app.api.json_body import python_colons, read_json
from app.commands.references import Site, python_sites, sites
from tests.helpers import native_unbuildable

pytestmark = pytest.mark.skipif(native_unbuildable(native.bodywalk), reason="no C compiler: nothing compiled to test")

FULL_URL = "http://other.example/fhir/Patient/7"
_STRINGS = st.sampled_from(
    ["", "urn:uuid:1", "urn:oid:1.2", "urn", "urn:", "Patient?identifier=a|b", "?", "a:b::c", FULL_URL, "plain"]
) | st.text(alphabet=st.sampled_from("ab:?u rné😀"), max_size=8)
_KEYS = st.sampled_from(["reference", "url", "a:b", "value", "é:", "x"])
_SCALARS = st.integers(-(2**63), 2**64 - 1) | st.floats(allow_nan=False, allow_infinity=False) | st.booleans()
_VALUES = st.recursive(
    _STRINGS | _SCALARS | st.none(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_KEYS, inner, max_size=4),
    max_leaves=30,
)


@given(st.dictionaries(_KEYS, _VALUES, max_size=5), st.sampled_from([(), {FULL_URL}, {FULL_URL: 1}.keys(), ["plain"]]))
@settings(max_examples=600, deadline=None)
def test_the_compiled_walk_finds_the_python_walks_sites(resource: dict, urls: object) -> None:
    found = sites(resource, urls)  # type: ignore[arg-type]
    assert found == python_sites(resource, urls)  # type: ignore[arg-type]
    assert all(type(site) is Site for site in found)
    assert [type(step) for site in found for step in site.path] == [
        type(step)
        for site in python_sites(resource, urls)
        for step in site.path  # type: ignore[arg-type]
    ]


@given(_VALUES)
@settings(max_examples=600, deadline=None)
def test_the_compiled_count_is_orjsons_colons(value: object) -> None:
    assert native.bodywalk.colons(value) == python_colons(value)


def test_sites_paths_and_reference_flags() -> None:
    resource = {
        "subject": {"reference": "urn:uuid:abc"},
        "note": [{"text": "see Patient?name=x"}, "urn:oid:1.2"],
        "link": FULL_URL,
        "other": "http://elsewhere/Patient/1",
    }
    found = sites(resource, {FULL_URL})
    assert found == [
        Site(("subject", "reference"), "urn:uuid:abc", True),
        Site(("note", 0, "text"), "see Patient?name=x", False),
        Site(("note", 1), "urn:oid:1.2", False),
        Site(("link",), FULL_URL, False),
    ]
    assert found[0].local and not found[1].local and found[1].conditional is False


def test_a_body_nested_deeper_than_orjson_parses_is_walked() -> None:
    value: object = "urn:uuid:deep"
    for _ in range(1500):
        value = [value]
    found = sites({"a": value}, ())
    assert found[0].value == "urn:uuid:deep" and len(found[0].path) == 1501
    assert native.bodywalk.colons({"a": value}) == 3  # the key's and the two of urn:uuid:


def test_a_repeated_key_is_still_reported() -> None:
    body, issues = read_json(b'{"resourceType": "Patient", "gender": "male", "gender": "female"}')
    assert body == {"resourceType": "Patient", "gender": "female"}
    assert [i.diagnostics for i in issues] == [
        "Patient.gender: the key 'gender' appears 2 times in one JSON object; a key may appear only once"
    ]
    assert read_json(orjson.dumps({"resourceType": "Patient", "a:b": "c:d"}))[1] == []
