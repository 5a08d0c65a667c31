"""$validate and lenient handling (issue 3): invalid writes are 422 with every issue and write nothing."""

from __future__ import annotations

import httpx

from tests.helpers import new_id


async def test_invalid_create_is_422_listing_every_issue(client: httpx.AsyncClient, log_count) -> None:
    before = await log_count()
    bad = {
        "resourceType": "Patient",
        "gender": "mal",
        "birthDate": "1990-02-30x",
        "name": [{"given": ["a", ""]}],
        "foo": True,
    }
    r = await client.post("/fhir/Patient", json=bad)
    assert r.status_code == 422
    issues = r.json()["issue"]
    where = {i["expression"][0] for i in issues if i["severity"] == "error"}
    assert {"Patient.gender", "Patient.birthDate", "Patient.name[0].given[1]", "Patient.foo"} <= where
    assert all(i["diagnostics"] for i in issues)
    pid = new_id()
    r = await client.put(f"/fhir/Patient/{pid}", json={**bad, "id": pid})
    assert r.status_code == 422
    assert await log_count() == before


async def test_lenient_drops_unknown_elements_with_a_warning(client: httpx.AsyncClient) -> None:
    body = {"resourceType": "Patient", "gender": "male", "foo": 1, "name": [{"family": "L", "bar": 2}]}
    r = await client.post("/fhir/Patient", json=body, headers={"Prefer": "handling=lenient"})
    assert r.status_code == 201, r.text
    assert "foo" not in r.json() and r.json()["name"] == [{"family": "L"}]
    assert "unknown element" in r.headers["warning"]
    r = await client.post("/fhir/Patient", json=body, headers={"Prefer": "handling=lenient, return=OperationOutcome"})
    severities = [i["severity"] for i in r.json()["issue"]]
    assert severities.count("warning") == 2
    strict = await client.post("/fhir/Patient", json=body)
    assert strict.status_code == 422


async def test_validate_operation_writes_nothing(client: httpx.AsyncClient, log_count) -> None:
    before = await log_count()
    ok = await client.post("/fhir/Patient/$validate", json={"resourceType": "Patient", "gender": "female"})
    assert ok.status_code == 200
    assert ok.json()["issue"][0]["severity"] == "information"
    bad = await client.post(
        "/fhir/$validate",
        json={
            "resourceType": "Parameters",
            "parameter": [{"name": "resource", "resource": {"resourceType": "Observation", "status": "done"}}],
        },
    )
    assert bad.status_code == 200
    errors = [i for i in bad.json()["issue"] if i["severity"] == "error"]
    assert {e["expression"][0] for e in errors} >= {"Observation.status", "Observation.code"}
    wrong_type = await client.post("/fhir/Patient/$validate", json={"resourceType": "Observation"})
    assert any("not a Patient" in i["diagnostics"] for i in wrong_type.json()["issue"])
    assert await log_count() == before


async def test_system_search_by_type_and_common_parameters(client: httpx.AsyncClient) -> None:
    tag = new_id()
    meta = {"tag": [{"system": "http://fhirledger.test/sys", "code": tag}]}
    await client.post("/fhir/Patient", json={"resourceType": "Patient", "meta": meta})
    await client.post("/fhir/Basic", json={"resourceType": "Basic", "code": {"text": "x"}, "meta": meta})
    r = await client.get(f"/fhir?_type=Patient,Basic&_tag={tag}")
    assert r.status_code == 200, r.text
    bundle = r.json()
    assert bundle["total"] == 2
    assert sorted(e["resource"]["resourceType"] for e in bundle["entry"]) == ["Basic", "Patient"]
    only = (await client.get(f"/fhir?_type=Basic&_tag={tag}")).json()
    assert only["total"] == 1
    every = (await client.get(f"/fhir?_tag={tag}&_count=1&_total=accurate")).json()
    assert every["total"] == 2 and len(every["entry"]) == 1
    assert any(link["relation"] == "next" for link in every["link"])
