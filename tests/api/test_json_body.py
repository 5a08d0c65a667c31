"""400 for a body that is not FHIR JSON (wrong JSON types, array versus single value, control
characters, repeated keys), with every issue and its location; 422 for content errors; nothing
written either way."""

from __future__ import annotations

import httpx
import orjson

from tests.helpers import new_id, patient

JSON_PATCH = {"Content-Type": "application/json-patch+json"}
FHIR = {"Content-Type": "application/fhir+json"}


def located(r: httpx.Response) -> dict[str, str]:
    """expression -> code of every error issue."""
    return {i["expression"][0]: i["code"] for i in r.json()["issue"] if i["severity"] == "error" and "expression" in i}


async def test_wrong_json_types_are_400_with_every_issue(client: httpx.AsyncClient, log_count) -> None:
    before = await log_count()
    bad = {"resourceType": "Patient", "gender": 1, "name": [{"family": 5}], "active": "true", "birthDate": "1990-13-01"}
    r = await client.post("/fhir/Patient", json=bad)
    assert r.status_code == 400, r.text
    assert located(r) == {
        "Patient.gender": "structure",
        "Patient.name[0].family": "structure",
        "Patient.active": "structure",
        "Patient.birthDate": "value",  # a content error, reported with the others
    }
    assert "expected a JSON string" in r.text
    pid = new_id()
    r = await client.put(f"/fhir/Patient/{pid}", json={**bad, "id": pid})
    assert r.status_code == 400
    assert await log_count() == before


async def test_array_versus_single_value_is_400(client: httpx.AsyncClient, log_count) -> None:
    before = await log_count()
    r = await client.post(
        "/fhir/Patient", json={"resourceType": "Patient", "name": {"family": "X"}, "gender": ["male"]}
    )
    assert r.status_code == 400, r.text
    assert located(r) == {"Patient.name": "structure", "Patient.gender": "structure"}
    assert await log_count() == before


async def test_control_characters_are_400_not_500(client: httpx.AsyncClient, log_count) -> None:
    before = await log_count()
    for text in ("a\u0000b", "bell\u0007", "x\u001f"):
        body = {"resourceType": "Patient", "name": [{"family": text, "given": ["ok"]}]}
        for prefer in ("handling=strict", "handling=lenient"):
            r = await client.post("/fhir/Patient", json=body, headers={"Prefer": prefer})
            assert r.status_code == 400, r.text
            assert located(r) == {"Patient.name[0].family": "structure"}
            assert "control character" in r.text
    assert await log_count() == before
    ok = await client.post("/fhir/Patient", json={"resourceType": "Patient", "name": [{"text": "a\tb\r\nc"}]})
    assert ok.status_code == 201, ok.text


async def test_repeated_keys_are_400_naming_each(client: httpx.AsyncClient, log_count) -> None:
    before = await log_count()
    raw = b'{"resourceType":"Patient","gender":"male","name":[{"family":"A","family":"B"}],"gender":"female"}'
    r = await client.post("/fhir/Patient", content=raw, headers=FHIR)
    assert r.status_code == 400, r.text
    assert located(r) == {"Patient.gender": "structure", "Patient.name[0].family": "structure"}
    assert "appears 2 times" in r.text
    spaced = b'{"resourceType" : "Patient", "active" : true, "active" : false}'
    r = await client.post("/fhir/Patient", content=spaced, headers=FHIR)
    assert r.status_code == 400 and located(r) == {"Patient.active": "structure"}
    assert await log_count() == before
    # a string holding '":' is not a repeated key
    r = await client.post(
        "/fhir/Patient", content=b'{"resourceType":"Patient","name":[{"text":"a\\":b"}]}', headers=FHIR
    )
    assert r.status_code == 201, r.text


async def test_content_errors_stay_422(client: httpx.AsyncClient, log_count) -> None:
    before = await log_count()
    r = await client.post("/fhir/Patient", json={"resourceType": "Patient", "gender": "mal", "foo": 1})
    assert r.status_code == 422
    assert located(r) == {"Patient.gender": "code-invalid", "Patient.foo": "processing"}
    assert await log_count() == before


async def test_patch_results_are_checked_the_same_way(client: httpx.AsyncClient, log_count) -> None:
    pid = new_id()
    await client.put(f"/fhir/Patient/{pid}", json=patient(pid, family="Orig", gender="male"))
    before = await log_count()
    ops = [{"op": "replace", "path": "/gender", "value": 1}]
    r = await client.patch(f"/fhir/Patient/{pid}", content=orjson.dumps(ops), headers=JSON_PATCH)
    assert r.status_code == 400, r.text
    assert located(r) == {"Patient.gender": "structure"}
    ops = [{"op": "replace", "path": "/name/0/family", "value": "a\u0000"}]
    r = await client.patch(f"/fhir/Patient/{pid}", content=orjson.dumps(ops), headers=JSON_PATCH)
    assert r.status_code == 400, r.text
    assert "control character" in r.text
    ops = [{"op": "replace", "path": "/gender", "value": "bogus"}]
    r = await client.patch(f"/fhir/Patient/{pid}", content=orjson.dumps(ops), headers=JSON_PATCH)
    assert r.status_code == 422
    assert await log_count() == before


async def test_validate_operation_reports_json_level_issues(client: httpx.AsyncClient, log_count) -> None:
    before = await log_count()
    raw = b'{"resourceType":"Patient","gender":1,"name":[{"family":"a\\u0000"}],"active":true,"active":false}'
    r = await client.post("/fhir/Patient/$validate", content=raw, headers=FHIR)
    assert r.status_code == 200, r.text
    assert located(r) == {
        "Patient.gender": "structure",
        "Patient.name[0].family": "structure",
        "Patient.active": "structure",
    }
    assert await log_count() == before


async def test_transaction_with_one_bad_entry_is_400_naming_it(client: httpx.AsyncClient, log_count) -> None:
    before = await log_count()
    good = {"resource": {"resourceType": "Patient", "gender": "male"}, "request": {"method": "POST", "url": "Patient"}}
    bad = {"resource": {"resourceType": "Patient", "gender": 1}, "request": {"method": "POST", "url": "Patient"}}
    r = await client.post("/fhir", json={"resourceType": "Bundle", "type": "transaction", "entry": [good, bad]})
    assert r.status_code == 400, r.text
    assert located(r) == {"Bundle.entry[1].resource.gender": "structure"}
    assert "Bundle.entry[1]" in r.json()["issue"][0]["diagnostics"]
    raw = orjson.dumps({"resourceType": "Bundle", "type": "transaction", "entry": [good]})
    raw = raw.replace(b'"gender":"male"', b'"gender":"male","gender":"female"')
    r = await client.post("/fhir", content=raw, headers=FHIR)
    assert r.status_code == 400, r.text
    assert located(r) == {"Bundle.entry[0].resource.gender": "structure"}
    nul = {"resource": {"resourceType": "Patient", "name": [{"family": "\u0000"}]}, "request": good["request"]}
    r = await client.post("/fhir", json={"resourceType": "Bundle", "type": "batch", "entry": [nul]})
    assert r.status_code in (200, 400), r.text
    assert "control character" in r.text
    assert await log_count() == before
