"""The generated row function of each resource type (app/search_types/row_plan.py) gives exactly
the rows of the reference path (extract_all, each type's add_rows, text_rows): over real Synthea
resources, dense resources of every R4 type (every element populated, every choice variant),
randomly damaged resources, and with custom SearchParameters coming and going."""

from __future__ import annotations

import copy
import gzip
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.fhirspec.search_parameters import SearchParam, register, unregister
from app.projections.search_index import reference_rows_of, rows_of
from app.search_types import value_tuples
from app.search_types.date import _range
from app.search_types.text_document import content_text, reference_content_text
from app.search_types.value_tuples import date_range
from tests.search_extract.dense import all_dense

SYNTHEA = Path(__file__).resolve().parents[1] / "data" / "synthea"


def _synthea() -> list[dict]:
    out = []
    for path in sorted(SYNTHEA.glob("*.json.gz")):
        bundle = orjson.loads(gzip.open(path).read())
        out.extend(e["resource"] for e in bundle["entry"])
    return out


def _same_rows(resource: dict) -> None:
    new, old = rows_of(resource), reference_rows_of(resource)
    for kind in old:
        # repr: Decimal('1.0') == Decimal('1') and equal datetimes in two zones would hide a change
        assert repr(new[kind]) == repr(old[kind]), (resource.get("resourceType"), resource.get("id"), kind)
    assert new.keys() == old.keys()


def test_every_synthea_resource_gets_the_reference_rows():
    resources = _synthea()
    assert len(resources) > 100
    assert sum(len(rows) for r in resources for rows in rows_of(r).values()) > 1_500
    for resource in resources:
        _same_rows(resource)


def test_dense_resources_of_every_type_get_the_reference_rows():
    dense = all_dense()
    assert len(dense) > 140
    for resources in dense.values():
        for resource in resources:
            _same_rows(resource)


@pytest.mark.parametrize(
    "codes",
    [
        {"code"},
        {"category", "value-quantity"},
        {"code-value-concept"},
        {"_id", "status"},
        {"combo-code"},
        {"gender", "name"},
    ],
    ids=str,
)
def test_a_reindex_of_some_parameters_gets_the_reference_rows(codes: set[str]):
    """The rows of only some parameters (a custom parameter's reindex): theirs alone, no whole-resource
    text, the same rows as the reference path, for every resource; none of another parameter."""
    only = frozenset(codes)
    found = 0
    for resource in _synthea():
        new, old = rows_of(resource, only), reference_rows_of(resource, only)
        assert {k: repr(v) for k, v in new.items()} == {k: repr(v) for k, v in old.items()}, resource.get("id")
        assert all(row[0] in only for rows in new.values() for row in rows)
        found += sum(len(rows) for rows in new.values())
    assert found > 0


def test_content_text_is_the_reference_walk():
    for resource in _synthea()[:300] + [r for rs in all_dense().values() for r in rs[:2]]:
        assert content_text(resource) == reference_content_text(resource)


def test_a_huge_resource_keeps_the_first_characters_of_its_content():
    resource = {"resourceType": "Basic", "note": [{"text": f"word{i} " * 50} for i in range(2000)]}
    assert len(content_text(resource)) == 100_000
    assert content_text(resource) == reference_content_text(resource)


_DATES = st.one_of(
    st.from_regex(
        r"\A[0-9]{4}(-[0-9]{2}(-[0-9]{2}(T[0-9]{2}(:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,9})?)?)?"
        r"(Z|[+-][0-9]{2}:[0-9]{2})?)?)?)?\Z"
    ),
    st.text(alphabet="0123456789-T:.Z+ ", max_size=30),
    st.sampled_from(
        ["9999-12-31", "9999-12-31T23:59:59Z", "0001-01-01T00:00:00+01:00", "2020-02-30", "2020-01-01T24:00:00Z"]
    ),
)


@given(_DATES)
@settings(max_examples=400, deadline=None)
def test_fast_dates_are_parse_range(text: str):
    assert repr(date_range(text)) == repr(_range(text))
    assert repr(date_range(text)) == repr(_range(text))  # the remembered answer


def test_remembered_ranges_stay_bounded():
    for day in range(value_tuples._RANGES_KEPT + 10):
        text = f"{1900 + day // 365:04d}-01-01T00:00:{day % 60:02d}Z"
        assert date_range(text) == _range(text)
        assert len(value_tuples._RANGES) <= value_tuples._RANGES_KEPT


_KEYS = ["coding", "system", "code", "display", "text", "value", "reference", "type", "start", "end", "unit", "id"]
_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-3, 3)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from(["", "x", "Patient/1", "urn:uuid:1", "#c1", "2020-01-02", "http://loinc.org", "Åb", "1|2"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(_KEYS), inner, max_size=4),
    max_leaves=8,
)


