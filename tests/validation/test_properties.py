"""Property-based: mutate valid resources; the validator never raises, and mutations that break
cardinality or type are always reported as errors."""

from __future__ import annotations

import copy

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.fhirspec.resource_types import resource_types
from app.validation import validate_resource
from app.validation.compile import resolve, resource_node
from app.validation.model import PRIMITIVE, RESOURCE, Node
from tests.validation.validation_samples import minimal, rich_samples

SAMPLES = list(rich_samples().values()) + [minimal(t) for t in resource_types()[::7]]
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=8,
)


def objects(value: object, node: Node | None, path: tuple = ()) -> list[tuple[tuple, Node | None]]:
    """Every JSON object inside a resource, with its compiled node when known."""
    out: list[tuple[tuple, Node | None]] = []
    if isinstance(value, dict):
        if node is None and isinstance(value.get("resourceType"), str):
            node = resource_node(value["resourceType"])
        out.append((path, node))
        for key, child in value.items():
            entry = node.keys.get(key) if node is not None else None
            child_node = None
            if entry is not None and entry[1].kind not in (PRIMITIVE, RESOURCE):
                child_node = resolve(entry[1])
            items = child if isinstance(child, list) else [child]
            for i, item in enumerate(items):
                sub = (*path, key, i) if isinstance(child, list) else (*path, key)
                out += objects(item, child_node if entry is None or entry[1].kind != RESOURCE else None, sub)
    return out


def at(value: object, path: tuple) -> object:
    for step in path:
        value = value[step]  # type: ignore[index]
    return value


def checked(resource: object, lenient: bool = False) -> list:
    """Validate, asserting that no internal failure was turned into an issue."""
    issues = validate_resource(resource, lenient=lenient)
    assert not [i for i in issues if "could not be validated" in i.diagnostics], issues
    return issues


def errors(resource: object) -> list:
    return [i for i in checked(resource) if i.severity == "error"]


@st.composite
def target(draw: st.DrawFn) -> tuple[dict, dict, Node | None]:
    resource = copy.deepcopy(draw(st.sampled_from(SAMPLES)))
    path, node = draw(st.sampled_from(objects(resource, None)))
    return resource, at(resource, path), node


@SETTINGS
@given(target(), st.text(max_size=10), json_values)
def test_never_raises_on_arbitrary_insertions(t: tuple, key: str, value: object) -> None:
    resource, obj, _node = t
    obj[key] = value
    checked(resource)
    checked(resource, lenient=True)


@SETTINGS
@given(json_values)
def test_never_raises_on_arbitrary_json(value: object) -> None:
    assert checked(value)  # not a resource: always an issue
    checked({"resourceType": "Patient", "name": value, "_gender": value, "contained": [value]})
    checked({"resourceType": "Observation", "valueQuantity": value, "component": value, "_status": [value]})


@SETTINGS
@given(target(), st.data())
def test_dropping_a_required_element_is_reported(t: tuple, data: st.DataObject) -> None:
    resource, obj, node = t
    present = [
        e for e in (node.required if node else ()) if any(k in obj for k, (el, _) in node.keys.items() if el is e)
    ]
    if not present:
        return
    element = data.draw(st.sampled_from(present))
    for key, (el, _) in node.keys.items():
        if el is element:
            obj.pop(key, None)
            obj.pop("_" + key, None)
    assert any(i.code == "required" for i in errors(resource))


@SETTINGS
@given(target(), st.data())
def test_type_and_shape_breaking_mutations_are_reported(t: tuple, data: st.DataObject) -> None:
    resource, obj, node = t
    keys = [k for k in obj if node is not None and k in node.keys and k != "resourceType"]
    if not keys:
        return
    key = data.draw(st.sampled_from(keys))
    element, ref = node.keys[key]
    value = obj[key]
    mutation = data.draw(st.sampled_from(["unknown", "empty", "null", "wrap", "unwrap", "retype"]))
    if mutation == "unknown":
        obj[key + "Zz"] = value
    elif mutation == "empty":
        obj[key] = [] if element.array else ({} if isinstance(value, dict) else "")
        if not element.array and not isinstance(value, (dict, str)):
            return
    elif mutation == "null":
        obj[key] = None
    elif mutation == "wrap":
        if element.array:
            return
        obj[key] = [value, value]  # a single-valued element duplicated into an array
    elif mutation == "unwrap":
        if not element.array:
            return
        obj[key] = value[0] if isinstance(value, list) and value else value
        if isinstance(value, list) and len(value) == 0:
            return
    else:
        # a value of the wrong JSON type for the element
        if ref.kind == PRIMITIVE:
            wrong: object = {"value": 1} if ref.code != "boolean" else "true"
            if ref.code in ("boolean",):
                wrong = "true"
            elif ref.code in ("integer", "positiveInt", "unsignedInt", "decimal"):
                wrong = "12"
            else:
                wrong = 12
        else:
            wrong = "not an object" if ref.kind != RESOURCE else {"resourceType": "NotAType"}
        obj[key] = [wrong] if element.array else wrong
    assert errors(resource), (mutation, key)
