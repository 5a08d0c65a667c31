"""The first write of a resource type in a process builds the type's validity check and search-row
function in a worker thread (app/api/first_use.py): other clients' requests are answered while it
does, and the write's own answer is the one it always was. The build is made slow here (a second
in the definitions it reads) so that a build on the event loop could not go unnoticed."""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest

from app.validation import fast_accept
from tests.helpers import FHIR, new_id

SLOW = 1.0


@pytest.fixture
def slow_first_build(monkeypatch):
    """Forget the generated check of ``Basic`` and make building it again take :data:`SLOW` s."""
    monkeypatch.setattr(fast_accept, "_roots", {k: v for k, v in fast_accept._roots.items() if k != "Basic"})
    real = fast_accept.resource_node

    def slow(resource_type: str):
        time.sleep(SLOW)
        return real(resource_type)

    monkeypatch.setattr(fast_accept, "resource_node", slow)


def _basic(tag: str, **more) -> dict:
    return {"resourceType": "Basic", "code": {"coding": [{"system": "urn:first-use", "code": tag}]}, **more}


async def _served_meanwhile(client, write) -> tuple[float, object]:
    """Run ``write`` while another client reads the CapabilityStatement again and again: the longest
    of those reads, and the write's response (some reads must have been answered meanwhile)."""
    task = asyncio.create_task(write)
    latencies: list[float] = []
    while not task.done():
        began = time.monotonic()
        read = await client.get("/fhir/metadata")
        latencies.append(time.monotonic() - began)
        assert read.status_code == 200
    assert len(latencies) >= 2, "the write ended before a second read: nothing shows reads were served meanwhile"
    return max(latencies), await task


async def test_other_requests_are_served_while_the_first_create_of_a_type_builds(client, slow_first_build) -> None:
    tag = new_id("first")
    took, created = await _served_meanwhile(client, client.post("/fhir/Basic", json=_basic(tag), headers=FHIR))
    assert took < SLOW / 2, f"a read waited {took:.2f} s for the build"
    assert created.status_code == 201, created.text
    found = await client.get(f"/fhir/Basic?code=urn:first-use|{tag}")
    assert [e["resource"]["id"] for e in found.json()["entry"]] == [created.json()["id"]]


async def test_the_first_transaction_with_a_type_builds_off_the_loop_too(client, slow_first_build) -> None:
    tag = new_id("first")
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"resource": _basic(tag), "request": {"method": "POST", "url": "Basic"}}],
    }
    took, answered = await _served_meanwhile(client, client.post("/fhir", content=orjson.dumps(bundle), headers=FHIR))
    assert took < SLOW / 2
    assert answered.status_code == 200, answered.text
    assert answered.json()["entry"][0]["response"]["status"].startswith("201")


async def test_an_invalid_first_write_of_a_type_is_refused_as_before(client, slow_first_build, log_count) -> None:
    before = await log_count()
    bad = _basic(new_id("first"), unknownElement=True)
    took, refused = await _served_meanwhile(client, client.post("/fhir/Basic", json=bad, headers=FHIR))
    assert took < SLOW / 2
    assert refused.status_code in (400, 422), refused.text
    outcome = refused.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert "unknownElement" in orjson.dumps(outcome).decode()
    assert await log_count() == before
