"""Large transactions do not hold the event loop: their resources are validated on the loop in
slices, other requests' work running between them, and the search rows of 200 entries and more are
computed in worker threads, with the same result (all written and searchable); a bad entry still
fails the whole transaction."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

import httpx
import orjson

from app.commands import bundle_commands, bundle_entries
from tests.helpers import FHIR, new_id

T = TypeVar("T")


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
    """Counts the event loop's turns, by a task that yields and counts, while a request runs, and
    records the count each call of a function it wraps (:meth:`counting`) sees."""

    def __init__(self) -> None:
        self.count = 0
        self.seen: list[int] = []

    def counting(self, function: Callable[..., T]) -> Callable[..., T]:
        def counted(*args: object, **kwargs: object) -> T:
            self.seen.append(self.count)
            return function(*args, **kwargs)

        return counted

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


async def _loop_ran_between_calls(client: httpx.AsyncClient, log_count, loop_turns: _LoopTurns, what: str) -> None:
    """A transaction of 3,000 entries is written whole, with the loop's count grown between the
    first and the last call counted (``what``: the calls, for the message)."""
    before = await log_count()
    r = await loop_turns.post(client, _bundle(new_id("turns"), 3000))
    assert r.status_code == 200, r.text[:500]
    assert len(loop_turns.seen) == 3000 and await log_count() == before + 3000
    assert loop_turns.seen[-1] > loop_turns.seen[0], f"the loop ran nothing else while 3,000 {what}"


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
    monkeypatch.setattr(bundle_commands, "check_resource", loop_turns.counting(bundle_commands.check_resource))
    await _loop_ran_between_calls(client, log_count, loop_turns, "resources were validated")


async def test_other_tasks_run_while_a_large_transaction_s_entries_are_read(client, log_count, monkeypatch) -> None:
    """The same for the reading of the entries (their request, fullUrl and resource), before any
    validation."""
    loop_turns = _LoopTurns()
    monkeypatch.setattr(bundle_entries, "_parse_entry", loop_turns.counting(bundle_entries._parse_entry))
    await _loop_ran_between_calls(client, log_count, loop_turns, "entries were read")
