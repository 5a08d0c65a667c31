"""Large transactions do not hold the event loop: their resources are validated on the loop in
slices, other requests' work running between them, and the search rows of 200 entries and more are
computed in worker threads, with the same result (all written and searchable); a bad entry still
fails the whole transaction."""

from __future__ import annotations

import asyncio

import httpx
import orjson

from app.commands import bundle_commands, bundle_entries
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


class _LoopTurns:
    """Counts the event loop's turns, by a task that yields and counts, while a request runs."""

    def __init__(self) -> None:
        self.count = 0

    async def _turn(self) -> None:
        while True:
            await asyncio.sleep(0)
            self.count += 1

    async def post(self, client: httpx.AsyncClient, body: bytes) -> httpx.Response:
        running = asyncio.create_task(self._turn())
        try:
            return await client.post("/fhir", content=body, headers=FHIR)
        finally:
            running.cancel()


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


async def test_other_tasks_run_while_a_large_transaction_is_validated(client, log_count, monkeypatch) -> None:
    """A task counts the event loop's turns; the count seen at each entry's validation must
    grow between the first entry and the last: the loop served others meanwhile."""
    loop_turns = _LoopTurns()
    seen: list[int] = []
    check = bundle_commands.check_resource

    def counted(resource: dict, lenient: bool) -> list:
        seen.append(loop_turns.count)
        return check(resource, lenient=lenient)

    monkeypatch.setattr(bundle_commands, "check_resource", counted)
    before = await log_count()
    r = await loop_turns.post(client, _bundle(new_id("slices"), 3000))
    assert r.status_code == 200, r.text[:500]
    assert len(seen) == 3000 and await log_count() == before + 3000
    assert seen[-1] > seen[0], "the loop ran nothing else while 3,000 resources were validated"


async def test_other_tasks_run_while_a_large_transaction_s_entries_are_read(client, log_count, monkeypatch) -> None:
    """The same for the reading of the entries (their request, fullUrl and resource), before any
    validation."""
    loop_turns = _LoopTurns()
    seen: list[int] = []
    parse = bundle_entries._parse_entry

    def counted(index: int, raw: object, bundle_type: str) -> bundle_entries.BundleEntry:
        seen.append(loop_turns.count)
        return parse(index, raw, bundle_type)

    monkeypatch.setattr(bundle_entries, "_parse_entry", counted)
    before = await log_count()
    r = await loop_turns.post(client, _bundle(new_id("read"), 3000))
    assert r.status_code == 200, r.text[:500]
    assert len(seen) == 3000 and await log_count() == before + 3000
    assert seen[-1] > seen[0], "the loop ran nothing else while 3,000 entries were read"
