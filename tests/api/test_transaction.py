"""Transaction and batch Bundles: atomic, one transaction id, references resolved, order kept."""

from __future__ import annotations

import uuid

import httpx

from app.events.codec import decode
from tests.helpers import new_id, patient


def _urn() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def _tx(*entries: dict, kind: str = "transaction") -> dict:
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


def _post(resource: dict, full_url: str | None = None, **request: str) -> dict:
    entry: dict = {"resource": resource, "request": {"method": "POST", "url": resource["resourceType"], **request}}
    if full_url:
        entry["fullUrl"] = full_url
    return entry


def _obs(subject: str, **extra: object) -> dict:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "t"},
        "subject": {"reference": subject},
        **extra,
    }


async def test_transaction_creates_and_resolves_urn_references(client: httpx.AsyncClient, pool) -> None:
    p_urn, o_urn = _urn(), _urn()
    bundle = _tx(
        _post(_obs(p_urn, hasMember=[{"reference": o_urn}]), _urn()),
        _post(patient(), p_urn),
        _post({"resourceType": "Observation", "status": "final", "code": {"text": "m"}}, o_urn),
        _post(
            {"resourceType": "DocumentReference", "status": "current", "content": [{"attachment": {"url": p_urn}}]},
            _urn(),
        ),
    )
    r = await client.post("/fhir", json=bundle)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["type"] == "transaction-response"
    statuses = [e["response"]["status"] for e in out["entry"]]
    assert statuses == ["201 Created"] * 4
    locations = [e["response"]["location"] for e in out["entry"]]
    assert locations[1].startswith("Patient/") and locations[1].endswith("/_history/1")
    patient_ref = locations[1].split("/_history")[0]
    obs = (await client.get(f"/fhir/{locations[0].split('/_history')[0]}")).json()
    assert obs["subject"]["reference"] == patient_ref
    assert obs["hasMember"][0]["reference"] == locations[2].split("/_history")[0]
    doc = (await client.get(f"/fhir/{locations[3].split('/_history')[0]}")).json()
    assert doc["content"][0]["attachment"]["url"] == patient_ref
    ids = [loc.split("/")[1] for loc in locations]
    tx_ids = await pool.fetch("SELECT DISTINCT tx_id FROM event_log WHERE resource_id = ANY($1)", ids)
    assert len(tx_ids) == 1


async def test_transaction_response_keeps_request_order_and_processing_order(client: httpx.AsyncClient) -> None:
    pid = new_id()
    await client.put(f"/fhir/Patient/{pid}", json=patient(pid))
    bundle = _tx(
        {"request": {"method": "GET", "url": f"Patient/{pid}"}},
        {"resource": patient(pid, family="Put"), "request": {"method": "PUT", "url": f"Patient/{pid}"}},
        _post(patient()),
    )
    r = await client.post("/fhir/", json=bundle, headers={"Prefer": "return=representation"})
    assert r.status_code == 200, r.text
    entries = r.json()["entry"]
    # GET is processed last, so it sees the PUT of the same transaction
    assert entries[0]["resource"]["name"][0]["family"] == "Put"
    assert entries[1]["response"]["status"] == "200 OK"
    assert entries[1]["resource"]["meta"]["versionId"] == "2"
    assert entries[2]["response"]["status"] == "201 Created"


async def test_failing_entry_rolls_back_everything(client: httpx.AsyncClient, log_count) -> None:
    pid = new_id()
    await client.put(f"/fhir/Patient/{pid}", json=patient(pid))
    before = await log_count()
    bundle = _tx(
        _post(patient(family="Never")),
        {"resource": patient(pid), "request": {"method": "PUT", "url": f"Patient/{pid}", "ifMatch": 'W/"9"'}},
    )
    r = await client.post("/fhir", json=bundle)
    assert r.status_code == 412
    outcome = r.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert "Bundle.entry[1]" in outcome["issue"][0]["diagnostics"]
    assert await log_count() == before


async def test_bad_bundles_are_rejected_and_write_nothing(client: httpx.AsyncClient, log_count) -> None:
    dup = _urn()
    cases = [
        (_tx({"resource": patient()}), 400, "request"),
        (_tx(_post(patient(), dup), _post(patient(), dup)), 400, "fullUrl"),
        (_tx(_post(_obs(_urn()))), 400, "names no entry"),
        (_tx({"resource": patient(), "request": {"method": "COPY", "url": "Patient"}}), 400, "not supported"),
        (_tx({"resource": patient(), "request": {"method": "POST", "url": "Nope"}}), 400, "resource type"),
        (_tx(_post({"resourceType": "Patient", "gender": "nonsense"})), 422, "Bundle.entry[0]"),
        ({"resourceType": "Bundle", "type": "collection"}, 400, "cannot be processed"),
        ({"resourceType": "Patient"}, 400, "Bundle"),
        (
            _tx(
                *[_post(patient()) for _ in range(3)],
                {"resource": patient("x"), "request": {"method": "PUT", "url": "Patient/a"}},
            ),
            400,
            "does not match",
        ),
    ]
    for bundle, status, text in cases:
        before = await log_count()
        r = await client.post("/fhir", json=bundle)
        assert r.status_code == status, (bundle, r.text)
        assert r.json()["resourceType"] == "OperationOutcome"
        assert text in r.text, r.text
        assert await log_count() == before


