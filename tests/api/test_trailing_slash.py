"""A trailing slash changes nothing: ``[type]/`` searches and creates like ``[type]``,
``[type]/[id]/`` reads like ``[type]/[id]``, and ``[base]/`` takes Bundles like ``[base]``."""

from __future__ import annotations

import httpx

from tests.helpers import new_id, patient


async def test_type_with_trailing_slash_searches_and_creates(client: httpx.AsyncClient) -> None:
    family = new_id("slash")
    r = await client.post("/fhir/Patient/", json=patient(family=family))
    assert r.status_code == 201, r.text
    found = await client.get(f"/fhir/Patient/?family={family}")
    assert found.status_code == 200
    bundle = found.json()
    assert bundle["resourceType"] == "Bundle" and bundle["total"] == 1
    assert bundle["link"][0]["url"].startswith("http://testserver/fhir/Patient?")


async def test_instance_with_trailing_slash_reads_updates_and_has_history(client: httpx.AsyncClient) -> None:
    pid = new_id()
    assert (await client.put(f"/fhir/Patient/{pid}/", json=patient(pid))).status_code == 201
    r = await client.get(f"/fhir/Patient/{pid}/")
    assert r.status_code == 200 and r.json()["id"] == pid
    assert (await client.get(f"/fhir/Patient/{pid}/_history/")).json()["total"] == 1
    assert (await client.get(f"/fhir/Patient/{pid}/_history/1/")).status_code == 200


async def test_base_with_and_without_slash_takes_a_batch(client: httpx.AsyncClient) -> None:
    batch = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [{"request": {"method": "GET", "url": "Patient?_count=1"}}],
    }
    for url in ("/fhir", "/fhir/"):
        r = await client.post(url, json=batch)
        assert r.status_code == 200, r.text
        assert r.json()["type"] == "batch-response"


async def test_system_search_with_trailing_slash(client: httpx.AsyncClient) -> None:
    r = await client.get("/fhir/?_type=Patient&_count=1")
    assert r.status_code == 200 and r.json()["type"] == "searchset"
