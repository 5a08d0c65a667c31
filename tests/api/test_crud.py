"""create, read, update, delete, vread over HTTP."""

from __future__ import annotations

import httpx
import orjson

from app.events.codec import decode
from tests.helpers import FHIR, new_id, patient


async def test_create_answers_201_with_location_etag_and_server_meta(client: httpx.AsyncClient) -> None:
    r = await client.post("/fhir/Patient", content=orjson.dumps(patient(family="Create")), headers=FHIR)
    assert r.status_code == 201
    assert r.headers["content-type"].startswith("application/fhir+json")
    body = r.json()
    rid = body["id"]
    assert r.headers["location"] == f"http://testserver/fhir/Patient/{rid}/_history/1"
    assert r.headers["etag"] == 'W/"1"'
    assert body["meta"]["versionId"] == "1"
    assert body["meta"]["lastUpdated"].endswith("Z")
    assert body["name"][0]["family"] == "Create"
    read = await client.get(f"/fhir/Patient/{rid}")
    assert read.status_code == 200
    assert read.json() == body
    assert read.headers["etag"] == 'W/"1"'
    assert read.headers["last-modified"].endswith("GMT")


async def test_create_ignores_client_id_and_version(client: httpx.AsyncClient) -> None:
    sent = patient("client-chosen", meta={"versionId": "7", "tag": [{"code": "x"}]})
    r = await client.post("/fhir/Patient", json=sent)
    assert r.status_code == 201
    assert r.json()["id"] != "client-chosen"
    assert r.json()["meta"]["versionId"] == "1"
    assert r.json()["meta"]["tag"] == [{"code": "x"}]


async def test_plain_application_json_is_accepted_and_can_be_returned(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/fhir/Patient", content=orjson.dumps(patient()), headers={"Content-Type": "application/json; charset=utf-8"}
    )
    assert r.status_code == 201
    rid = r.json()["id"]
    r = await client.get(f"/fhir/Patient/{rid}", headers={"Accept": "application/json"})
    assert r.headers["content-type"].startswith("application/json")
    r = await client.get(f"/fhir/Patient/{rid}?_format=json")
    assert r.headers["content-type"].startswith("application/fhir+json")
    r = await client.get(f"/fhir/Patient/{rid}?_format=application/json")
    assert r.headers["content-type"].startswith("application/json")


async def test_update_as_create_then_update_then_vread(client: httpx.AsyncClient) -> None:
    pid = new_id()
    r = await client.put(f"/fhir/Patient/{pid}", json=patient(pid, family="One"))
    assert r.status_code == 201
    assert r.headers["location"].endswith(f"/Patient/{pid}/_history/1")
    r = await client.put(f"/fhir/Patient/{pid}", json=patient(pid, family="Two"))
    assert r.status_code == 200
    assert r.json()["meta"]["versionId"] == "2"
    assert r.headers["etag"] == 'W/"2"'
    v1 = await client.get(f"/fhir/Patient/{pid}/_history/1")
    assert v1.status_code == 200 and v1.json()["name"][0]["family"] == "One"
    assert v1.headers["etag"] == 'W/"1"'
    v2 = await client.get(f"/fhir/Patient/{pid}/_history/2")
    assert v2.json()["name"][0]["family"] == "Two"
    assert (await client.get(f"/fhir/Patient/{pid}/_history/3")).status_code == 404
    assert (await client.get(f"/fhir/Patient/{pid}/_history/x")).status_code == 404


async def test_if_match_mismatch_is_412_and_match_succeeds(client: httpx.AsyncClient, log_count) -> None:
    pid = new_id()
    await client.put(f"/fhir/Patient/{pid}", json=patient(pid))
    before = await log_count()
    r = await client.put(f"/fhir/Patient/{pid}", json=patient(pid), headers={"If-Match": 'W/"5"'})
    assert r.status_code == 412
    assert r.json()["resourceType"] == "OperationOutcome"
    assert "current version is 1" in r.json()["issue"][0]["diagnostics"]
    assert await log_count() == before
    r = await client.put(f"/fhir/Patient/{pid}", json=patient(pid), headers={"If-Match": 'W/"1"'})
    assert r.status_code == 200
    r = await client.put(f"/fhir/Patient/{pid}", json=patient(pid), headers={"If-Match": '"2"'})
    assert r.status_code == 200


