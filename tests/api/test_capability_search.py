"""The CapabilityStatement tells what searches and operations work: includes and reverse
includes per type, the modifiers and prefixes of each parameter, and $validate/$reindex."""

from __future__ import annotations

import httpx
import pytest

REINDEX = "http://fhirledger.org/fhir/OperationDefinition/reindex"
VALIDATE = "http://hl7.org/fhir/OperationDefinition/Resource-validate"


@pytest.fixture(scope="module")
async def statement(client: httpx.AsyncClient) -> dict:
    r = await client.get("/fhir/metadata")
    assert r.status_code == 200
    return r.json()


def _type(statement: dict, name: str) -> dict:
    return next(r for r in statement["rest"][0]["resource"] if r["type"] == name)


def test_includes_list_the_reference_parameters_and_wildcard(statement: dict) -> None:
    patient = _type(statement, "Patient")
    assert "Patient:general-practitioner" in patient["searchInclude"]
    assert "Patient:organization" in patient["searchInclude"]
    assert "Patient:*" in patient["searchInclude"]
    assert "Patient:gender" not in patient["searchInclude"]  # not a reference


def test_rev_includes_list_the_parameters_pointing_at_the_type(statement: dict) -> None:
    patient = _type(statement, "Patient")
    assert {"Observation:subject", "Observation:patient", "Encounter:subject", "*"} <= set(patient["searchRevInclude"])
    assert "Observation:performer" in patient["searchRevInclude"]  # Observation.performer may be a Patient
    assert "Observation:encounter" not in patient["searchRevInclude"]


def test_search_params_document_modifiers_and_prefixes(statement: dict) -> None:
    params = {p["name"]: p for p in _type(statement, "Patient")["searchParam"]}
    assert "Prefixes: eq, ne, gt, lt, ge, le, sa, eb, ap" in params["birthdate"]["documentation"]
    assert ":exact" in params["name"]["documentation"] and ":contains" in params["name"]["documentation"]
    assert ":not" in params["gender"]["documentation"] and "Prefixes" not in params["gender"]["documentation"]
    assert ":identifier" in params["general-practitioner"]["documentation"]
    assert "_has" in params["general-practitioner"]["documentation"]


def test_operations_at_system_and_type_level(statement: dict) -> None:
    rest = statement["rest"][0]
    export = ("export", "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export")
    system = {("validate", VALIDATE), ("reindex", REINDEX), export}
    assert system <= {(o["name"], o["definition"]) for o in rest["operation"]}
    assert "import" in {o["name"] for o in rest["operation"]}
    observation = _type(statement, "Observation")["operation"]
    assert {(o["name"], o["definition"]) for o in observation} == {("validate", VALIDATE), ("reindex", REINDEX)}


def test_the_statement_describes_a_server(statement: dict) -> None:
    assert statement["rest"][0]["mode"] == "server"
    assert statement["software"]["name"] == "fhirledger"
    assert statement["fhirVersion"] == "4.0.1" and statement["kind"] == "instance"
