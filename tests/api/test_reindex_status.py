"""``$reindex`` answers 202 with a Content-Location polled for the job's status."""

from __future__ import annotations

import asyncpg
import httpx

from app.jobs.runner import run_pending


def _params(body: dict) -> dict:
    return {p["name"]: p for p in body["parameter"]}


async def test_reindex_status_goes_from_queued_to_done(client: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    r = await client.post("/fhir/Basic/$reindex")
    assert r.status_code == 202
    location = r.headers["content-location"]
    assert location.startswith("http://testserver/fhir/$reindex-status/")
    queued = await client.get(location)
    assert queued.status_code == 200, queued.text
    params = _params(queued.json())
    assert queued.json()["resourceType"] == "Parameters"
    assert params["status"]["valueCode"] == "queued"
    assert params["scope"]["valueString"] == "Basic"
    assert "created" in params and "finished" not in params
    await run_pending(pool)
    done = await client.get(location)
    params = _params(done.json())
    assert params["status"]["valueCode"] == "done"
    progress = {p["name"]: p.get("valueInteger") for p in params["progress"]["part"]}
    assert progress["types_done"] == 1 and progress["types"] == 1
    assert "started" in params and "finished" in params


async def test_unknown_job_is_404_outcome(client: httpx.AsyncClient) -> None:
    for job in ("999999999", "abc"):
        r = await client.get(f"/fhir/$reindex-status/{job}")
        assert r.status_code == 404
        assert r.json()["resourceType"] == "OperationOutcome"
        assert job in r.json()["issue"][0]["diagnostics"]
