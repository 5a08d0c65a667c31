"""PATCH with JSON Merge Patch (RFC 7386, ``application/merge-patch+json``): null removes, objects
merge, arrays replace; the result is validated like an update; other content types are a 415."""

from __future__ import annotations

import httpx

from tests.helpers import new_id, patient

MERGE = {"Content-Type": "application/merge-patch+json"}


async def _created(client: httpx.AsyncClient) -> str:
    pid = new_id()
    body = patient(pid, gender="male", birthDate="1970-01-01", telecom=[{"system": "phone", "value": "1"}])
    assert (await client.put(f"/fhir/Patient/{pid}", json=body)).status_code == 201
    return pid


async def test_merge_patch_removes_merges_and_replaces(client: httpx.AsyncClient) -> None:
    pid = await _created(client)
    patch = {"gender": None, "active": True, "name": [{"family": "Merged"}], "meta": {"tag": [{"code": "x"}]}}
    r = await client.patch(f"/fhir/Patient/{pid}", json=patch, headers=MERGE)
    assert r.status_code == 200, r.text
    body = r.json()
    assert "gender" not in body
    assert body["active"] is True
    assert body["name"] == [{"family": "Merged"}]
    assert body["telecom"] == [{"system": "phone", "value": "1"}]
    assert body["birthDate"] == "1970-01-01"
    assert body["meta"]["versionId"] == "2" and body["meta"]["tag"] == [{"code": "x"}]
    assert (await client.get(f"/fhir/Patient/{pid}")).json()["name"] == [{"family": "Merged"}]


async def test_merge_patch_result_is_validated(client: httpx.AsyncClient, log_count) -> None:
    pid = await _created(client)
    before = await log_count()
    r = await client.patch(f"/fhir/Patient/{pid}", json={"birthDate": "not-a-date"}, headers=MERGE)
    assert r.status_code in (400, 422), r.text
    assert r.json()["resourceType"] == "OperationOutcome"
    assert "birthDate" in r.text
    changes_id = await client.patch(f"/fhir/Patient/{pid}", json={"id": "other"}, headers=MERGE)
    assert changes_id.status_code == 422
    not_object = await client.patch(f"/fhir/Patient/{pid}", json=[{"op": "remove", "path": "/gender"}], headers=MERGE)
    assert not_object.status_code == 400
    assert "JSON object" in not_object.json()["issue"][0]["diagnostics"]
    assert await log_count() == before


async def test_unsupported_patch_content_type_names_every_format(client: httpx.AsyncClient, log_count) -> None:
    pid = await _created(client)
    before = await log_count()
    r = await client.patch(f"/fhir/Patient/{pid}", content=b"gender: female", headers={"Content-Type": "text/yaml"})
    assert r.status_code == 415
    text = r.json()["issue"][0]["diagnostics"]
    for kind in ("application/json-patch+json", "application/merge-patch+json", "application/fhir+json", "FHIRPath"):
        assert kind in text, text
    assert await log_count() == before


async def test_merge_patch_inside_a_transaction_as_binary(client: httpx.AsyncClient) -> None:
    import base64

    import orjson

    pid = await _created(client)
    data = base64.b64encode(orjson.dumps({"gender": "female"})).decode()
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": {"resourceType": "Binary", "contentType": "application/merge-patch+json", "data": data},
                "request": {"method": "PATCH", "url": f"Patient/{pid}"},
            }
        ],
    }
    r = await client.post("/fhir", json=bundle)
    assert r.status_code == 200, r.text
    assert (await client.get(f"/fhir/Patient/{pid}")).json()["gender"] == "female"
