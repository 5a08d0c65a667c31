"""Valid instances pass: one built from the spec for every resource type, plus realistic ones."""

from __future__ import annotations

import copy

import pytest

from app.fhirspec.resource_types import resource_types
from app.validation import validate_resource, warm
from tests.validation.validation_samples import minimal, rich_samples


def errors(resource: object, **kwargs: bool) -> list:
    return [i for i in validate_resource(resource, **kwargs) if i.severity == "error"]


def test_there_are_147_types() -> None:
    assert len(resource_types()) == 147


@pytest.mark.parametrize("resource_type", resource_types())
def test_minimal_instance_of_every_type_is_valid(resource_type: str) -> None:
    resource = minimal(resource_type)
    assert errors(resource) == []


@pytest.mark.parametrize("name", sorted(rich_samples()))
def test_rich_samples_are_valid(name: str) -> None:
    assert validate_resource(rich_samples()[name]) == []


def test_validation_does_not_modify_the_resource() -> None:
    resource = rich_samples()["bundle"]
    before = copy.deepcopy(resource)
    validate_resource(resource)
    assert resource == before


def test_contained_resource_with_reference_is_valid() -> None:
    resource = rich_samples()["patient"]
    resource["contained"] = [{"resourceType": "Organization", "id": "org1", "name": "Acme"}]
    resource["managingOrganization"] = {"reference": "#org1"}
    assert validate_resource(resource) == []


def test_parameters_with_nested_resource_is_valid() -> None:
    params = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "resource", "resource": rich_samples()["patient"]},
            {"name": "count", "valueInteger": 3},
            {"name": "group", "part": [{"name": "inner", "valueString": "x"}]},
        ],
    }
    assert validate_resource(params) == []


def test_warm_compiles_everything() -> None:
    warm()
