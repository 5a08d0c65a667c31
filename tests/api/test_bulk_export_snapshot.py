"""A bulk export is one consistent snapshot of the log: writes after the kick-off are not in it, a
transaction still open at the kick-off is not in it (and ``transactionTime`` is early enough that an
export ``_since`` it picks that transaction up), and ``_since`` is exact (deletions left out)."""

from __future__ import annotations

import asyncio
from datetime import UTC
from urllib.parse import quote

import asyncpg
import httpx
import orjson

from tests.api.bulk_helpers import download, finish, ids, kick_off
from tests.helpers import new_id

pytest_plugins = ["tests.api.bulk_fixtures"]
KIND = "BodyStructure"


def _body(patient: str, text: str, rid: str | None = None) -> dict:
    out = {"resourceType": KIND, "patient": {"reference": f"Patient/{patient}"}, "description": text}
    if rid:
        out["id"] = rid
    return out


async def _put(client: httpx.AsyncClient, resource: dict) -> dict:
    r = await client.put(f"/fhir/{resource['resourceType']}/{resource['id']}", json=resource)
    assert r.status_code in (200, 201), r.text
    return r.json()


async def _export(client: httpx.AsyncClient, pool: asyncpg.Pool, query: str) -> tuple[dict, list[dict]]:
    manifest = await finish(client, pool, await kick_off(client, f"/fhir/$export?{query}"))
    return manifest, (await download(client, manifest)).get(KIND, [])


async def test_writes_after_the_kick_off_are_not_exported(bulk_client: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    p = new_id("p")
    kept, deleted, changed = [await _put(bulk_client, _body(p, "v1", new_id())) for _ in range(3)]
    status_url = await kick_off(bulk_client, f"/fhir/$export?_type={KIND}")
    # after the snapshot: an update, a deletion and a creation
    await _put(bulk_client, {**changed, "description": "v2"})
    assert (await bulk_client.delete(f"/fhir/{KIND}/{deleted['id']}")).status_code in (200, 204)
    created = await _put(bulk_client, _body(p, "new", new_id()))
    manifest = await finish(bulk_client, pool, status_url)
    exported = {r["id"]: r for r in (await download(bulk_client, manifest))[KIND]}
    assert exported[changed["id"]] == changed  # the version of the snapshot, as it was served
    assert exported[deleted["id"]] == deleted
    assert exported[kept["id"]] == kept
    assert created["id"] not in exported
    assert manifest["transactionTime"] < created["meta"]["lastUpdated"]


async def _insert_raw_event(conn: asyncpg.Connection, rid: str) -> str:
    """An event of a writer whose transaction is still open (``conn`` inside a transaction)."""
    recorded = await conn.fetchval("SELECT date_trunc('milliseconds', clock_timestamp())")
    stamp = recorded.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{recorded.microsecond // 1000:03d}Z"
    resource = {**_body("x", "in flight", rid), "meta": {"versionId": "1", "lastUpdated": stamp}}
    await conn.execute(
        "INSERT INTO event_log (resource_type, resource_id, version, kind, resource, recorded_at, method, url)"
        " VALUES ($1, $2, 1, 'created', $3, $4, 'PUT', $5)",
        KIND,
        rid,
        orjson.dumps(resource),
        recorded,
        f"{KIND}/{rid}",
    )
    return stamp


async def test_a_transaction_open_at_the_kick_off_is_left_for_the_next_export(
    bulk_client: httpx.AsyncClient, pool: asyncpg.Pool, database_dsn: str
) -> None:
    rid = new_id("inflight")
    writer = await asyncpg.connect(database_dsn)
    try:
        tx = writer.transaction()
        await tx.start()
        stamp = await _insert_raw_event(writer, rid)
        status_url = await kick_off(bulk_client, f"/fhir/$export?_type={KIND}")
        await tx.commit()
    finally:
        await writer.close()
    manifest = await finish(bulk_client, pool, status_url)
    exported = (await download(bulk_client, manifest)).get(KIND, [])
    assert rid not in ids(exported)
    assert manifest["transactionTime"] < stamp  # so an export _since transactionTime catches it
    _, later = await _export(bulk_client, pool, f"_type={KIND}&_since={quote(manifest['transactionTime'])}")
    assert rid in ids(later)


async def test_since_is_exact_and_leaves_deletions_out(bulk_client: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    p = new_id("p")
    before = await _put(bulk_client, _body(p, "before", new_id()))
    cut = before["meta"]["lastUpdated"]
    await asyncio.sleep(0.01)  # later writes in later milliseconds: _since is strictly after
    to_update = await _put(bulk_client, _body(p, "old", new_id()))
    to_delete = await _put(bulk_client, _body(p, "gone", new_id()))
    updated = await _put(bulk_client, {**to_update, "description": "new"})
    assert (await bulk_client.delete(f"/fhir/{KIND}/{to_delete['id']}")).status_code in (200, 204)
    created = await _put(bulk_client, _body(p, "created", new_id()))
    _, exported = await _export(bulk_client, pool, f"_type={KIND}&_since={quote(cut)}")
    r = await bulk_client.get(f"/fhir/{KIND}?_lastUpdated=gt{quote(cut)}&_count=1000")
    searched = [e["resource"] for e in r.json().get("entry", [])]
    assert ids(exported) == ids(searched)
    assert {updated["id"], created["id"]} <= ids(exported)
    assert before["id"] not in ids(exported) and to_delete["id"] not in ids(exported)
    assert next(x for x in exported if x["id"] == updated["id"]) == updated


async def test_type_filter_reports_resources_changed_after_the_snapshot(
    bulk_client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    p = new_id("p")
    stable, moving = [await _put(bulk_client, _body(p, "filtered", new_id())) for _ in range(2)]
    query = quote(f"{KIND}?patient=Patient/{p}", safe="")
    status_url = await kick_off(bulk_client, f"/fhir/$export?_type={KIND}&_typeFilter={query}")
    await _put(bulk_client, {**moving, "description": "changed after the snapshot"})
    manifest = await finish(bulk_client, pool, status_url)
    exported = (await download(bulk_client, manifest))[KIND]
    assert ids(exported) == {stable["id"]}
    [error] = manifest["error"]
    assert error["type"] == "OperationOutcome"
    lines = (await bulk_client.get(error["url"])).content.splitlines()
    issue = orjson.loads(lines[0])["issue"][0]
    assert issue["severity"] == "warning" and moving["id"] in issue["diagnostics"]
