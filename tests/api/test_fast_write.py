"""The write fast path (app/api/fast_write.py) answers creates and updates exactly as FastAPI's
router does: the same request sent to an app without the fast path gets the same status, headers
and OperationOutcome; what the fast path does not take still reaches its route."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest

from app.api.app import create_app
from app.api.fast_write import FastWrite
from app.settings import Settings
from tests.helpers import FHIR, new_id, patient

HEADERS = ("content-type", "etag", "warning")


@pytest.fixture(scope="module")
async def routed(settings: Settings, pool: asyncpg.Pool) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the same application without the write fast path (FastAPI's router answers)."""
    app = create_app(settings, pool)
    app.user_middleware = [m for m in app.user_middleware if m.cls is not FastWrite]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
        yield c


def _shape(response: httpx.Response, rid: str) -> tuple:
    """What a client sees, with the resource's id and the server's clock left out."""
    body = response.json() if response.content else None
    if isinstance(body, dict) and body.get("resourceType") == "OperationOutcome":
        body = [(i["severity"], i["code"], i.get("diagnostics", "").replace(rid, "ID")) for i in body["issue"]]
    elif isinstance(body, dict):
        body = {k: v for k, v in body.items() if k not in ("id", "meta")}
    location = response.headers.get("location", response.headers.get("content-location", ""))
    headers = {h: response.headers.get(h) for h in HEADERS}
    return response.status_code, headers, location.replace(rid, "ID"), "last-modified" in response.headers, body


async def _both(client: httpx.AsyncClient, routed: httpx.AsyncClient, method: str, path: str, **kw: object) -> None:
    fast = await client.request(method, path, **kw)
    full = await routed.request(method, path, **kw)
    fast_id = fast.headers.get("location", "").split("/")[-3] if fast.status_code == 201 else ""
    full_id = full.headers.get("location", "").split("/")[-3] if full.status_code == 201 else ""
    assert _shape(fast, fast_id or "\0") == _shape(full, full_id or "\0"), (method, path, fast.text, full.text)


async def test_creates_answer_as_the_router_does(client: httpx.AsyncClient, routed: httpx.AsyncClient) -> None:
    body = patient(family="Fast")
    await _both(client, routed, "POST", "/fhir/Patient", json=body, headers=FHIR)
    for prefer in ("return=minimal", "return=OperationOutcome", "return=representation"):
        await _both(client, routed, "POST", "/fhir/Patient", json=body, headers={**FHIR, "Prefer": prefer})
    await _both(client, routed, "POST", "/fhir/Patient", json=body, headers={"Accept": "application/json"})
    await _both(client, routed, "POST", "/fhir/Patient", content=b"<Patient/>", headers={"Content-Type": "text/xml"})
    await _both(client, routed, "POST", "/fhir/Patient", content=b"{", headers=FHIR)
    await _both(client, routed, "POST", "/fhir/Patient", content=b'{"resourceType":"Patient","a":1,"a":2}')
    await _both(client, routed, "POST", "/fhir/Patient", json={"resourceType": "Observation"}, headers=FHIR)
    await _both(client, routed, "POST", "/fhir/Patient", json=patient(gender="nope"), headers=FHIR)
    lenient = {**FHIR, "Prefer": "handling=lenient"}
    await _both(client, routed, "POST", "/fhir/Patient", json=patient(gender="nope"), headers=lenient)


async def test_updates_answer_as_the_router_does(client: httpx.AsyncClient, routed: httpx.AsyncClient) -> None:
    pid = new_id()
    await client.put(f"/fhir/Patient/{pid}", json=patient(pid), headers=FHIR)
    await routed.put(f"/fhir/Patient/{pid}", json=patient(pid), headers=FHIR)  # both at version 2
    stale = {**FHIR, "If-Match": 'W/"1"'}
    await _both(client, routed, "PUT", f"/fhir/Patient/{pid}", json=patient(pid), headers=stale)
    await _both(client, routed, "PUT", f"/fhir/Patient/{pid}", json=patient("other"), headers=FHIR)
    await _both(client, routed, "PUT", f"/fhir/Patient/{pid}", json=patient(), headers=FHIR)
    await _both(client, routed, "PUT", f"/fhir/Patient/{pid}", json=patient(pid), headers={**FHIR, "If-Match": "x"})
    await _both(client, routed, "PUT", "/fhir/Patient/" + "x" * 70, json=patient("x" * 70), headers=FHIR)


