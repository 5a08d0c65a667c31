"""The read fast path (app/api/fast_read.py) answers exactly as the full route does, and leaves
everything it does not answer exactly (errors, conditional reads, shaped reads) to the route."""

from __future__ import annotations

import httpx

from tests.helpers import FHIR, new_id, patient

SAME = ("etag", "last-modified", "content-type", "content-length")


async def test_a_plain_read_matches_the_full_route(client: httpx.AsyncClient) -> None:
    pid = new_id()
    await client.put(f"/fhir/Patient/{pid}", json=patient(pid), headers=FHIR)
    fast = await client.get(f"/fhir/Patient/{pid}")
    full = await client.get(f"/fhir/Patient/{pid}?_format=json")  # a query string: the route answers
    assert fast.status_code == full.status_code == 200
    assert fast.content == full.content
    assert {h: fast.headers[h] for h in SAME} == {h: full.headers[h] for h in SAME}
    plain = await client.get(f"/fhir/Patient/{pid}", headers={"Accept": "application/json"})
    assert plain.headers["content-type"] == "application/json" and plain.content == fast.content


async def test_what_it_does_not_answer_the_route_does(client: httpx.AsyncClient) -> None:
    pid = new_id()
    await client.put(f"/fhir/Patient/{pid}", json=patient(pid), headers=FHIR)
    unknown = await client.get(f"/fhir/Patient/{new_id()}")
    assert unknown.status_code == 404 and unknown.json()["resourceType"] == "OperationOutcome"
    assert (await client.get(f"/fhir/Patient/{pid}", headers={"If-None-Match": 'W/"1"'})).status_code == 304
    assert (await client.get(f"/fhir/Patient/{pid}", headers={"Accept": "application/xml"})).status_code == 406
    bad = await client.get("/fhir/Patient/" + "x" * 65)
    assert bad.status_code == 400 and bad.json()["resourceType"] == "OperationOutcome"
    assert (await client.get(f"/fhir/Nope/{pid}")).status_code == 404
    head = await client.head(f"/fhir/Patient/{pid}")
    assert head.status_code == 200 and head.content == b"" and head.headers["etag"] == 'W/"1"'
    await client.delete(f"/fhir/Patient/{pid}")
    gone = await client.get(f"/fhir/Patient/{pid}")
    assert gone.status_code == 410 and gone.json()["resourceType"] == "OperationOutcome"
