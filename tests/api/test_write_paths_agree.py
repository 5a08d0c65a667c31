"""A write sent as its own HTTP request and the same write as a transaction Bundle entry run the same
command, so they answer alike: status, ETag (version) and location of the version written or found
(http.html#create, #ccreate, #update, #cond-update, #delete, #patch; Bundle.entry.response)."""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass

import httpx
import orjson
import pytest

from tests.helpers import patient

SYSTEM = "http://fhirledger.test/agree"
JSON_PATCH_DOC = [{"op": "add", "path": "/gender", "value": "female"}]


@dataclass(frozen=True)
class Outcome:
    status: int
    etag: str | None
    location: str | None  # [type]/[id]/_history/[vid], the id written as {id}


def _normalised(location: str | None, rid: str | None) -> str | None:
    if location is None:
        return None
    path = location.split("/fhir/", 1)[-1]
    return path.replace(rid, "{id}") if rid else path


async def _direct(client: httpx.AsyncClient, method: str, url: str, body: object, headers: dict) -> Outcome:
    content = orjson.dumps(body) if body is not None else None
    r = await client.request(method, f"/fhir/{url}", content=content, headers=headers)
    assert r.status_code < 300, r.text
    location = r.headers.get("Location") or r.headers.get("Content-Location")
    rid = r.json().get("id") if r.content and r.json().get("resourceType") == "Patient" else None
    return Outcome(r.status_code, r.headers.get("ETag"), _normalised(location, rid))


async def _in_bundle(client: httpx.AsyncClient, method: str, url: str, resource: object, request: dict) -> Outcome:
    entry: dict = {"request": {"method": method, "url": url, **request}}
    if resource is not None:
        entry["resource"] = resource
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [entry]}
    r = await client.post("/fhir", json=bundle, headers={"Prefer": "return=representation"})
    assert r.status_code == 200, r.text
    answered = r.json()["entry"][0]
    response = answered["response"]
    rid = answered.get("resource", {}).get("id")
    return Outcome(int(response["status"].split()[0]), response.get("etag"), _normalised(response.get("location"), rid))


def _ident(value: str, **extra: object) -> dict:
    return patient(identifier=[{"system": SYSTEM, "value": value}], gender="male", **extra)


async def _seed(client: httpx.AsyncClient, body: dict) -> str:
    r = await client.post("/fhir/Patient", json=body)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def _binary_patch() -> dict:
    data = base64.b64encode(orjson.dumps(JSON_PATCH_DOC)).decode()
    return {"resourceType": "Binary", "contentType": "application/json-patch+json", "data": data}


async def _create(client: httpx.AsyncClient) -> tuple[Outcome, Outcome]:
    body = patient()
    return await _direct(client, "POST", "Patient", body, {}), await _in_bundle(client, "POST", "Patient", body, {})


async def _conditional_create_matching(client: httpx.AsyncClient) -> tuple[Outcome, Outcome]:
    value = uuid.uuid4().hex
    await _seed(client, _ident(value))
    criteria = f"identifier={SYSTEM}|{value}"
    direct = await _direct(client, "POST", "Patient", _ident(value), {"If-None-Exist": criteria})
    return direct, await _in_bundle(client, "POST", "Patient", _ident(value), {"ifNoneExist": criteria})


async def _conditional_create_new(client: httpx.AsyncClient) -> tuple[Outcome, Outcome]:
    a, b = uuid.uuid4().hex, uuid.uuid4().hex
    direct = await _direct(client, "POST", "Patient", _ident(a), {"If-None-Exist": f"identifier={SYSTEM}|{a}"})
    return direct, await _in_bundle(client, "POST", "Patient", _ident(b), {"ifNoneExist": f"identifier={SYSTEM}|{b}"})


async def _update(client: httpx.AsyncClient) -> tuple[Outcome, Outcome]:
    a, b = await _seed(client, patient()), await _seed(client, patient())
    direct = await _direct(client, "PUT", f"Patient/{a}", patient(a, "Updated"), {"If-Match": 'W/"1"'})
    return direct, await _in_bundle(client, "PUT", f"Patient/{b}", patient(b, "Updated"), {"ifMatch": 'W/"1"'})


async def _conditional_update(client: httpx.AsyncClient) -> tuple[Outcome, Outcome]:
    a, b = uuid.uuid4().hex, uuid.uuid4().hex
    await _seed(client, _ident(a))
    await _seed(client, _ident(b))
    direct = await _direct(client, "PUT", f"Patient?identifier={SYSTEM}|{a}", _ident(a, family="New"), {})
    return direct, await _in_bundle(client, "PUT", f"Patient?identifier={SYSTEM}|{b}", _ident(b, family="New"), {})


async def _delete(client: httpx.AsyncClient) -> tuple[Outcome, Outcome]:
    """The direct DELETE answers 200 with an OperationOutcome unless ``Prefer: return=minimal``;
    then, like the Bundle entry, 204 with the deletion's ETag."""
    a, b = await _seed(client, patient()), await _seed(client, patient())
    direct = await _direct(client, "DELETE", f"Patient/{a}", None, {"Prefer": "return=minimal"})
    return direct, await _in_bundle(client, "DELETE", f"Patient/{b}", None, {})


async def _patch(client: httpx.AsyncClient) -> tuple[Outcome, Outcome]:
    a, b = await _seed(client, patient()), await _seed(client, patient())
    headers = {"Content-Type": "application/json-patch+json"}
    direct = await _direct(client, "PATCH", f"Patient/{a}", JSON_PATCH_DOC, headers)
    return direct, await _in_bundle(client, "PATCH", f"Patient/{b}", _binary_patch(), {})


CASES = {
    "create": (_create, Outcome(201, 'W/"1"', "Patient/{id}/_history/1")),
    "conditional create, a match": (_conditional_create_matching, Outcome(200, 'W/"1"', "Patient/{id}/_history/1")),
    "conditional create, no match": (_conditional_create_new, Outcome(201, 'W/"1"', "Patient/{id}/_history/1")),
    "update": (_update, Outcome(200, 'W/"2"', "Patient/{id}/_history/2")),
    "conditional update": (_conditional_update, Outcome(200, 'W/"2"', "Patient/{id}/_history/2")),
    "delete": (_delete, Outcome(204, 'W/"2"', None)),
    "patch": (_patch, Outcome(200, 'W/"2"', "Patient/{id}/_history/2")),
}


@pytest.mark.parametrize("case", list(CASES))
async def test_direct_write_and_bundle_entry_answer_alike(client: httpx.AsyncClient, case: str) -> None:
    run, expected = CASES[case]
    direct, in_bundle = await run(client)
    assert direct == in_bundle == expected


async def test_lenient_warnings_reach_the_bundle_entry_as_they_reach_the_direct_answer(
    client: httpx.AsyncClient,
) -> None:
    body = {"resourceType": "Patient", "gender": "male", "foo": 1}
    direct = await client.post("/fhir/Patient", json=body, headers={"Prefer": "handling=lenient"})
    assert direct.status_code == 201 and "unknown element" in direct.headers["warning"]
    for kind in ("transaction", "batch"):
        entry = {"resource": body, "request": {"method": "POST", "url": "Patient"}}
        bundle = {"resourceType": "Bundle", "type": kind, "entry": [entry]}
        r = await client.post("/fhir", json=bundle, headers={"Prefer": "handling=lenient"})
        assert r.status_code == 200, r.text
        response = r.json()["entry"][0]["response"]
        assert response["status"] == "201 Created"
        issues = response["outcome"]["issue"]
        assert [i["severity"] for i in issues] == ["warning"] and "unknown element" in issues[0]["diagnostics"]
