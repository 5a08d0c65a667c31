"""The integer key that names a resource in the search side tables: the position of its first
event, kept across updates, a deletion and a re-creation, reproduced by a rebuild; the side rows
carry it, not the text id; search pages come in key (creation) order across pages."""

from __future__ import annotations

import asyncpg
import httpx

from app.projections.rebuild import rebuild_type
from tests.helpers import new_id


async def _first_position(pool: asyncpg.Pool, resource_type: str, rid: str) -> int:
    return await pool.fetchval(
        "SELECT position FROM event_log WHERE resource_type = $1 AND resource_id = $2 AND version = 1",
        resource_type,
        rid,
    )


async def test_the_key_is_the_first_event_position_for_good(client: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    rid = new_id()
    body = {"resourceType": "Device", "id": rid, "status": "active", "manufacturer": "Keys"}
    assert (await client.put(f"/fhir/Device/{rid}", json=body)).status_code == 201
    first = await _first_position(pool, "Device", rid)
    assert await pool.fetchval("SELECT key FROM cur_device WHERE id = $1", rid) == first
    assert (await client.put(f"/fhir/Device/{rid}", json={**body, "status": "inactive"})).status_code == 200
    assert (await client.delete(f"/fhir/Device/{rid}")).status_code in (200, 204)
    assert await pool.fetchval("SELECT count(*) FROM sp_device_token WHERE key = $1", first) == 0
    assert (await client.put(f"/fhir/Device/{rid}", json=body)).status_code == 201
    assert await pool.fetchval("SELECT key FROM cur_device WHERE id = $1", rid) == first
    assert await pool.fetchval("SELECT count(*) FROM sp_device_token WHERE key = $1", first) > 0
    found = await client.get(f"/fhir/Device?status=active&_id={rid}")
    assert [e["resource"]["id"] for e in found.json()["entry"]] == [rid]
    await rebuild_type(pool, "Device")
    assert await pool.fetchval("SELECT key FROM cur_device WHERE id = $1", rid) == first
    assert await pool.fetchval("SELECT count(*) FROM sp_device_token WHERE key = $1", first) > 0


async def test_a_transaction_bundle_keys_each_resource_by_its_first_event(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    rid = new_id()
    device = {"resourceType": "Device", "id": rid, "status": "active", "manufacturer": "Bundled"}
    entries = [
        {"resource": device, "request": {"method": "PUT", "url": f"Device/{rid}"}},
        {
            "resource": {"resourceType": "Device", "status": "inactive", "manufacturer": "Bundled"},
            "request": {"method": "POST", "url": "Device"},
        },
    ]
    r = await client.post("/fhir", json={"resourceType": "Bundle", "type": "transaction", "entry": entries})
    assert r.status_code == 200, r.text
    for written in [rid, r.json()["entry"][1]["response"]["location"].split("/")[1]]:
        key = await pool.fetchval("SELECT key FROM cur_device WHERE id = $1", written)
        assert key == await _first_position(pool, "Device", written)
        assert await pool.fetchval("SELECT count(*) FROM sp_device_string WHERE key = $1", key) > 0


async def test_search_pages_follow_creation_order(client: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    maker = f"order-{new_id()}"
    ids = []
    for rid in ["z" + new_id()[:8], "a" + new_id()[:8], "m" + new_id()[:8]]:  # not in id order
        body = {"resourceType": "Device", "id": rid, "status": "active", "manufacturer": maker}
        assert (await client.put(f"/fhir/Device/{rid}", json=body)).status_code == 201
        ids.append(rid)
    seen: list[str] = []
    url = f"/fhir/Device?manufacturer={maker}&_count=2"
    while url:
        page = (await client.get(url)).json()
        seen += [e["resource"]["id"] for e in page.get("entry", [])]
        nxt = [link["url"] for link in page["link"] if link["relation"] == "next"]
        url = nxt[0].split("/fhir", 1)[1] if nxt else ""
        url = f"/fhir{url}" if url else ""
    assert seen == ids
    sorted_page = (await client.get(f"/fhir/Device?manufacturer={maker}&status=active&_sort=status")).json()
    assert [e["resource"]["id"] for e in sorted_page["entry"]] == ids