async def test_same_resource_twice_in_a_transaction_is_rejected(client: httpx.AsyncClient, log_count) -> None:
    pid = new_id()
    before = await log_count()
    bundle = _tx(*[{"resource": patient(pid), "request": {"method": "PUT", "url": f"Patient/{pid}"}}] * 2)
    r = await client.post("/fhir", json=bundle)
    assert r.status_code == 400 and "only once" in r.text
    assert await log_count() == before


async def test_transaction_delete_and_put_with_urn_full_url(client: httpx.AsyncClient) -> None:
    gone, pid, p_urn = new_id(), new_id(), _urn()
    await client.put(f"/fhir/Patient/{gone}", json=patient(gone))
    bundle = _tx(
        _post(_obs(p_urn)),
        {"fullUrl": p_urn, "resource": patient(pid), "request": {"method": "PUT", "url": f"Patient/{pid}"}},
        {"request": {"method": "DELETE", "url": f"Patient/{gone}"}},
    )
    r = await client.post("/fhir", json=bundle)
    assert r.status_code == 200, r.text
    entries = r.json()["entry"]
    assert [e["response"]["status"] for e in entries] == ["201 Created", "201 Created", "204 No Content"]
    obs = (await client.get(f"/fhir/{entries[0]['response']['location'].split('/_history')[0]}")).json()
    assert obs["subject"]["reference"] == f"Patient/{pid}"
    assert (await client.get(f"/fhir/Patient/{gone}")).status_code == 410


async def test_large_transaction_with_internal_references(client: httpx.AsyncClient, pool) -> None:
    p_urn = _urn()
    entries = [_post(patient(), p_urn)] + [_post(_obs(p_urn)) for _ in range(1200)]
    r = await client.post("/fhir", json=_tx(*entries))
    assert r.status_code == 200, r.text[:500]
    out = r.json()["entry"]
    assert len(out) == 1201
    pref = out[0]["response"]["location"].split("/_history")[0]
    ids = [e["response"]["location"].split("/")[1] for e in out[1:]]
    refs = await pool.fetch(
        "SELECT e.resource FROM cur_observation c JOIN event_log e ON e.position = c.position WHERE c.id = ANY($1)", ids
    )
    assert len(refs) == 1200
    assert all(pref.encode() in decode(row["resource"]) for row in refs)


async def test_batch_entries_are_independent(client: httpx.AsyncClient, log_count) -> None:
    pid = new_id()
    before = await log_count()
    bundle = _tx(
        _post(patient(family="B1")),
        {"resource": patient(pid), "request": {"method": "PUT", "url": f"Patient/{pid}", "ifMatch": 'W/"4"'}},
        {"request": {"method": "GET", "url": f"Patient/{new_id()}"}},
        _post({"resourceType": "Patient", "birthDate": "not-a-date"}),
        {"resource": patient(pid), "request": {"method": "PUT", "url": f"Patient/{pid}"}},
        kind="batch",
    )
    r = await client.post("/fhir", json=bundle)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["type"] == "batch-response"
    statuses = [e["response"]["status"].split()[0] for e in out["entry"]]
    assert statuses == ["201", "412", "404", "422", "201"]
    assert out["entry"][1]["response"]["outcome"]["resourceType"] == "OperationOutcome"
    assert await log_count() == before + 2


async def test_search_entries_in_batch_and_transaction(client: httpx.AsyncClient) -> None:
    family = f"Srch{new_id()}".replace("-", "")
    bundle = _tx(
        _post(patient(family=family)),
        {"request": {"method": "GET", "url": f"Patient?family={family}"}},
        {"request": {"method": "GET", "url": "Patient?birthdate=notadate"}},
        kind="batch",
    )
    r = await client.post("/fhir", json=bundle)
    assert r.status_code == 200, r.text
    entries = r.json()["entry"]
    found = entries[1]["resource"]
    assert found["type"] == "searchset" and found["total"] == 1
    assert entries[2]["response"]["status"].startswith("400")
    tx = _tx(_post(patient(family=family)), {"request": {"method": "GET", "url": f"Patient?family={family}"}})
    r = await client.post("/fhir", json=tx)
    assert r.status_code == 200, r.text
    assert r.json()["entry"][1]["resource"]["total"] == 2  # the search sees the transaction's own write


async def test_bundle_over_the_entry_limit_is_413_and_writes_nothing(settings, pool, log_count) -> None:
    from app.api.app import create_app

    small = create_app(settings.model_copy(update={"max_bundle_entries": 3}), pool)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=small), base_url="http://testserver") as c:
        before = await log_count()
        r = await c.post("/fhir", json=_tx(*[_post(patient()) for _ in range(4)]))
        assert r.status_code == 413
        assert "limit is 3" in r.json()["issue"][0]["diagnostics"]
        assert await log_count() == before
        assert (await c.post("/fhir", json=_tx(*[_post(patient()) for _ in range(3)]))).status_code == 200


async def test_urn_oid_full_urls_are_resolved(client: httpx.AsyncClient) -> None:
    oid = "urn:oid:1.2.3.4.5.6789"
    r = await client.post("/fhir", json=_tx(_post(_obs(oid)), _post(patient(), oid)))
    assert r.status_code == 200, r.text
    entries = r.json()["entry"]
    obs = (await client.get(f"/fhir/{entries[0]['response']['location'].split('/_history')[0]}")).json()
    assert obs["subject"]["reference"] == entries[1]["response"]["location"].split("/_history")[0]
