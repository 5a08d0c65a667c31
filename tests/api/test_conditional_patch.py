"""Conditional patch ``PATCH [type]?criteria`` (https://hl7.org/fhir/R4/http.html#patch: the rules of
conditional update): no match is a 404, one match is patched, several are a 412; the same in a
transaction Bundle entry; a refusal writes nothing."""

from __future__ import annotations

import uuid

import httpx
import orjson

from tests.api.authz_helpers import assert_refused, bearer_for, seed
from tests.helpers import new_id, patient

JSON_PATCH = {"Content-Type": "application/json-patch+json"}
TO_FEMALE = orjson.dumps([{"op": "replace", "path": "/gender", "value": "female"}])
SYSTEM = "http://fhirledger.test/mrn"


def _with_ident(value: str, **extra: object) -> dict:
    return patient(identifier=[{"system": SYSTEM, "value": value}], gender="male", **extra)


def _url(value: str) -> str:
    return f"/fhir/Patient?identifier={SYSTEM}|{value}"


def _transaction(url: str, resource: dict, if_match: str | None = None) -> dict:
    request = {"method": "PATCH", "url": url, **({"ifMatch": if_match} if if_match else {})}
    return {"resourceType": "Bundle", "type": "transaction", "entry": [{"resource": resource, "request": request}]}


def _fhirpath_to_female() -> dict:
    op = [
        {"name": "type", "valueCode": "replace"},
        {"name": "path", "valueString": "Patient.gender"},
        {"name": "value", "valueCode": "female"},
    ]
    return {"resourceType": "Parameters", "parameter": [{"name": "operation", "part": op}]}


async def test_one_match_is_patched(client: httpx.AsyncClient) -> None:
    value = uuid.uuid4().hex[:12]
    created = (await client.post("/fhir/Patient", json=_with_ident(value))).json()
    r = await client.patch(_url(value), content=TO_FEMALE, headers=JSON_PATCH)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["id"], body["gender"], body["meta"]["versionId"]) == (created["id"], "female", "2")
    assert r.headers["ETag"] == 'W/"2"'
    assert r.headers["Content-Location"].endswith(f"/fhir/Patient/{created['id']}/_history/2")
    audit = await client.get(f"/fhir/Patient/{created['id']}/_history")
    assert audit.json()["entry"][0]["request"]["method"] == "PATCH"


async def test_no_match_is_404_and_several_are_412_writing_nothing(client: httpx.AsyncClient, log_count) -> None:
    value = uuid.uuid4().hex[:12]
    before = await log_count()
    r = await client.patch(_url(value), content=TO_FEMALE, headers=JSON_PATCH)
    assert_refused(r, 404, "not-found", f"PATCH Patient?identifier={SYSTEM}|{value}", "to patch")
    assert await log_count() == before
    for _ in range(2):
        await client.post("/fhir/Patient", json=_with_ident(value))
    before = await log_count()
    r = await client.patch(_url(value), content=TO_FEMALE, headers=JSON_PATCH)
    assert_refused(r, 412, "multiple-matches", "2 Patient resources match", "conditional patch")
    assert await log_count() == before


async def test_if_match_is_checked_against_the_match(client: httpx.AsyncClient, log_count) -> None:
    value = uuid.uuid4().hex[:12]
    await client.post("/fhir/Patient", json=_with_ident(value))
    before = await log_count()
    stale = await client.patch(_url(value), content=TO_FEMALE, headers={**JSON_PATCH, "If-Match": 'W/"7"'})
    assert_refused(stale, 412, "conflict", "If-Match asked for version 7")
    assert await log_count() == before
    ok = await client.patch(_url(value), content=TO_FEMALE, headers={**JSON_PATCH, "If-Match": 'W/"1"'})
    assert ok.status_code == 200 and ok.headers["ETag"] == 'W/"2"'


async def test_fhirpath_patch_and_request_errors(client: httpx.AsyncClient, log_count) -> None:
    value = uuid.uuid4().hex[:12]
    await client.post("/fhir/Patient", json=_with_ident(value))
    r = await client.patch(_url(value), json=_fhirpath_to_female(), headers={"Content-Type": "application/fhir+json"})
    assert r.status_code == 200 and r.json()["gender"] == "female", r.text
    before = await log_count()
    r = await client.patch("/fhir/Patient", content=TO_FEMALE, headers=JSON_PATCH)
    assert_refused(r, 400, "invalid", "PATCH Patient needs an id")
    r = await client.patch(_url(value), content=TO_FEMALE, headers={"Content-Type": "application/xml"})
    assert_refused(r, 415, "not-supported", "not a patch format")
    r = await client.patch(_url(value), content=b'[{"op": "replace", "path": "/id", "value": "x"}]', headers=JSON_PATCH)
    assert_refused(r, 422, "processing", "cannot change the resource's type or id")
    assert await log_count() == before


async def test_transaction_entry_has_the_same_rules(client: httpx.AsyncClient, log_count) -> None:
    value = uuid.uuid4().hex[:12]
    url = f"Patient?identifier={SYSTEM}|{value}"
    before = await log_count()
    r = await client.post("/fhir", json=_transaction(url, _fhirpath_to_female()))
    assert_refused(r, 404, "not-found", "Bundle.entry[0]", "to patch")
    created = (await client.post("/fhir/Patient", json=_with_ident(value))).json()
    r = await client.post("/fhir", json=_transaction(url, _fhirpath_to_female(), 'W/"3"'))
    assert_refused(r, 412, "conflict", "Bundle.entry[0]")
    r = await client.post("/fhir", json=_transaction(url, _fhirpath_to_female(), 'W/"1"'))
    assert r.status_code == 200, r.text
    response = r.json()["entry"][0]["response"]
    assert response["status"] == "200 OK" and response["etag"] == 'W/"2"'
    assert response["location"] == f"Patient/{created['id']}/_history/2"
    await client.post("/fhir/Patient", json=_with_ident(value))
    moment = await log_count()
    r = await client.post("/fhir", json=_transaction(url, _fhirpath_to_female()))
    assert_refused(r, 412, "multiple-matches", "Bundle.entry[0]", "conditional patch")
    assert await log_count() == moment == before + 3


async def test_scopes_apply_to_conditional_patch(auth_client: httpx.AsyncClient, pool, log_count) -> None:
    mine, other = new_id("me"), new_id("other")
    value = uuid.uuid4().hex[:12]
    await seed(pool, auth_client, patient(mine))
    await seed(pool, auth_client, _with_ident(value, id=other))
    before = await log_count()
    r = await auth_client.patch(_url(value), content=TO_FEMALE, headers={**JSON_PATCH, **bearer_for("user/Patient.u")})
    assert_refused(r, 403, "forbidden", "conditional-patch", "user/Patient.us")  # it also searches
    token = bearer_for("patient/Patient.rus", patient=mine)
    r = await auth_client.patch(_url(value), content=TO_FEMALE, headers={**JSON_PATCH, **token})
    # another patient does not exist for a patient/ token: no match, and no word of its id
    assert_refused(r, 404, "not-found", "no Patient matches")
    assert other not in r.text
    assert await log_count() == before
    r = await auth_client.patch(_url(value), content=TO_FEMALE, headers={**JSON_PATCH, **bearer_for("user/Patient.us")})
    assert r.status_code == 200 and r.json()["id"] == other, r.text
