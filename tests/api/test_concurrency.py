"""Concurrent writes: no lost update, no 500; contention is never the client's error."""

from __future__ import annotations

import asyncio

import httpx

from tests.helpers import new_id, patient

N = 24


async def test_concurrent_unconditional_updates_all_succeed(client: httpx.AsyncClient) -> None:
    pid = new_id()
    await client.put(f"/fhir/Patient/{pid}", json=patient(pid))
    results = await asyncio.gather(
        *[client.put(f"/fhir/Patient/{pid}", json=patient(pid, family=f"C{i}")) for i in range(N)]
    )
    assert sorted(r.status_code for r in results) == [200] * N
    assert sorted(int(r.json()["meta"]["versionId"]) for r in results) == list(range(2, N + 2))
    current = (await client.get(f"/fhir/Patient/{pid}")).json()
    assert current["meta"]["versionId"] == str(N + 1)
    history = (await client.get(f"/fhir/Patient/{pid}/_history?_count=100")).json()
    assert [int(e["resource"]["meta"]["versionId"]) for e in history["entry"]] == list(range(N + 1, 0, -1))


async def test_concurrent_updates_with_the_same_if_match_have_one_winner(client: httpx.AsyncClient, log_count) -> None:
    pid = new_id()
    await client.put(f"/fhir/Patient/{pid}", json=patient(pid))
    before = await log_count()
    results = await asyncio.gather(
        *[client.put(f"/fhir/Patient/{pid}", json=patient(pid), headers={"If-Match": 'W/"1"'}) for _ in range(N)]
    )
    codes = sorted(r.status_code for r in results)
    assert codes == [200] + [412] * (N - 1)
    assert await log_count() == before + 1


async def test_concurrent_update_as_create_of_one_id(client: httpx.AsyncClient) -> None:
    pid = new_id()
    results = await asyncio.gather(*[client.put(f"/fhir/Patient/{pid}", json=patient(pid)) for _ in range(N)])
    codes = sorted(r.status_code for r in results)
    assert codes == [200] * (N - 1) + [201]
    assert (await client.get(f"/fhir/Patient/{pid}")).json()["meta"]["versionId"] == str(N)


async def test_concurrent_deletes_record_one_deletion(client: httpx.AsyncClient) -> None:
    pid = new_id()
    await client.put(f"/fhir/Patient/{pid}", json=patient(pid))
    results = await asyncio.gather(*[client.delete(f"/fhir/Patient/{pid}") for _ in range(N)])
    assert all(r.status_code in (200, 204) for r in results)
    history = (await client.get(f"/fhir/Patient/{pid}/_history")).json()
    assert history["total"] == 2
