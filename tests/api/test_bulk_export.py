"""Bulk export (https://hl7.org/fhir/uv/bulkdata/export.html): kick-off, polling, the manifest,
downloads compared with search results, cancellation, and the files' TTL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import asyncpg
import httpx
import pytest

from app.jobs import export as export_job
from app.jobs.export_files import remove_expired
from app.jobs.runner import resume_interrupted, run_pending
from tests.api.bulk_helpers import ASYNC, download, finish, ids, kick_off
from tests.helpers import new_id

pytest_plugins = ["tests.api.bulk_fixtures"]


async def _create(client: httpx.AsyncClient, resource: dict) -> dict:
    r = await client.post(f"/fhir/{resource['resourceType']}", json=resource)
    assert r.status_code == 201, r.text
    return r.json()


async def _search_all(client: httpx.AsyncClient, query: str) -> list[dict]:
    r = await client.get(f"/fhir/{query}{'&' if '?' in query else '?'}_count=1000")
    assert r.status_code == 200, r.text
    return [e["resource"] for e in r.json().get("entry", []) if e["search"]["mode"] == "match"]


async def test_kick_off_poll_download_matches_search(bulk_client: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    for n in range(3):
        await _create(
            bulk_client, {"resourceType": "DeviceMetric", "type": {"text": f"m{n}"}, "category": "measurement"}
        )
    status_url = await kick_off(bulk_client, "/fhir/$export?_type=DeviceMetric")
    assert status_url.startswith("http://testserver/fhir/$export-status/")
    queued = await bulk_client.get(status_url)
    assert queued.status_code == 202
    assert queued.headers["x-progress"] == "queued" and queued.headers["retry-after"].isdigit()
    manifest = await finish(bulk_client, pool, status_url)
    assert manifest["request"] == "http://testserver/fhir/$export?_type=DeviceMetric"
    assert manifest["requiresAccessToken"] is False
    assert manifest["error"] == []
    datetime.fromisoformat(manifest["transactionTime"].replace("Z", "+00:00"))
    files = await download(bulk_client, manifest)
    searched = await _search_all(bulk_client, "DeviceMetric")
    assert files["DeviceMetric"] == sorted(searched, key=lambda r: r["id"])  # byte-for-byte the stored resources
    assert [o["type"] for o in manifest["output"]] == ["DeviceMetric"]


async def test_post_parameters_and_output_format_aliases(bulk_client: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    await _create(bulk_client, {"resourceType": "DeviceMetric", "type": {"text": "posted"}, "category": "setting"})
    body = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "_type", "valueString": "DeviceMetric"},
            {"name": "_outputFormat", "valueString": "application/ndjson"},
            {"name": "_typeFilter", "valueString": "DeviceMetric?category=setting"},
        ],
    }
    status_url = await kick_off(bulk_client, "/fhir/$export", json=body)
    manifest = await finish(bulk_client, pool, status_url)
    assert manifest["request"] == "http://testserver/fhir/$export"
    files = await download(bulk_client, manifest)
    assert ids(files["DeviceMetric"]) == ids(await _search_all(bulk_client, "DeviceMetric?category=setting"))
    for fmt in ("ndjson", "application/fhir+ndjson"):
        await kick_off(bulk_client, f"/fhir/$export?_type=DeviceMetric&_outputFormat={quote(fmt)}")


async def test_elements_keep_only_the_named_elements(bulk_client: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    await _create(bulk_client, {"resourceType": "DeviceMetric", "type": {"text": "el"}, "category": "measurement"})
    status_url = await kick_off(bulk_client, "/fhir/$export?_type=DeviceMetric&_elements=DeviceMetric.category")
    files = await download(bulk_client, await finish(bulk_client, pool, status_url))
    for resource in files["DeviceMetric"]:
        assert set(resource) == {"resourceType", "id", "meta", "category"}
        assert {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED"} in resource[
            "meta"
        ]["tag"]


async def test_cancel_removes_files_and_status(
    bulk_client: httpx.AsyncClient, pool: asyncpg.Pool, export_dir: Path
) -> None:
    await _create(bulk_client, {"resourceType": "DeviceMetric", "type": {"text": "c"}, "category": "measurement"})
    status_url = await kick_off(bulk_client, "/fhir/$export?_type=DeviceMetric")
    manifest = await finish(bulk_client, pool, status_url)
    export_id = status_url.rsplit("/", 1)[1]
    assert (export_dir / export_id).is_dir()
    r = await bulk_client.delete(status_url)
    assert r.status_code == 202
    assert not (export_dir / export_id).exists()
    for url in (status_url, manifest["output"][0]["url"]):
        gone = await bulk_client.get(url)
        assert gone.status_code == 404 and "cancelled" in gone.json()["issue"][0]["diagnostics"]
    assert (await bulk_client.delete(status_url)).status_code == 404


async def test_cancel_before_the_job_runs(bulk_client: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    status_url = await kick_off(bulk_client, "/fhir/$export?_type=DeviceMetric")
    assert (await bulk_client.delete(status_url)).status_code == 202
    await finish_nothing(pool)
    assert (await bulk_client.get(status_url)).status_code == 404


async def finish_nothing(pool: asyncpg.Pool) -> None:
    await run_pending(pool, limit=100)


async def test_files_expire_after_the_ttl(bulk_client: httpx.AsyncClient, pool: asyncpg.Pool, export_dir: Path) -> None:
    await _create(bulk_client, {"resourceType": "DeviceMetric", "type": {"text": "ttl"}, "category": "measurement"})
    status_url = await kick_off(bulk_client, "/fhir/$export?_type=DeviceMetric")
    manifest = await finish(bulk_client, pool, status_url)
    export_id = status_url.rsplit("/", 1)[1]
    r = await bulk_client.get(status_url)
    expires = datetime.strptime(r.headers["expires"], "%a, %d %b %Y %H:%M:%S GMT").replace(tzinfo=UTC)
    assert timedelta(hours=23) < expires - datetime.now(UTC) <= timedelta(hours=24)
    await remove_expired(pool)
    assert (export_dir / export_id).is_dir()
    assert await remove_expired(pool, datetime.now(UTC) + timedelta(hours=25)) >= 1
    assert not (export_dir / export_id).exists()
    for url in (status_url, manifest["output"][0]["url"]):
        gone = await bulk_client.get(url)
        assert gone.status_code == 404 and "expired" in gone.json()["issue"][0]["diagnostics"]


async def test_capability_statement_declares_the_operations(bulk_client: httpx.AsyncClient) -> None:
    statement = (await bulk_client.get("/fhir/metadata")).json()
    rest = statement["rest"][0]
    base = "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/"
    assert {"name": "export", "definition": base + "export"}.items() <= next(
        o for o in rest["operation"] if o["name"] == "export"
    ).items()
    by_type = {r["type"]: r for r in rest["resource"]}
    assert {o["definition"] for o in by_type["Patient"]["operation"]} >= {base + "patient-export"}
    assert {o["definition"] for o in by_type["Group"]["operation"]} >= {base + "group-export"}


async def test_unknown_file_is_404(bulk_client: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    status_url = await kick_off(bulk_client, "/fhir/$export?_type=DeviceMetric")
    await finish(bulk_client, pool, status_url)
    export_id = status_url.rsplit("/", 1)[1]
    for name in ("Patient-1.ndjson", "..%2F..%2Fetc%2Fpasswd", "errors.ndjson"):
        r = await bulk_client.get(f"/fhir/$export-file/{export_id}/{name}")
        assert r.status_code == 404, (name, r.text)
    r = await bulk_client.get(f"/fhir/$export-status/{new_id()}", headers=ASYNC)
    assert r.status_code == 404 and r.json()["resourceType"] == "OperationOutcome"


async def test_an_interrupted_export_resumes_after_a_restart(
    bulk_client: httpx.AsyncClient, pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _create(bulk_client, {"resourceType": "DeviceMetric", "type": {"text": "r"}, "category": "measurement"})
    await _create(bulk_client, {"resourceType": "Organization", "name": "resumed"})
    status_url = await kick_off(bulk_client, "/fhir/$export?_type=DeviceMetric,Organization")
    written: list[str] = []
    real = export_job._export_type

    async def killed_on_the_second_type(pool, record, kind, patients, progress):
        written.append(kind)
        if len(written) == 2:
            raise asyncio.CancelledError  # the process stops here, as if killed
        return await real(pool, record, kind, patients, progress)

    monkeypatch.setattr(export_job, "_export_type", killed_on_the_second_type)
    with pytest.raises(asyncio.CancelledError):
        await run_pending(pool, limit=100)
    assert (await bulk_client.get(status_url)).headers["x-progress"].startswith("running: 1 of 2 types done")
    assert await resume_interrupted(pool) >= 1  # the next start
    monkeypatch.setattr(export_job, "_export_type", real)
    manifest = await finish(bulk_client, pool, status_url)
    files = await download(bulk_client, manifest)
    assert ids(files["DeviceMetric"]) == ids(await _search_all(bulk_client, "DeviceMetric"))
    assert ids(files["Organization"]) == ids(await _search_all(bulk_client, "Organization"))


async def test_cancel_while_the_job_writes(
    bulk_client: httpx.AsyncClient, pool: asyncpg.Pool, export_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _create(bulk_client, {"resourceType": "DeviceMetric", "type": {"text": "w"}, "category": "measurement"})
    status_url = await kick_off(bulk_client, "/fhir/$export?_type=DeviceMetric,Organization")
    export_id = status_url.rsplit("/", 1)[1]
    real = export_job._TypeExport.flush

    async def flush_then_cancel(self, conn, chunk):
        await real(self, conn, chunk)
        assert (await bulk_client.delete(status_url)).status_code == 202  # while the job runs

    monkeypatch.setattr(export_job._TypeExport, "flush", flush_then_cancel)
    await run_pending(pool, limit=100)
    job = await pool.fetchval(
        "SELECT j.status FROM jobs j JOIN bulk_export e ON e.job_id = j.id WHERE e.id = $1", export_id
    )
    assert job == "done"  # a cancellation is not a failure
    assert not (export_dir / export_id).exists()
    assert (await bulk_client.get(status_url)).status_code == 404