async def test_successful_updates_answer_as_the_router_does(
    client: httpx.AsyncClient, routed: httpx.AsyncClient
) -> None:
    """Each on its own resource: the same body again (no search row changes), a new name, a stale
    and a current If-Match; then each resource is found by its current name only."""
    fast_id, full_id = new_id(), new_id()
    steps = [
        ({}, "One"),
        ({}, "One"),
        ({}, "Next"),
        ({"If-Match": 'W/"2"'}, "Stale"),
        ({"If-Match": 'W/"3"'}, "Last"),
    ]
    for extra, family in steps:
        fast = await client.put(
            f"/fhir/Patient/{fast_id}", json=patient(fast_id, family=family), headers={**FHIR, **extra}
        )
        full = await routed.put(
            f"/fhir/Patient/{full_id}", json=patient(full_id, family=family), headers={**FHIR, **extra}
        )
        assert _shape(fast, fast_id) == _shape(full, full_id), (extra, family, fast.text, full.text)
    for rid in (fast_id, full_id):
        current = (await client.get(f"/fhir/Patient?_id={rid}&family=Last")).json()
        assert [e["resource"]["meta"]["versionId"] for e in current.get("entry", [])] == ["4"]
        assert (await client.get(f"/fhir/Patient?_id={rid}&family=Next")).json().get("entry", []) == []


async def test_an_update_writes_the_next_version(client: httpx.AsyncClient, log_count) -> None:
    pid = new_id()
    first = await client.put(f"/fhir/Patient/{pid}", json=patient(pid), headers=FHIR)
    assert first.status_code == 201 and first.headers["location"].endswith(f"/Patient/{pid}/_history/1")
    before = await log_count()
    refused = await client.put(f"/fhir/Patient/{pid}", json=patient(pid), headers={**FHIR, "If-Match": 'W/"9"'})
    assert refused.status_code == 412 and refused.json()["resourceType"] == "OperationOutcome"
    assert await log_count() == before  # a refused write leaves the event log as it was
    second = await client.put(f"/fhir/Patient/{pid}", json=patient(pid, family="Two"), headers=FHIR)
    assert second.status_code == 200 and second.headers["etag"] == 'W/"2"'
    assert second.headers["content-location"].endswith(f"/Patient/{pid}/_history/2")
    assert second.json()["name"][0]["family"] == "Two"


async def test_what_it_does_not_take_reaches_its_route(client: httpx.AsyncClient) -> None:
    unknown = await client.post("/fhir/Nope", json={"resourceType": "Nope"}, headers=FHIR)
    assert unknown.status_code == 404 and unknown.json()["resourceType"] == "OperationOutcome"
    assert (await client.put("/fhir/metadata", json={}, headers=FHIR)).status_code == 405
    checked = await client.post("/fhir/Patient/$validate", json=patient(), headers=FHIR)
    assert checked.status_code == 200 and checked.json()["resourceType"] == "OperationOutcome"
    pid = new_id()
    criteria = {"identifier": f"urn:test|{pid}"}
    body = patient(identifier=[{"system": "urn:test", "value": pid}])
    made = await client.put("/fhir/Patient", params=criteria, json=body, headers=FHIR)  # conditional update
    assert made.status_code == 201
    again = await client.post("/fhir/Patient", params=criteria, json=body, headers=FHIR)  # conditional create
    assert again.status_code == 200 and again.headers["content-location"] == made.headers["location"]
