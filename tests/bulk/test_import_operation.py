"""``POST [base]/$import`` as a Bulk Data client uses it: kick-off with file:// and http:// URLs,
the status URL while queued and when done, cancellation, and the refusals (nothing queued, the
event log unchanged)."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import asyncpg
import httpx
import orjson
import pytest

from app.api.app import create_app
from app.jobs.runner import run_pending
from app.settings import Settings
from tests.api.authz_helpers import bearer_for
from tests.helpers import new_id

ASYNC = {"Prefer": "respond-async", "Content-Type": "application/fhir+json"}


@pytest.fixture
async def import_dir(tmp_path: Path) -> Path:
    d = tmp_path / "imports"
    d.mkdir()
    return d


@pytest.fixture
async def api(settings: Settings, pool: asyncpg.Pool, import_dir: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings.model_copy(update={"import_dir": import_dir}), pool)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
        yield c


def _kickoff(*inputs: tuple[str | None, str]) -> dict:
    parameter: list[dict] = [{"name": "inputFormat", "valueCode": "application/fhir+ndjson"}]
    for resource_type, url in inputs:
        parts = [{"name": "url", "valueUrl": url}]
        if resource_type:
            parts.append({"name": "type", "valueCode": resource_type})
        parameter.append({"name": "input", "part": parts})
    return {"resourceType": "Parameters", "parameter": parameter}


def _patients(path: Path, ids: list[str]) -> None:
    lines = [orjson.dumps({"resourceType": "Patient", "id": i, "name": [{"family": "Bulkop"}]}) for i in ids]
    path.write_bytes(b"\n".join(lines) + b"\n")


async def _run_jobs(pool: asyncpg.Pool) -> None:
    await run_pending(pool)


async def test_import_file_url_then_poll_until_done(
    api: httpx.AsyncClient, pool: asyncpg.Pool, import_dir: Path
) -> None:
    ids = [new_id() for _ in range(3)]
    _patients(import_dir / "Patient.ndjson", ids)
    bad = import_dir / "More.ndjson"
    bad.write_bytes(b'{"resourceType": "Observation", "id": "x1", "status": "final", "code": {"text": "t"}}\n')
    r = await api.post(
        "/fhir/$import",
        json=_kickoff(("Patient", (import_dir / "Patient.ndjson").as_uri()), ("Patient", bad.as_uri())),
        headers=ASYNC,
    )
    assert r.status_code == 202, r.text
    status_url = r.headers["Content-Location"]
    assert "/fhir/$import-status/" in status_url
    waiting = await api.get(status_url)
    assert waiting.status_code == 202 and waiting.headers["X-Progress"].startswith("queued")
    await _run_jobs(pool)
    done = await api.get(status_url)
    assert done.status_code == 200, done.text
    manifest = done.json()
    assert manifest["output"] == [{"type": "Patient", "count": 3}]
    assert manifest["error"] == [{"type": "OperationOutcome", "count": 1}]
    diagnostics = [i["diagnostics"] for i in manifest["outcome"]["issue"]]
    assert any(d.startswith(f"{bad.as_uri()}:1:") and "input's type is Patient" in d for d in diagnostics)
    assert (await api.get(f"/fhir/Patient/{ids[0]}")).status_code == 200
    history = (await api.get(f"/fhir/Patient/{ids[0]}/_history")).json()
    assert history["total"] == 1


async def test_import_http_url(api: httpx.AsyncClient, pool: asyncpg.Pool, tmp_path: Path) -> None:
    served = tmp_path / "served"
    served.mkdir()
    ids = [new_id() for _ in range(2)]
    _patients(served / "p.ndjson", ids)
    handler = partial(SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *a: None  # type: ignore[attr-defined]
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/p.ndjson"
        r = await api.post("/fhir/$import", json=_kickoff((None, url), (None, url + ".missing")), headers=ASYNC)
        assert r.status_code == 202, r.text
        await run_pending(pool)
        manifest = (await api.get(r.headers["Content-Location"])).json()
    finally:
        server.shutdown()
    assert manifest["output"] == [{"type": "Patient", "count": 2}]
    assert any(
        "p.ndjson.missing" in i["diagnostics"] and "404" in i["diagnostics"] for i in manifest["outcome"]["issue"]
    )
    assert (await api.get(f"/fhir/Patient/{ids[1]}")).status_code == 200


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("file:///etc/passwd", "must name a file under"),
        ("ftp://example.org/x.ndjson", "neither an http(s):// URL nor a file:// URL"),
    ],
)
async def test_refused_urls_queue_nothing(
    api: httpx.AsyncClient, log_count, pool: asyncpg.Pool, url: str, expected: str
) -> None:
    before, jobs = await log_count(), await pool.fetchval("SELECT count(*) FROM jobs")
    r = await api.post("/fhir/$import", json=_kickoff(("Patient", url)), headers=ASYNC)
    assert r.status_code == 400
    assert r.json()["resourceType"] == "OperationOutcome" and expected in r.json()["issue"][0]["diagnostics"]
    assert await log_count() == before and await pool.fetchval("SELECT count(*) FROM jobs") == jobs


async def test_escape_from_import_dir_refused(api: httpx.AsyncClient, import_dir: Path) -> None:
    outside = import_dir.parent / "outside.ndjson"
    _patients(outside, [new_id()])
    sneaky = f"file://{import_dir}/../outside.ndjson"
    r = await api.post("/fhir/$import", json=_kickoff(("Patient", sneaky)), headers=ASYNC)
    assert r.status_code == 400 and "must name a file under" in r.text


async def test_file_urls_refused_without_import_dir(client: httpx.AsyncClient, tmp_path: Path) -> None:
    _patients(tmp_path / "p.ndjson", [new_id()])
    r = await client.post("/fhir/$import", json=_kickoff(("Patient", (tmp_path / "p.ndjson").as_uri())), headers=ASYNC)
    assert r.status_code == 400 and "FHIRLEDGER_IMPORT_DIR is not set" in r.text


async def test_kickoff_needs_respond_async_and_a_format(api: httpx.AsyncClient, import_dir: Path) -> None:
    _patients(import_dir / "p.ndjson", [new_id()])
    body = _kickoff(("Patient", (import_dir / "p.ndjson").as_uri()))
    r = await api.post("/fhir/$import", json=body, headers={"Content-Type": "application/fhir+json"})
    assert r.status_code == 400 and "Prefer: respond-async" in r.text
    body["parameter"][0]["valueCode"] = "text/csv"
    r = await api.post("/fhir/$import", json=body, headers=ASYNC)
    assert r.status_code == 400 and "inputFormat" in r.text


async def test_delete_cancels_a_queued_import(api: httpx.AsyncClient, pool: asyncpg.Pool, import_dir: Path) -> None:
    pid = new_id()
    _patients(import_dir / "c.ndjson", [pid])
    r = await api.post("/fhir/$import", json=_kickoff(("Patient", (import_dir / "c.ndjson").as_uri())), headers=ASYNC)
    status_url = r.headers["Content-Location"]
    assert (await api.delete(status_url)).status_code == 202
    await _run_jobs(pool)
    assert (await api.get(status_url)).status_code == 404
    assert (await api.get(f"/fhir/Patient/{pid}")).status_code == 404


async def test_import_needs_the_admin_scope(auth_client: httpx.AsyncClient) -> None:
    body = _kickoff(("Patient", "https://example.org/p.ndjson"))
    r = await auth_client.post("/fhir/$import", json=body, headers=ASYNC | bearer_for("system/Patient.read"))
    assert r.status_code == 403
    r = await auth_client.get("/fhir/$import-status/1", headers=bearer_for("system/Patient.read"))
    assert r.status_code == 403
