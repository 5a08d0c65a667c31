"""``POST [type]?criteria`` is a conditional create (as with If-None-Exist, http.html#ccreate), and
conditional create/update/delete errors name the request the client sent."""

from __future__ import annotations

import uuid

import httpx

from tests.helpers import patient

SYSTEM = "http://fhirledger.test/cq"


def _ident() -> tuple[str, dict]:
    value = uuid.uuid4().hex[:12]
    return f"identifier={SYSTEM}|{value}", patient(identifier=[{"system": SYSTEM, "value": value}])


async def test_post_with_criteria_in_the_url_creates_once_then_answers_the_match(
    client: httpx.AsyncClient, log_count
) -> None:
    criteria, body = _ident()
    first = await client.post(f"/fhir/Patient?{criteria}", json=body)
    assert first.status_code == 201, first.text
    before = await log_count()
    second = await client.post(f"/fhir/Patient?{criteria}", json=body)
    assert second.status_code == 200, second.text
    assert second.json()["id"] == first.json()["id"]
    assert second.json()["resourceType"] == "Patient"
    assert await log_count() == before
    found = (await client.get(f"/fhir/Patient?{criteria}")).json()
    assert found["total"] == 1


async def test_post_with_criteria_matching_several_is_412_naming_the_request(
    client: httpx.AsyncClient, log_count
) -> None:
    criteria, body = _ident()
    for _ in range(2):
        assert (await client.post("/fhir/Patient", json=body)).status_code == 201
    before = await log_count()
    r = await client.post(f"/fhir/Patient?{criteria}", json=body)
    assert r.status_code == 412, r.text
    text = r.json()["issue"][0]["diagnostics"]
    assert text.startswith(f"POST Patient?{criteria}: 2 Patient resources match"), text
    assert "Bundle.entry" not in text
    assert await log_count() == before


async def test_url_criteria_and_if_none_exist_must_agree(client: httpx.AsyncClient, log_count) -> None:
    criteria, body = _ident()
    before = await log_count()
    r = await client.post(f"/fhir/Patient?{criteria}", json=body, headers={"If-None-Exist": "family=Other"})
    assert r.status_code == 400, r.text
    assert r.json()["resourceType"] == "OperationOutcome"
    assert "If-None-Exist" in r.json()["issue"][0]["diagnostics"]
    assert await log_count() == before
    same = await client.post(f"/fhir/Patient?{criteria}&_format=json", json=body, headers={"If-None-Exist": criteria})
    assert same.status_code == 201, same.text
    for _ in range(2):  # _format alone is no criteria: a plain create
        assert (await client.post("/fhir/Patient?_format=json", json=body)).status_code == 201


async def test_conditional_update_and_delete_errors_name_the_request(client: httpx.AsyncClient, log_count) -> None:
    criteria, body = _ident()
    for _ in range(2):
        await client.post("/fhir/Patient", json=body)
    before = await log_count()
    put = await client.put(f"/fhir/Patient?{criteria}", json=body)
    assert put.status_code == 412
    text = put.json()["issue"][0]["diagnostics"]
    assert text.startswith(f"PUT Patient?{criteria}: 2 Patient resources match") and "Bundle.entry" not in text
    delete = await client.delete(f"/fhir/Patient?{criteria}")
    assert delete.status_code == 412
    text = delete.json()["issue"][0]["diagnostics"]
    assert text.startswith(f"DELETE Patient?{criteria}: 2 Patient resources match") and "Bundle.entry" not in text
    assert await log_count() == before


async def test_conditional_update_with_a_stale_if_match_names_the_request(client: httpx.AsyncClient, log_count) -> None:
    criteria, body = _ident()
    await client.put(f"/fhir/Patient?{criteria}", json=body)
    before = await log_count()
    r = await client.put(f"/fhir/Patient?{criteria}", json=body, headers={"If-Match": 'W/"7"'})
    assert r.status_code == 412
    text = r.json()["issue"][0]["diagnostics"]
    assert text.startswith(f"PUT Patient?{criteria}: Version conflict"), text
    assert await log_count() == before
