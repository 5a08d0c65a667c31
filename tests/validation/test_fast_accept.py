"""The generated checks (``app.validation.fast_accept``) accept only resources in which the walker
finds no error, so a write that skips the walk never stores what the walker would refuse; and they
accept the valid resources real clients send (Synthea's, the samples), so the write path saves
the walk for them."""

from __future__ import annotations

import copy
import gzip
from pathlib import Path

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.commands.validate import check_resource
from app.errors import FhirError
from app.validation import validate_resource
from app.validation.fast_accept import MAX_DEPTH, accepts
from app.validation.model import PRIMITIVE, RESOURCE
from tests.validation.test_properties import SAMPLES, SETTINGS, json_values, target
from tests.validation.validation_samples import diagnostic_report, observation, patient

SYNTHEA = Path(__file__).resolve().parents[1] / "data" / "synthea"  # two real patients, in the repository


def walker_finds_no_error(resource: object) -> bool:
    return not [i for i in validate_resource(resource) if i.severity in ("error", "fatal")]


def synthea_resources() -> list[dict]:
    out = []
    for path in sorted(SYNTHEA.glob("*.json.gz")):
        out += [entry["resource"] for entry in orjson.loads(gzip.decompress(path.read_bytes()))["entry"]]
    assert len(out) > 100
    return out


def extension_arrays(value: object) -> bool:
    """Anywhere a repeating primitive's extensions (``_given: [...]``): left to the walker."""
    if isinstance(value, dict):
        return any((k[:1] == "_" and isinstance(v, list)) or extension_arrays(v) for k, v in value.items())
    return isinstance(value, list) and any(extension_arrays(v) for v in value)


def test_every_valid_sample_is_accepted_and_the_walker_agrees() -> None:
    samples = [*SAMPLES, diagnostic_report(20)]
    for resource in samples:
        assert walker_finds_no_error(resource), resource["resourceType"]
        assert accepts(resource) is not extension_arrays(resource), resource["resourceType"]
    assert sum(map(accepts, samples)) >= len(samples) - 2  # the specification's Patient, and one more


def test_synthea_resources_are_accepted_exactly_when_the_walker_finds_no_error() -> None:
    resources = synthea_resources()
    verdicts = [(accepts(r), walker_finds_no_error(r)) for r in resources]
    assert all(fast == walked for fast, walked in verdicts)
    assert sum(fast for fast, _ in verdicts) == len(resources)  # Synthea writes valid R4 (contained too)


def test_a_warning_is_no_reason_to_walk_and_validate_still_reports_it() -> None:
    resource = observation()
    resource.pop("text", None)  # dom-6 (a warning): a resource should have a narrative
    assert accepts(resource)
    assert check_resource(resource) == []
    assert [i.diagnostics for i in validate_resource(resource) if "dom-6" in i.diagnostics]


@pytest.mark.parametrize(
    "breaking",
    [
        lambda r: r.update(gender="unknown-code"),  # required binding
        lambda r: r.update(birthDate="1974-13-01"),  # the primitive's form
        lambda r: r.update(active="true"),  # the JSON type
        lambda r: r.update(name=[]),  # an empty array
        lambda r: r.update(name={"family": "x"}),  # a single value where an array goes
        lambda r: r.update(name=[{"id": "only"}]),  # ele-1
        lambda r: r.update(name=[{"family": None}]),  # an explicit null
        lambda r: r.update(deceasedBoolean=True, deceasedDateTime="2020"),  # two types of one choice
        lambda r: r.update(favouriteColour="blue"),  # unknown
        lambda r: r.update(_gender={"extension": [{"url": "x"}]}),  # ext-1 inside a primitive's extension
        lambda r: r.update(contact=[{"name": {"family": "x"}, "period": {"start": "2020", "end": "2019"}}]),  # per-1
        lambda r: r.update(contained=[{"resourceType": "Organization", "id": "o1", "name": "x"}]),  # dom-3
        lambda r: r.update(extension=[{"url": "http://x", "valueString": "a", "extension": [{"url": "y"}]}]),
    ],
)
def test_a_broken_patient_is_not_accepted_and_its_write_gets_the_walkers_issues(breaking) -> None:
    resource = patient()
    resource["contact"][0]["name"] = {"family": "du Marché", "given": ["Bénédicte"]}  # no ``_given`` array
    assert accepts(resource)
    breaking(resource)
    assert not walker_finds_no_error(resource)
    assert not accepts(resource)
    with pytest.raises(FhirError) as raised:
        check_resource(copy.deepcopy(resource))
    walked = [i.diagnostics for i in validate_resource(resource) if i.severity == "error"]
    assert [i.diagnostics for i in raised.value.issues if i.severity == "error"] == walked


