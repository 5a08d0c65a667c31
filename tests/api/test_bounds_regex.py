"""Client-written FHIRPath cannot run a regular expression on the server: a custom SearchParameter
whose expression calls matches()/replaceMatches() is refused with 422 naming the function, and so
is a FHIRPath Patch whose where() criteria call one (400), nothing written either way."""

from __future__ import annotations

import time

import pytest

from app.fhirpath.regex_guard import regex_functions
from tests.helpers import FHIR, new_id, patient


def _search_parameter(code: str, expression: str) -> dict:
    return {
        "resourceType": "SearchParameter",
        "url": f"http://fhirledger.test/sp/{code}",
        "name": code,
        "status": "active",
        "description": "a custom parameter",
        "code": code,
        "base": ["Patient"],
        "type": "token",
        "expression": expression,
    }


@pytest.mark.parametrize(
    ("expression", "function"),
    [
        ("Patient.name.family.where($this.matches('(a+)+$'))", "matches()"),
        ("Patient.name.family.replaceMatches('(a+)+$', 'b')", "replaceMatches()"),
        ("Patient.name.where(family.matches ('x')).family", "matches()"),
    ],
)
async def test_a_custom_parameter_calling_a_regex_function_is_422(client, log_count, expression, function) -> None:
    before = await log_count()
    code = f"rx-{new_id()}".lower()
    started = time.monotonic()
    r = await client.post("/fhir/SearchParameter", json=_search_parameter(code, expression), headers=FHIR)
    assert r.status_code == 422, r.text
    diagnostics = r.json()["issue"][0]["diagnostics"]
    assert function in diagnostics and "regular expression" in diagnostics
    assert await log_count() == before
    # later writes of the type are not slowed by it
    assert (await client.post("/fhir/Patient", json=patient(family="a" * 40 + "!"), headers=FHIR)).status_code == 201
    assert time.monotonic() - started < 30  # catastrophic backtracking would take minutes; 30 s allows a loaded machine


def test_regex_functions_inside_strings_or_other_names_are_not_calls() -> None:
    assert regex_functions("Patient.name.where(family = 'matches(x)')") == []
    assert regex_functions("Patient.extension('http://x/matches(').value") == []
    assert regex_functions("Patient.name.family.rematches('x')") == []
    assert regex_functions("a.matches('x') | b.replaceMatches('y', 'z')") == ["matches", "replaceMatches"]


async def test_a_fhirpath_patch_with_regex_criteria_is_400_and_writes_nothing(client, log_count) -> None:
    pid = new_id()
    assert (await client.put(f"/fhir/Patient/{pid}", json=patient(pid), headers=FHIR)).status_code == 201
    before = await log_count()
    parameters = {
        "resourceType": "Parameters",
        "parameter": [
            {
                "name": "operation",
                "part": [
                    {"name": "type", "valueCode": "replace"},
                    {"name": "path", "valueString": "Patient.name.where(family.matches('(a+)+$')).family"},
                    {"name": "value", "valueString": "X"},
                ],
            }
        ],
    }
    r = await client.patch(f"/fhir/Patient/{pid}", json=parameters, headers=FHIR)
    assert r.status_code == 400, r.text
    assert "matches()" in r.json()["issue"][0]["diagnostics"]
    assert await log_count() == before
