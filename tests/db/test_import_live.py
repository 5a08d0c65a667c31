"""``fhirledger import --data-dir`` beside a running ``fhirledger serve`` (it uses the server's
PostgreSQL, leaves it running, and the server serves the imported data), then with the server
stopped (it starts the embedded PostgreSQL for itself, skips what is there, and stops it again)."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import httpx
import orjson

from app.db.postmaster import live_postmaster
from tests.server_process import free_port, start_server


def _import(data_dir: Path, path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", "import", "--data-dir", str(data_dir), "--workers", "1", str(path)],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_import_beside_a_running_server_then_into_a_stopped_one(embedded_dir: Path) -> None:
    embedded_dir.mkdir(parents=True)
    path = embedded_dir.parent / "p.ndjson"
    path.write_bytes(b"".join(orjson.dumps({"resourceType": "Patient", "id": f"live-{i}"}) + b"\n" for i in range(30)))
    port = free_port()
    base = f"http://127.0.0.1:{port}/fhir"
    server = start_server(embedded_dir, port)
    try:
        postmaster = live_postmaster(embedded_dir / "pgdata")
        done = _import(embedded_dir, path)
        assert done.returncode == 0, done.stderr + done.stdout
        assert "imported 30 resources" in done.stdout
        assert httpx.get(f"{base}/Patient/live-7").status_code == 200
        assert httpx.get(f"{base}/Patient?_id=live-3,live-4&_summary=count").json()["total"] == 2
        assert live_postmaster(embedded_dir / "pgdata") is not None
        assert live_postmaster(embedded_dir / "pgdata").pid == postmaster.pid  # left running for the server
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(60)
    again = _import(embedded_dir, path)
    assert again.returncode == 0, again.stderr + again.stdout
    assert "30 already there" in again.stdout
    assert live_postmaster(embedded_dir / "pgdata") is None  # started for the import, stopped after it
