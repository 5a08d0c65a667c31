"""Batch entries are independent (https://hl7.org/fhir/R4/http.html#brules): a malformed entry
gets its own 4xx response while the others are processed; a transaction with one fails whole."""

from __future__ import annotations

import httpx

from tests.helpers import new_id, patient

MALFORMED: list[tuple[dict | str, str]] = [
    ({"request": {"method": "POST", "url": "Patient"}}, "needs a resource"),
    ({"resource": {"resourceType": "Observation"}, "request": {"method": "POST", "url": "Patient"}}, "Observation"),
    ({"resource": patient(), "request": {"method": "POST", "url": "Patientz"}}, "Patientz"),
    ({"resource": patient(), "request": {"method": "POST", "url": "http://[bad"}}, "cannot be parsed"),
    ({"resource": patient()}, "request"),
    ({"request": {"method": "PUT", "url": "Patient/x1"}}, "needs a resource"),
    ("not an object", "JSON object"),
]


def _batch(entries: list, kind: str = "batch") -> dict:
    return {"resourceType": "Bundle", "type": kind, "entry": entries}


def _good(family: str) -> dict:
    return {"resource": patient(family=family), "request": {"method": "POST", "url": "Patient"}}


async def test_malformed_batch_entries_get_their_own_400_and_the_rest_is_processed(
    client: httpx.AsyncClient, log_count
) -> None:
    family = f"Batch{new_id()}".replace("-", "")
    entries: list = [_good(family)]
    for bad, _ in MALFORMED:
        entries += [bad, _good(family)]
    before = await log_count()
    r = await client.post("/fhir", json=_batch(entries))
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["type"] == "batch-response"
    assert len(out["entry"]) == len(entries)
    for i, entry in enumerate(out["entry"]):
        response = entry["response"]
        if i % 2 == 0:
            assert response["status"].startswith("201"), (i, response)
            continue
        assert response["status"] == "400 Bad Request", (i, response)
        issue = response["outcome"]["issue"][0]
        assert issue["severity"] == "error"
        assert f"Bundle.entry[{i}]" in issue["diagnostics"]
        assert MALFORMED[i // 2][1] in issue["diagnostics"], issue["diagnostics"]
    assert await log_count() == before + len(MALFORMED) + 1
    found = (await client.get(f"/fhir/Patient?family={family}&_summary=count")).json()
    assert found["total"] == len(MALFORMED) + 1


async def test_a_transaction_with_one_malformed_entry_writes_nothing(client: httpx.AsyncClient, log_count) -> None:
    before = await log_count()
    for bad, hint in MALFORMED:
        r = await client.post("/fhir", json=_batch([_good("Tx"), bad, _good("Tx")], "transaction"))
        assert r.status_code == 400, r.text
        body = r.json()
        assert body["resourceType"] == "OperationOutcome"
        assert "Bundle.entry[1]" in body["issue"][0]["diagnostics"]
        assert hint in body["issue"][0]["diagnostics"]
    assert await log_count() == before
