"""Resources and builders of FHIRPath Patch parameters for the tests of
``app.commands.patching.fhirpath_patch`` (tests/commands/test_fhirpath_patch*.py)."""

from __future__ import annotations

import pytest

from app.commands.patching import apply_fhirpath_patch
from app.errors import FhirError

PATIENT = {
    "resourceType": "Patient",
    "id": "p1",
    "active": True,
    "identifier": [{"system": "http://hospital/mrn", "value": "123"}],
    "name": [
        {"use": "official", "family": "Chalmers", "given": ["Peter", "James"]},
        {"use": "usual", "given": ["Jim"]},
    ],
    "telecom": [
        {"system": "phone", "value": "555-1", "use": "home"},
        {"system": "email", "value": "p@example.org"},
        {"system": "phone", "value": "555-2", "use": "work"},
    ],
    "birthDate": "1974-12-25",
    "_birthDate": {"extension": [{"url": "http://x/birthTime", "valueDateTime": "1974-12-25T14:35:45-05:00"}]},
    "extension": [{"url": "http://x/eye-colour", "valueString": "blue"}],
}

OBSERVATION = {
    "resourceType": "Observation",
    "id": "o1",
    "status": "final",
    "code": {"text": "weight"},
    "valueQuantity": {"value": 72, "unit": "kg"},
    "component": [
        {"code": {"text": "a"}, "valueQuantity": {"value": 1}},
        {"code": {"text": "b"}, "valueString": "two"},
    ],
}


def op(kind: str, path: str, *, name: str | None = None, value: dict | None = None, **numbers: int) -> dict:
    """One ``operation`` parameter; ``value`` is the rest of the value part (``{"valueString": ..}``
    or ``{"part": [...]}``)."""
    parts = [{"name": "type", "valueCode": kind}, {"name": "path", "valueString": path}]
    if name is not None:
        parts.append({"name": "name", "valueString": name})
    if value is not None:
        parts.append({"name": "value", **value})
    parts += [{"name": key, "valueInteger": number} for key, number in numbers.items()]
    return {"name": "operation", "part": parts}


def params(*operations: dict) -> dict:
    return {"resourceType": "Parameters", "parameter": list(operations)}


def patched(*operations: dict, resource: dict = PATIENT) -> dict:
    return apply_fhirpath_patch(resource, params(*operations))


def rejected(parameters: object, status: int, code: str, resource: dict = PATIENT) -> FhirError:
    with pytest.raises(FhirError) as info:
        apply_fhirpath_patch(resource, parameters)
    assert (info.value.status, info.value.code) == (status, code), info.value.diagnostics
    return info.value
