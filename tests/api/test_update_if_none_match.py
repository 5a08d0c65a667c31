"""``PUT [type]/[id]`` with ``If-None-Match: *`` creates but never overwrites (http.html#update)."""

from __future__ import annotations

import httpx

from tests.helpers import new_id, patient


async def test_if_none_match_star_on_an_existing_resource_is_412(client: httpx.AsyncClient, log_count) -> None:
    pid = new_id()
    first = await client.put(f"/fhir/Patient/{pid}", json=patient(pid, family="First"), headers={"If-None-Match": "*"})
    assert first.status_code == 201, first.text
    before = await log_count()
    r = await client.put(f"/fhir/Patient/{pid}", json=patient(pid, family="Second"), headers={"If-None-Match": "*"})
    assert r.status_code == 412, r.text
    assert r.json()["resourceType"] == "OperationOutcome"
    assert f"Patient/{pid} already exists" in r.json()["issue"][0]["diagnostics"]
    assert await log_count() == before
    current = (await client.get(f"/fhir/Patient/{pid}")).json()
    assert current["name"][0]["family"] == "First"
    await client.delete(f"/fhir/Patient/{pid}")
    again = await client.put(f"/fhir/Patient/{pid}", json=patient(pid), headers={"If-None-Match": "*"})
    assert again.status_code == 201, again.text  # a deleted resource no longer exists: re-created
    assert again.json()["meta"]["versionId"] == "3"


async def test_if_none_match_on_the_current_version_is_412(client: httpx.AsyncClient, log_count) -> None:
    pid = new_id()
    await client.put(f"/fhir/Patient/{pid}", json=patient(pid))
    before = await log_count()
    r = await client.put(f"/fhir/Patient/{pid}", json=patient(pid), headers={"If-None-Match": 'W/"1"'})
    assert r.status_code == 412
    assert await log_count() == before
    ok = await client.put(f"/fhir/Patient/{pid}", json=patient(pid), headers={"If-None-Match": 'W/"5"'})
    assert ok.status_code == 200
