"""JSON Patch results are bounded in size: ``copy`` operations that would grow the resource past
the body limit fail with 422 too-costly at the operation that passes it, quickly, writing nothing."""

from __future__ import annotations

import time

import orjson
import pytest

from app.commands.patching.json_patch import apply_json_patch, bounded_size
from app.errors import FhirError
from tests.helpers import FHIR, new_id, patient

PATCH = {"Content-Type": "application/json-patch+json"}
DOUBLING = [{"op": "copy", "from": "/name", "path": "/name/-"} for _ in range(30)]


def test_copies_past_the_limit_fail_at_the_operation_that_passes_it() -> None:
    resource = {"resourceType": "Patient", "id": "p", "name": [{"given": ["a"] * 50}]}
    with pytest.raises(FhirError) as caught:
        apply_json_patch(resource, DOUBLING, max_bytes=64 * 1024)
    assert caught.value.status == 422 and caught.value.code == "too-costly"
    assert "operation 7 (copy /name/-)" in caught.value.diagnostics and "65536 bytes" in caught.value.diagnostics


def test_a_patch_within_the_limit_applies_and_the_estimate_stops_at_its_budget() -> None:
    resource = {"resourceType": "Patient", "id": "p", "name": [{"family": "x"}]}
    result = apply_json_patch(resource, DOUBLING[:3], max_bytes=64 * 1024)
    assert len(result["name"]) == 4 and len(orjson.dumps(result)) > 100
    started = time.monotonic()
    assert bounded_size([["a"] * 1000] * 1000, 5000) < 10_000  # a walk past its budget stops early
    assert time.monotonic() - started < 0.05
    assert bounded_size({"a": ["bc", 1]}, 10_000) >= len(orjson.dumps({"a": ["bc", 1]}))


async def test_thirty_copies_in_a_small_body_answer_quickly_and_write_nothing(client, log_count) -> None:
    pid = new_id()
    assert (await client.put(f"/fhir/Patient/{pid}", json=patient(pid), headers=FHIR)).status_code == 201
    before = await log_count()
    started = time.monotonic()
    r = await client.patch(f"/fhir/Patient/{pid}", content=orjson.dumps(DOUBLING), headers=PATCH)
    assert time.monotonic() - started < 30  # exponential work would never finish; 30 s allows a loaded machine
    assert r.status_code == 422, r.text[:300]
    issue = r.json()["issue"][0]
    assert issue["code"] == "too-costly" and "FHIRLEDGER_MAX_BODY_BYTES" in issue["diagnostics"]
    assert await log_count() == before
