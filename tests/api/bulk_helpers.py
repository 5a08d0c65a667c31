"""A Bulk Data client for the tests: kick off, run the export's job, poll, download."""

from __future__ import annotations

import asyncpg
import httpx
import orjson

from app.jobs.runner import run_pending

ASYNC = {"Prefer": "respond-async", "Accept": "application/fhir+json"}


async def kick_off(client: httpx.AsyncClient, url: str, headers: dict | None = None, **kwargs) -> str:
    """The status URL of an accepted export."""
    method = "POST" if "json" in kwargs else "GET"
    r = await client.request(method, url, headers={**ASYNC, **(headers or {})}, **kwargs)
    assert r.status_code == 202, r.text
    return r.headers["content-location"]


async def finish(client: httpx.AsyncClient, pool: asyncpg.Pool, status_url: str, headers: dict | None = None) -> dict:
    """Run the queued jobs, then poll: the manifest."""
    await run_pending(pool, limit=100)
    r = await client.get(status_url, headers=headers or {})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    return r.json()


async def download(client: httpx.AsyncClient, manifest: dict, headers: dict | None = None) -> dict[str, list[dict]]:
    """type -> its resources, from every output file of a manifest."""
    out: dict[str, list[dict]] = {}
    for item in manifest["output"]:
        r = await client.get(item["url"], headers=headers or {})
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("application/fhir+ndjson")
        lines = [orjson.loads(line) for line in r.content.splitlines() if line]
        assert len(lines) == item["count"]
        assert all(line["resourceType"] == item["type"] for line in lines)
        out.setdefault(item["type"], []).extend(lines)
    return out


def ids(resources: list[dict]) -> set[str]:
    return {r["id"] for r in resources}
