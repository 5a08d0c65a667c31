"""Conditional create, update and delete at the top level and inside Bundles
(https://hl7.org/fhir/R4/http.html#ccreate)."""

from __future__ import annotations

import asyncio
import uuid

import httpx

from tests.helpers import patient


def _ident() -> tuple[str, str]:
    return "http://fhirledger.test/mrn", uuid.uuid4().hex[:12]


def _with_ident(system: str, value: str, **extra: object) -> dict:
    return patient(identifier=[{"system": system, "value": value}], **extra)


async def test_conditional_create_creates_then_returns_existing_with_200(client: httpx.AsyncClient, log_count) -> None:
    system, value = _ident()
    headers = {"If-None-Exist": f"identifier={system}|{value}"}
    first = await client.post("/fhir/Patient", json=_with_ident(system, value), headers=headers)
    assert first.status_code == 201
    before = await log_count()
    second = await client.post("/fhir/Patient", json=_with_ident(system, value), headers=headers)
    assert second.status_code == 200
    assert second.json()["id"] == first.json()["id"]
    assert second.json()["resourceType"] == "Patient"
    assert await log_count() == before


async def test_conditional_create_with_several_matches_is_412(client: httpx.AsyncClient, log_count) -> None:
    system, value = _ident()
    for _ in range(2):
        await client.post("/fhir/Patient", json=_with_ident(system, value))
    before = await log_count()
    r = await client.post(
        "/fhir/Patient", json=_with_ident(system, value), headers={"If-None-Exist": f"identifier={system}|{value}"}
    )
    assert r.status_code == 412
    assert r.json()["resourceType"] == "OperationOutcome"
    assert await log_count() == before


async def test_parallel_conditional_creates_make_exactly_one(client: httpx.AsyncClient) -> None:
    system, value = _ident()
    headers = {"If-None-Exist": f"identifier={system}|{value}"}
    results = await asyncio.gather(
        *[client.post("/fhir/Patient", json=_with_ident(system, value), headers=headers) for _ in range(12)]
    )
    assert sorted(r.status_code for r in results) == [200] * 11 + [201]
    assert len({r.json()["id"] for r in results}) == 1
    found = (await client.get(f"/fhir/Patient?identifier={system}|{value}")).json()
    assert found["total"] == 1


async def test_conditional_update_creates_updates_and_refuses_several(client: httpx.AsyncClient) -> None:
    system, value = _ident()
    url = f"/fhir/Patient?identifier={system}|{value}"
    created = await client.put(url, json=_with_ident(system, value, gender="male"))
    assert created.status_code == 201, created.text
    pid = created.json()["id"]
    updated = await client.put(url, json=_with_ident(system, value, gender="female"))
    assert updated.status_code == 200
    assert updated.json()["id"] == pid and updated.json()["meta"]["versionId"] == "2"
    await client.post("/fhir/Patient", json=_with_ident(system, value))
    several = await client.put(url, json=_with_ident(system, value))
    assert several.status_code == 412


async def test_conditional_delete(client: httpx.AsyncClient, log_count) -> None:
    system, value = _ident()
    url = f"/fhir/Patient?identifier={system}|{value}"
    before = await log_count()
    none = await client.delete(url)
    assert none.status_code in (200, 204)
    assert await log_count() == before
    pid = (await client.post("/fhir/Patient", json=_with_ident(system, value))).json()["id"]
    one = await client.delete(url)
    assert one.status_code in (200, 204)
    assert (await client.get(f"/fhir/Patient/{pid}")).status_code == 410
    for _ in range(2):
        await client.post("/fhir/Patient", json=_with_ident(system, value))
    assert (await client.delete(url)).status_code == 412


async def test_transaction_conditional_create_and_references(client: httpx.AsyncClient) -> None:
    system, value = _ident()
    existing = (await client.post("/fhir/Patient", json=_with_ident(system, value))).json()["id"]
    p_urn = f"urn:uuid:{uuid.uuid4()}"
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": p_urn,
                "resource": _with_ident(system, value),
                "request": {"method": "POST", "url": "Patient", "ifNoneExist": f"identifier={system}|{value}"},
            },
            {
                "resource": {
                    "resourceType": "Observation",
                    "status": "final",
                    "code": {"text": "a"},
                    "subject": {"reference": p_urn},
                },
                "request": {"method": "POST", "url": "Observation"},
            },
            {
                "resource": {
                    "resourceType": "Observation",
                    "status": "final",
                    "code": {"text": "b"},
                    "subject": {"reference": f"Patient?identifier={system}|{value}"},
                },
                "request": {"method": "POST", "url": "Observation"},
            },
        ],
    }
    r = await client.post("/fhir", json=bundle)
    assert r.status_code == 200, r.text
    entries = r.json()["entry"]
    assert entries[0]["response"]["status"] == "200 OK"
    for e in entries[1:]:
        oid = e["response"]["location"].split("/")[1]
        obs = (await client.get(f"/fhir/Observation/{oid}")).json()
        assert obs["subject"]["reference"] == f"Patient/{existing}"


async def test_transaction_conditional_reference_matching_nothing_fails(client: httpx.AsyncClient, log_count) -> None:
    before = await log_count()
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": {
                    "resourceType": "Observation",
                    "status": "final",
                    "code": {"text": "b"},
                    "subject": {"reference": "Patient?identifier=http://none|nothing"},
                },
                "request": {"method": "POST", "url": "Observation"},
            },
        ],
    }
    r = await client.post("/fhir", json=bundle)
    assert r.status_code in (400, 404, 412)
    assert "Bundle.entry[0]" in r.json()["issue"][0]["diagnostics"]
    assert await log_count() == before


async def test_if_none_exist_forms_seen_in_the_wild(client: httpx.AsyncClient) -> None:
    system, value = _ident()
    first = await client.post("/fhir/Patient", json=_with_ident(system, value))
    for header in (
        f"identifier={system}|{value}",
        f"?identifier={system}|{value}",
        f"Patient?identifier={system}|{value}",
    ):
        r = await client.post("/fhir/Patient", json=_with_ident(system, value), headers={"If-None-Exist": header})
        assert r.status_code == 200, (header, r.text)
        assert r.json()["id"] == first.json()["id"]
