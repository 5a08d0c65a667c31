"""A refused bulk export kick-off answers a 400 (or 404) OperationOutcome naming the fault, and
records nothing: no export, no job, no event."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import quote

import asyncpg
import httpx
import pytest

from tests.api.bulk_helpers import ASYNC, download, finish, ids, kick_off

pytest_plugins = ["tests.api.bulk_fixtures"]

REFUSED = [
    ("/fhir/$export?_type=DeviceMetric", {"Prefer": "return=minimal"}, 400, "Prefer: respond-async"),
    ("/fhir/$export?_type=Nonsense", ASYNC, 400, "Nonsense"),
    ("/fhir/$export?_since=yesterday", ASYNC, 400, "_since"),
    ("/fhir/$export?_since=2024-01-01", ASYNC, 400, "instant"),
    ("/fhir/$export?_outputFormat=text/csv", ASYNC, 400, "_outputFormat"),
    ("/fhir/$export?_typeFilter=DeviceMetric%3Fnope%3D1", ASYNC, 400, "nope"),
    ("/fhir/$export?_typeFilter=DeviceMetric%3F_count%3D1", ASYNC, 400, "_count"),
    ("/fhir/$export?_type=Goal&_typeFilter=DeviceMetric%3Fcategory%3Dsetting", ASYNC, 400, "not in _type"),
    ("/fhir/$export?includeAssociatedData=LatestProvenanceResources", ASYNC, 400, "includeAssociatedData"),
    ("/fhir/$export?_bogus=1", ASYNC, 400, "_bogus"),
    ("/fhir/$export?_elements=Nope.x", ASYNC, 400, "_elements"),
    ("/fhir/Patient/$export?_type=DeviceMetric", ASYNC, 400, "outside the Patient compartment"),
    ("/fhir/Patient/$export?patient=Patient/1", ASYNC, 400, "POST"),
    ("/fhir/Group/no-such-group/$export", ASYNC, 404, "Group/no-such-group"),
]


@pytest.fixture
async def recorded(pool: asyncpg.Pool) -> Callable[[], Awaitable[tuple[int, int, int]]]:
    async def counts() -> tuple[int, int, int]:
        row = await pool.fetchrow(
            "SELECT (SELECT count(*) FROM event_log) AS e, (SELECT count(*) FROM bulk_export) AS x,"
            " (SELECT count(*) FROM jobs) AS j"
        )
        return row["e"], row["x"], row["j"]

    return counts


@pytest.mark.parametrize(("url", "headers", "status", "text"), REFUSED)
async def test_refused_kick_off_records_nothing(
    bulk_client: httpx.AsyncClient, recorded, url: str, headers: dict, status: int, text: str
) -> None:
    before = await recorded()
    r = await bulk_client.get(url, headers=headers)
    assert r.status_code == status, r.text
    body = r.json()
    assert body["resourceType"] == "OperationOutcome"
    assert text in body["issue"][0]["diagnostics"], body
    assert await recorded() == before


async def test_post_body_must_be_parameters(bulk_client: httpx.AsyncClient, recorded) -> None:
    before = await recorded()
    r = await bulk_client.post("/fhir/$export", json={"resourceType": "Patient"}, headers=ASYNC)
    assert r.status_code == 400 and "Parameters" in r.json()["issue"][0]["diagnostics"]
    bad = {"resourceType": "Parameters", "parameter": [{"name": "_type"}]}
    r = await bulk_client.post("/fhir/$export", json=bad, headers=ASYNC)
    assert r.status_code == 400 and "_type" in r.json()["issue"][0]["diagnostics"]
    assert await recorded() == before


async def test_lenient_handling_turns_unsupported_parameters_into_warnings(
    bulk_client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    headers = {**ASYNC, "Prefer": "respond-async, handling=lenient"}
    url = "/fhir/$export?_type=DeviceMetric&includeAssociatedData=LatestProvenanceResources&_bogus=1"
    r = await bulk_client.get(url, headers=headers)
    assert r.status_code == 202, r.text
    warnings = [i["diagnostics"] for i in r.json()["issue"] if i["severity"] == "warning"]
    assert any("includeAssociatedData" in w for w in warnings) and any("_bogus" in w for w in warnings)
    await finish(bulk_client, pool, r.headers["content-location"])


async def test_filters_of_several_values_and_several_filters(
    bulk_client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    for category in ("measurement", "setting", "unspecified"):
        metric = {"resourceType": "DeviceMetric", "type": {"text": "f"}, "category": category}
        assert (await bulk_client.post("/fhir/DeviceMetric", json=metric)).status_code == 201
    filters = quote("DeviceMetric?category=setting,DeviceMetric?category=unspecified", safe="")
    manifest = await finish(bulk_client, pool, await kick_off(bulk_client, f"/fhir/$export?_typeFilter={filters}"))
    r = await bulk_client.get("/fhir/DeviceMetric?category=setting,unspecified&_count=1000")
    expected = {e["resource"]["id"] for e in r.json()["entry"]}
    files = await download(bulk_client, manifest)  # every type; only DeviceMetric filtered
    assert ids(files["DeviceMetric"]) == expected
