"""PATCH with JSON Patch and FHIRPath Patch (https://hl7.org/fhir/R4/http.html#patch)."""

from __future__ import annotations

import base64

import httpx
import orjson

from tests.helpers import new_id, patient

JSON_PATCH = {"Content-Type": "application/json-patch+json"}


async def _patient(client: httpx.AsyncClient) -> str:
    pid = new_id()
    await client.put(f"/fhir/Patient/{pid}", json=patient(pid, family="Orig", gender="male"))
    return pid


async def test_json_patch_creates_a_new_version(client: httpx.AsyncClient) -> None:
    pid = await _patient(client)
    ops = [{"op": "replace", "path": "/gender", "value": "female"}, {"op": "add", "path": "/active", "value": True}]
    r = await client.patch(f"/fhir/Patient/{pid}", content=orjson.dumps(ops), headers=JSON_PATCH)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["gender"] == "female" and body["active"] is True
    assert body["meta"]["versionId"] == "2" and r.headers["etag"] == 'W/"2"'
    assert (await client.get(f"/fhir/Patient/{pid}/_history/1")).json()["gender"] == "male"


async def test_fhirpath_patch(client: httpx.AsyncClient) -> None:
    pid = await _patient(client)
    params = {
        "resourceType": "Parameters",
        "parameter": [
            {
                "name": "operation",
                "part": [
                    {"name": "type", "valueCode": "replace"},
                    {"name": "path", "valueString": "Patient.name[0].family"},
                    {"name": "value", "valueString": "Patched"},
                ],
            }
        ],
    }
    r = await client.patch(f"/fhir/Patient/{pid}", json=params, headers={"Content-Type": "application/fhir+json"})
    assert r.status_code == 200, r.text
    assert r.json()["name"][0]["family"] == "Patched"


async def test_patch_honours_if_match_and_rejects_bad_patches(client: httpx.AsyncClient, log_count) -> None:
    pid = await _patient(client)
    before = await log_count()
    replace = orjson.dumps([{"op": "replace", "path": "/gender", "value": "other"}])
    cases = [
        (replace, {**JSON_PATCH, "If-Match": 'W/"7"'}, 412),
        (b'{"op": "replace"}', JSON_PATCH, 400),
        (orjson.dumps([{"op": "replace", "path": "/nothing/0", "value": 1}]), JSON_PATCH, 422),
        (orjson.dumps([{"op": "replace", "path": "/gender", "value": "bogus"}]), JSON_PATCH, 422),
        (orjson.dumps([{"op": "replace", "path": "/id", "value": "other"}]), JSON_PATCH, 422),
        (b"not json", JSON_PATCH, 400),
    ]
    for body, headers, status in cases:
        r = await client.patch(f"/fhir/Patient/{pid}", content=body, headers=headers)
        assert r.status_code == status, (body, r.text)
        assert r.json()["resourceType"] == "OperationOutcome"
    assert (await client.patch(f"/fhir/Patient/{new_id()}", content=replace, headers=JSON_PATCH)).status_code == 404
    assert await log_count() == before
    ok = await client.patch(f"/fhir/Patient/{pid}", content=replace, headers={**JSON_PATCH, "If-Match": 'W/"1"'})
    assert ok.status_code == 200


async def test_patch_inside_a_transaction(client: httpx.AsyncClient) -> None:
    pid = await _patient(client)
    ops = base64.b64encode(orjson.dumps([{"op": "add", "path": "/active", "value": False}])).decode()
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": {"resourceType": "Binary", "contentType": "application/json-patch+json", "data": ops},
                "request": {"method": "PATCH", "url": f"Patient/{pid}"},
            }
        ],
    }
    r = await client.post("/fhir", json=bundle)
    assert r.status_code == 200, r.text
    assert r.json()["entry"][0]["response"]["status"] == "200 OK"
    assert (await client.get(f"/fhir/Patient/{pid}")).json()["active"] is False