async def test_delete_then_read_410_vread_410_and_idempotent_delete(client: httpx.AsyncClient, log_count) -> None:
    pid = new_id()
    await client.put(f"/fhir/Patient/{pid}", json=patient(pid))
    r = await client.delete(f"/fhir/Patient/{pid}")
    assert r.status_code == 200
    assert r.json()["resourceType"] == "OperationOutcome"
    assert (await client.get(f"/fhir/Patient/{pid}")).status_code == 410
    assert (await client.get(f"/fhir/Patient/{pid}/_history/2")).status_code == 410
    assert (await client.get(f"/fhir/Patient/{pid}/_history/1")).status_code == 200
    before = await log_count()
    again = await client.delete(f"/fhir/Patient/{pid}")
    assert again.status_code in (200, 204)
    never = await client.delete(f"/fhir/Patient/{new_id()}")
    assert never.status_code in (200, 204)
    assert await log_count() == before


async def test_recreate_after_delete_gets_the_next_version(client: httpx.AsyncClient) -> None:
    pid = new_id()
    await client.put(f"/fhir/Patient/{pid}", json=patient(pid))
    await client.delete(f"/fhir/Patient/{pid}")
    r = await client.put(f"/fhir/Patient/{pid}", json=patient(pid, family="Back"))
    assert r.status_code == 201
    assert r.json()["meta"]["versionId"] == "3"
    assert (await client.get(f"/fhir/Patient/{pid}")).json()["name"][0]["family"] == "Back"


async def test_read_unknown_is_404(client: httpx.AsyncClient) -> None:
    r = await client.get(f"/fhir/Patient/{new_id()}")
    assert r.status_code == 404
    assert r.json()["issue"][0]["code"] == "not-found"


async def test_prefer_return_minimal_representation_and_outcome(client: httpx.AsyncClient) -> None:
    r = await client.post("/fhir/Patient", json=patient(), headers={"Prefer": "return=minimal"})
    assert r.status_code == 201 and r.content == b""
    assert "location" in r.headers
    r = await client.post("/fhir/Patient", json=patient(), headers={"Prefer": "return=OperationOutcome"})
    assert r.status_code == 201 and r.json()["resourceType"] == "OperationOutcome"
    assert r.json()["issue"][0]["severity"] == "information"
    r = await client.post("/fhir/Patient", json=patient(), headers={"Prefer": "return=representation"})
    assert r.json()["resourceType"] == "Patient"
    pid = r.json()["id"]
    r = await client.delete(f"/fhir/Patient/{pid}", headers={"Prefer": "return=minimal"})
    assert r.status_code == 204 and r.content == b""


async def test_if_none_match_with_or_without_quotes(client: httpx.AsyncClient) -> None:
    pid = new_id()
    await client.put(f"/fhir/Patient/{pid}", json=patient(pid))
    for tag in ('W/"1"', '"1"', "1"):
        r = await client.get(f"/fhir/Patient/{pid}", headers={"If-None-Match": tag})
        assert r.status_code == 304, tag
    for tag in ('W/"9"', '"9"', "9", "garbage"):
        r = await client.get(f"/fhir/Patient/{pid}", headers={"If-None-Match": tag})
        assert r.status_code == 200, tag


async def test_ids_with_dots_and_dashes_and_64_chars(client: httpx.AsyncClient) -> None:
    pid = "a.b-C" + "x" * 59
    assert len(pid) == 64
    r = await client.put(f"/fhir/Patient/{pid}", json=patient(pid))
    assert r.status_code == 201
    assert (await client.get(f"/fhir/Patient/{pid}")).json()["id"] == pid


async def test_stored_bytes_are_served_unchanged(client: httpx.AsyncClient, pool) -> None:
    r = await client.post(
        "/fhir/Observation",
        json={
            "resourceType": "Observation",
            "status": "final",
            "code": {"text": "x"},
            "valueQuantity": {"value": 1.50},
        },
    )
    rid = r.json()["id"]
    stored = decode(await pool.fetchval("SELECT resource FROM event_log WHERE resource_id = $1 AND version = 1", rid))
    assert (await client.get(f"/fhir/Observation/{rid}")).content == stored
    assert (await client.get(f"/fhir/Observation/{rid}/_history/1")).content == stored


async def test_head_answers_like_get_without_a_body(client: httpx.AsyncClient) -> None:
    pid = new_id()
    await client.put(f"/fhir/Patient/{pid}", json=patient(pid))
    r = await client.head(f"/fhir/Patient/{pid}")
    assert r.status_code == 200 and r.headers["etag"] == 'W/"1"' and r.content == b""
    assert (await client.head(f"/fhir/Patient/{new_id()}")).status_code == 404
    assert (await client.head(f"/fhir/Patient/{pid}/_history/1")).status_code == 200
    assert (await client.head("/fhir/metadata")).status_code == 200
