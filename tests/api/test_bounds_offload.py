"""Large bodies are parsed, validated and indexed off the event loop: a transaction above
FHIRLEDGER_OFFLOAD_BODY_BYTES and 200 entries is processed in worker threads with the same result
(all written and searchable), and a bad entry in it still fails the whole transaction."""

from __future__ import annotations

import orjson

from tests.helpers import FHIR, new_id


def _bundle(tag: str, entries: int, bad_at: int | None = None) -> bytes:
    def resource(i: int) -> dict:
        body = {"resourceType": "Basic", "code": {"text": f"{tag} {i}", "coding": [{"system": "urn:t", "code": tag}]}}
        if i == bad_at:
            body["unknownElement"] = True
        return {"resource": body, "request": {"method": "POST", "url": "Basic"}}

    return orjson.dumps(
        {"resourceType": "Bundle", "type": "transaction", "entry": [resource(i) for i in range(entries)]}
    )


async def test_a_large_transaction_is_written_and_indexed(client, log_count) -> None:
    tag = new_id("big")
    body = _bundle(tag, 1500)
    assert len(body) > 256 * 1024
    before = await log_count()
    r = await client.post("/fhir", content=body, headers=FHIR)
    assert r.status_code == 200, r.text[:500]
    assert await log_count() == before + 1500
    found = await client.get(f"/fhir/Basic?code=urn:t|{tag}&_summary=count")
    assert found.json()["total"] == 1500


async def test_a_bad_entry_in_a_large_transaction_fails_it_whole(client, log_count) -> None:
    before = await log_count()
    r = await client.post("/fhir", content=_bundle(new_id("bad"), 1500, bad_at=1400), headers=FHIR)
    assert r.status_code == 422, r.text[:500]
    assert "Bundle.entry[1400]" in r.text and "unknownElement" in r.text
    assert await log_count() == before
