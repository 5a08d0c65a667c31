"""Bulk export with authorization on: system/ read scopes for [base]/$export, user/ or system/ for
Patient and Group exports; status, cancellation and files only for the client that kicked off."""

from __future__ import annotations

import asyncpg
import httpx

from tests.api.authz_helpers import assert_refused, bearer_for, seed
from tests.api.bulk_helpers import ASYNC, download, finish, kick_off

pytest_plugins = ["tests.api.bulk_fixtures"]

SYSTEM_METRICS = bearer_for("system/DeviceMetric.r")


async def _metric(pool: asyncpg.Pool, client: httpx.AsyncClient) -> dict:
    return await seed(pool, client, {"resourceType": "DeviceMetric", "type": {"text": "a"}, "category": "measurement"})


async def test_system_export_with_system_read_scope(bulk_auth_client: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    metric = await _metric(pool, bulk_auth_client)
    status_url = await kick_off(bulk_auth_client, "/fhir/$export?_type=DeviceMetric", SYSTEM_METRICS)
    manifest = await finish(bulk_auth_client, pool, status_url, SYSTEM_METRICS)
    assert manifest["requiresAccessToken"] is True
    files = await download(bulk_auth_client, manifest, SYSTEM_METRICS)
    assert metric["id"] in {r["id"] for r in files["DeviceMetric"]}
    url = manifest["output"][0]["url"]
    assert (await bulk_auth_client.get(url)).status_code == 401
    other_client = bearer_for("system/DeviceMetric.r", client_id="someone-else")
    for target in (url, status_url):
        assert_refused(await bulk_auth_client.get(target, headers=other_client), 403, "forbidden", "another client")
    assert (await bulk_auth_client.delete(status_url, headers=other_client)).status_code == 403
    assert (await bulk_auth_client.delete(status_url, headers=SYSTEM_METRICS)).status_code == 202


async def test_system_export_refusals(bulk_auth_client: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    count = await pool.fetchval("SELECT count(*) FROM bulk_export")
    cases = [
        ("/fhir/$export?_type=DeviceMetric", "user/*.r", "system/DeviceMetric.r"),
        ("/fhir/$export?_type=DeviceMetric,Goal", "system/DeviceMetric.r", "Goal"),
        ("/fhir/$export?_type=DeviceMetric", "system/DeviceMetric.rs?category=measurement", "query restriction"),
        ("/fhir/$export", "user/*.r", "system/*.r"),
        ("/fhir/Patient/$export?_type=Goal", "patient/*.r", "user/Goal.r or system/Goal.r"),
        ("/fhir/Patient/$export?_type=Goal", "user/Patient.r", "Goal"),
    ]
    for url, scope, text in cases:
        headers = {**ASYNC, **bearer_for(scope, patient="p-1" if scope.startswith("patient") else None)}
        assert_refused(await bulk_auth_client.get(url, headers=headers), 403, "forbidden", text)
    assert await pool.fetchval("SELECT count(*) FROM bulk_export") == count
    r = await bulk_auth_client.get("/fhir/$export?_type=DeviceMetric", headers=ASYNC)
    assert r.status_code == 401


async def test_without_type_the_export_covers_the_types_the_token_may_read(
    bulk_auth_client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    await _metric(pool, bulk_auth_client)
    await seed(pool, bulk_auth_client, {"resourceType": "Organization", "name": "not readable"})
    status_url = await kick_off(bulk_auth_client, "/fhir/$export", SYSTEM_METRICS)
    manifest = await finish(bulk_auth_client, pool, status_url, SYSTEM_METRICS)
    assert {o["type"] for o in manifest["output"]} == {"DeviceMetric"}


async def test_group_export_with_user_scopes(bulk_auth_client: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    pt = await seed(pool, bulk_auth_client, {"resourceType": "Patient", "name": [{"family": "G"}]})
    member = {"entity": {"reference": f"Patient/{pt['id']}"}}
    group = await seed(
        pool, bulk_auth_client, {"resourceType": "Group", "type": "person", "actual": True, "member": [member]}
    )
    url = f"/fhir/Group/{group['id']}/$export?_type=Patient"
    user = bearer_for("user/Patient.r user/Group.r")
    manifest = await finish(bulk_auth_client, pool, await kick_off(bulk_auth_client, url, user), user)
    files = await download(bulk_auth_client, manifest, user)
    assert [r["id"] for r in files["Patient"]] == [pt["id"]]
    no_group = {**ASYNC, **bearer_for("user/Patient.r")}
    assert_refused(await bulk_auth_client.get(url, headers=no_group), 403, "forbidden", "Group")
