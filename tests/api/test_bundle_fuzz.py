"""Malformed and odd Bundles never make the server fail with a 500, and a rejected transaction
writes nothing."""

from __future__ import annotations

import random

import httpx

SEED, ROUNDS = 7, 300
PIECES: list[object] = [
    None,
    1,
    "x",
    [],
    {},
    {"method": "POST"},
    {"method": "POST", "url": "Patient"},
    {"method": "GET", "url": ""},
    {"method": "PUT", "url": "Patient/a b"},
    {"method": "DELETE", "url": "Patient?"},
    {"method": "PATCH", "url": "Patient/1"},
    {"method": "PUT", "url": "Patient?identifier=x|y"},
    {"method": "GET", "url": "Patient?name=a"},
    {"method": "POST", "url": "Patient", "ifNoneExist": "bogus:modifier=1"},
    {"method": "PUT", "url": "Nope/1"},
    {"method": "GET", "url": "Patient/1/_history/x"},
    {"method": "POST", "url": "http://other/fhir/Patient"},
]
RESOURCES: list[object] = [
    None,
    "text",
    {"resourceType": "Patient"},
    {"resourceType": "Patient", "id": "a"},
    {"resourceType": "Observation", "status": "final", "code": {"text": "c"}, "subject": {"reference": "urn:uuid:x"}},
    {"resourceType": "Patient", "link": [{"other": {"reference": "Patient?x=1"}, "type": "seealso"}]},
    {"resourceType": "Parameters", "parameter": [{"name": "operation"}]},
    {"resourceType": "Binary", "contentType": "application/json-patch+json", "data": "bm90IGpzb24="},
    {"resourceType": "Patient", "gender": 5},
]


def _bundle(rng: random.Random) -> object:
    if rng.random() < 0.05:
        return rng.choice(
            [[], "x", {"resourceType": "Bundle"}, {"resourceType": "Bundle", "type": "transaction", "entry": {}}]
        )
    entries = []
    for _ in range(rng.randrange(0, 5)):
        entry: dict = {}
        if rng.random() < 0.9:
            entry["request"] = rng.choice(PIECES)
        if rng.random() < 0.7:
            entry["resource"] = rng.choice(RESOURCES)
        if rng.random() < 0.5:
            entry["fullUrl"] = rng.choice(["urn:uuid:x", "urn:uuid:y", 5, "http://a/Patient/1"])
        entries.append(entry)
    return {"resourceType": "Bundle", "type": rng.choice(["transaction", "batch", "collection"]), "entry": entries}


async def test_random_bundles_never_fail_with_500(client: httpx.AsyncClient, log_count) -> None:
    rng = random.Random(SEED)
    for _ in range(ROUNDS):
        bundle = _bundle(rng)
        before = await log_count()
        r = await client.post("/fhir", json=bundle)
        assert r.status_code < 500, (bundle, r.text[:300])
        body = r.json()
        if r.status_code >= 400:
            assert body["resourceType"] == "OperationOutcome" and body["issue"][0]["diagnostics"]
            assert await log_count() == before, bundle
        else:
            assert body["resourceType"] == "Bundle" and body["type"].endswith("-response")