def _paths(value: object, path: tuple = ()) -> list[tuple]:
    out = [path] if path else []
    if isinstance(value, dict):
        for key, item in value.items():
            out += _paths(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            out += _paths(item, (*path, i))
    return out


@given(st.data())
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_damaged_resources_get_the_reference_rows(data: st.DataObject):
    """Any element replaced by any JSON value: malformed nodes are skipped alike."""
    resources = _sample()
    resource = copy.deepcopy(data.draw(st.sampled_from(resources)))
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(_paths(resource)))
        holder = resource
        for step in path[:-1]:
            holder = holder[step]
        if path[-1] not in ("resourceType",):
            holder[path[-1]] = data.draw(_JSON)
    _same_rows(resource)


_cache: list[dict] = []


def _sample() -> list[dict]:
    if not _cache:
        synthea = _synthea()
        _cache.extend(synthea[::7])
        _cache.extend(rs[0] for rs in all_dense().values())
    return _cache


CUSTOM = [
    {"code": "nick", "type": "string", "expression": "Patient.name.where(use='nickname').given"},
    {"code": "coded-value", "type": "token", "expression": "Observation.value.ofType(CodeableConcept).coding"},
    {"code": "sel", "type": "string", "expression": "Patient.name.given.select($this.substring(0, 2))"},
    {"code": "birth-ext", "type": "date", "expression": "Patient.extension('http://x/birth').value"},
]


@pytest.mark.parametrize("custom", CUSTOM, ids=[c["code"] for c in CUSTOM])
def test_custom_parameters_come_and_go(custom: dict):
    base = custom["expression"].split(".")[0]
    url = f"http://example.org/sp/{custom['code']}"
    resource = {
        "resourceType": base,
        "id": "p1",
        "name": [{"use": "nickname", "given": ["Bobby"]}, {"given": ["Robert"]}],
        "extension": [{"url": "http://x/birth", "valueDateTime": "2001-02-03"}],
        "valueCodeableConcept": {"coding": [{"system": "http://s", "code": "c"}]},
    }
    before = rows_of(resource)
    param = register(SearchParam.from_resource({"url": url, "base": [base], **custom}))
    try:
        during = rows_of(resource)
        _same_rows(resource)
        assert any(row[0] == custom["code"] for rows in during.values() for row in rows)
    finally:
        unregister(param.url)
    assert rows_of(resource) == before


@pytest.mark.parametrize(
    "resource",
    [
        {},
        {"resourceType": "NotAType", "note": [{"text": "kept for _content"}]},
        {"resourceType": 7, "status": "final"},
        {"resourceType": "Observation"},
        {"resourceType": "Observation", "code": None, "subject": [], "valueQuantity": {"value": float("nan")}},
    ],
)
def test_resources_without_a_known_type_or_values_get_the_reference_rows(resource: dict):
    _same_rows(resource)


def test_where_on_a_string_element_is_the_reference_walk():
    """``telecom.where(system='email')`` compares a string ``system`` at once in the generated code;
    every other shape takes FHIRPath's way, with the same rows."""
    telecom = [
        {"system": "email", "value": "a@example.org"},
        {"system": "phone", "value": "555"},
        {"system": ["email"], "value": "listed@example.org"},
        {"system": 7, "value": "numeric"},
        {"system": None, "value": "null"},
        {"value": "no system"},
        "not an object",
    ]
    resource = {"resourceType": "Patient", "id": "p1", "telecom": telecom}
    _same_rows(resource)
    rows = rows_of(resource)["token"]
    assert [row[2] for row in rows if row[0] == "email"] == ["a@example.org", "listed@example.org"]
    assert [row[2] for row in rows if row[0] == "phone"] == ["555"]


def test_token_texts_joined_as_the_reference():
    """A token parameter's text row: one text as it is, several each once in order, cut to the
    longest document text (row_writers.token_rows joins them itself)."""
    long = "word " * 40_000
    concepts = [
        {"coding": [{"system": "s", "code": "a", "display": "Weight"}, {"code": "b", "display": "Weight"}]},
        {"coding": [{"code": "a", "display": "One"}], "text": "Two"},
        {"coding": [{"code": "a"}], "text": long},
        {"coding": [{"code": "a", "display": "x"}], "text": long},
        {"text": "only text"},
    ]
    for concept in concepts:
        _same_rows({"resourceType": "Observation", "status": "final", "code": concept})
    assert rows_of({"resourceType": "Observation", "code": concepts[0]})["text"]