def test_a_code_outside_a_required_binding_of_a_codeable_concept_is_not_accepted() -> None:
    status = "http://terminology.hl7.org/CodeSystem/condition-clinical"
    condition = {"resourceType": "Condition", "subject": {"reference": "Patient/p"}}
    condition["clinicalStatus"] = {"coding": [{"system": status, "code": "active"}]}
    assert accepts(condition) and walker_finds_no_error(condition)
    condition["clinicalStatus"]["coding"].append({"system": status, "code": "dormant"})
    assert not walker_finds_no_error(condition)
    assert not accepts(condition)


def test_a_primitive_extension_counts_as_the_value_but_an_empty_one_is_refused() -> None:
    resource = observation()
    resource["_status"] = resource.pop("status") and {"extension": [{"url": "http://x", "valueString": "y"}]}
    assert walker_finds_no_error(resource) and accepts(resource)  # status (1..1) is there, as an extension
    for empty in ({}, {"id": "a"}):
        resource["_status"] = empty
        assert not walker_finds_no_error(resource) and not accepts(resource)


def test_an_object_nested_deeper_than_the_checks_go_is_left_to_the_walker() -> None:
    def nested(depth: int) -> dict:
        extension: dict = {"url": "http://x", "valueString": "leaf"}
        for _ in range(depth):
            extension = {"url": "http://x", "extension": [extension]}
        return {"resourceType": "Basic", "code": {"text": "x"}, "extension": [extension]}

    assert accepts(nested(MAX_DEPTH - 2)) and walker_finds_no_error(nested(MAX_DEPTH - 2))
    assert not accepts(nested(MAX_DEPTH + 1))
    assert walker_finds_no_error(nested(MAX_DEPTH + 1))  # valid: the walker, not the checks, says so


class Picked(tuple):
    """(resource, an object in it, that object's node), shown as the resource alone (a node's
    repr is the whole compiled graph: a failure report would take minutes)."""

    def __repr__(self) -> str:
        return orjson.dumps(self[0]).decode()


picked = target().map(Picked)


@SETTINGS
@given(picked, st.text(max_size=10), json_values)
def test_an_insertion_is_accepted_only_if_the_walker_finds_no_error(t: tuple, key: str, value: object) -> None:
    resource, obj, _node = t
    obj[key] = value
    if accepts(resource):
        assert walker_finds_no_error(resource), (key, value)


@SETTINGS
@given(picked, st.data())
def test_a_shape_or_type_mutation_is_accepted_only_if_the_walker_finds_no_error(t: tuple, data: st.DataObject) -> None:
    resource, obj, node = t
    keys = [k for k in obj if node is not None and k in node.keys]
    if not keys:
        return
    key = data.draw(st.sampled_from(keys))
    element, ref = node.keys[key]
    value = obj[key]
    mutation = data.draw(st.sampled_from(["drop", "empty", "null", "wrap", "unwrap", "retype", "id-only", "ext"]))
    if mutation == "drop":
        obj.pop(key)
    elif mutation == "empty":
        obj[key] = [] if element.array else {}
    elif mutation == "null":
        obj[key] = None
    elif mutation == "wrap":
        obj[key] = [value, value]
    elif mutation == "unwrap":
        obj[key] = value[0] if isinstance(value, list) and value else value
    elif mutation == "retype":
        wrong: object = 12 if ref.kind == PRIMITIVE and ref.code not in ("integer", "decimal") else "x"
        obj[key] = [wrong] if element.array else wrong
    elif mutation == "id-only":
        obj[key] = [{"id": "a"}] if element.array else {"id": "a"}
    else:
        obj["_" + key] = {"extension": [{"url": "http://x", "valueString": "y"}]}
    if ref.kind == RESOURCE:
        obj.setdefault("id", "x")
    if accepts(resource):
        assert walker_finds_no_error(resource), (mutation, key)
