"""Binary in its native content type (https://hl7.org/fhir/R4/http.html#binary): raw bytes in,
raw bytes out unless a FHIR format is asked for."""

from __future__ import annotations

import base64

import httpx

from tests.helpers import new_id

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256))


async def test_binary_created_from_raw_bytes_and_read_back_raw(client: httpx.AsyncClient, log_count) -> None:
    before = await log_count()
    other = await client.post("/fhir/Patient", content=PNG, headers={"Content-Type": "image/png"})
    assert other.status_code == 415  # raw bytes are for Binary only
    assert await log_count() == before
    r = await client.post("/fhir/Binary", content=PNG, headers={"Content-Type": "image/png"})
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["resourceType"] == "Binary" and created["contentType"] == "image/png"
    assert base64.b64decode(created["data"]) == PNG
    bid = created["id"]
    for accept in ("image/png", "*/*", "image/*"):
        raw = await client.get(f"/fhir/Binary/{bid}", headers={"Accept": accept})
        assert raw.status_code == 200
        assert raw.headers["content-type"] == "image/png"
        assert raw.content == PNG
        assert raw.headers["etag"] == 'W/"1"'
    fhir = await client.get(f"/fhir/Binary/{bid}", headers={"Accept": "application/fhir+json"})
    assert fhir.headers["content-type"].startswith("application/fhir+json")
    assert fhir.json()["data"] == created["data"]
    as_format = await client.get(f"/fhir/Binary/{bid}?_format=json", headers={"Accept": "*/*"})
    assert as_format.json()["resourceType"] == "Binary"


async def test_binary_update_with_raw_bytes(client: httpx.AsyncClient) -> None:
    bid = new_id()
    r = await client.put(f"/fhir/Binary/{bid}", content=b"hello", headers={"Content-Type": "text/csv"})
    assert r.status_code == 201, r.text
    raw = await client.get(f"/fhir/Binary/{bid}", headers={"Accept": "text/csv"})
    assert raw.content == b"hello" and raw.headers["content-type"].startswith("text/csv")


async def test_binary_json_resource_still_created_as_fhir(client: httpx.AsyncClient) -> None:
    resource = {"resourceType": "Binary", "contentType": "text/plain", "data": base64.b64encode(b"x").decode()}
    r = await client.post("/fhir/Binary", json=resource, headers={"Content-Type": "application/fhir+json"})
    assert r.status_code == 201
    raw = await client.get(f"/fhir/Binary/{r.json()['id']}", headers={"Accept": "text/plain"})
    assert raw.content == b"x"


async def test_binary_refused_when_accept_excludes_its_type(client: httpx.AsyncClient) -> None:
    r = await client.post("/fhir/Binary", content=PNG, headers={"Content-Type": "image/png"})
    refused = await client.get(f"/fhir/Binary/{r.json()['id']}", headers={"Accept": "application/pdf"})
    assert refused.status_code == 406
    assert "image/png" in refused.json()["issue"][0]["diagnostics"]
