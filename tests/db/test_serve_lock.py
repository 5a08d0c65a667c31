"""One data directory, one `fhirledger serve`: a second server on it refuses to start, says why and
leaves the first server's PostgreSQL alone; an operator command on the same data directory uses the
server's PostgreSQL and leaves it running. A relative --data-dir is resolved and printed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from tests.server_process import free_port, server_log, spawn_server, start_server


def _postmaster_pid(data_dir: Path) -> int:
    return int((data_dir / "pgdata" / "postmaster.pid").read_text().split()[0])


def _write_and_read(base: str, rid: str) -> None:
    r = httpx.put(f"{base}/Patient/{rid}", json={"resourceType": "Patient", "id": rid})
    assert r.status_code in (200, 201), r.text
    assert httpx.get(f"{base}/Patient/{rid}").status_code == 200


def test_second_serve_refuses_and_first_keeps_serving(embedded_dir: Path) -> None:
    embedded_dir.mkdir(parents=True)
    port = free_port()
    base = f"http://127.0.0.1:{port}/fhir"
    # the first server is given the data directory relative to its working directory
    first = start_server(Path("data"), port, cwd=embedded_dir.parent)
    try:
        assert f"data directory: {embedded_dir}" in server_log(embedded_dir).read_text()
        _write_and_read(base, "before")
        postmaster = _postmaster_pid(embedded_dir)

        second = spawn_server(embedded_dir, free_port())
        assert second.wait(60) != 0
        text = server_log(embedded_dir).read_text()
        assert f"the data directory {embedded_dir} is in use by another fhirledger serve (pid {first.pid})" in text

        assert httpx.get(f"{base}/metadata").status_code == 200
        _write_and_read(base, "after-second")
        assert _postmaster_pid(embedded_dir) == postmaster, "the second server must not restart PostgreSQL"

        status = subprocess.run(
            [sys.executable, "-m", "app.cli", "projections", "status", "--data-dir", str(embedded_dir)],
            capture_output=True,
            text=True,
            timeout=120,
            env={k: v for k, v in os.environ.items() if k != "FHIRLEDGER_DATABASE_URL"},
        )
        assert status.returncode == 0, status.stderr
        assert "XDG_RUNTIME_DIR" not in status.stderr
        assert "projections" in status.stdout
        _write_and_read(base, "after-command")
        assert _postmaster_pid(embedded_dir) == postmaster, "the operator command must not stop PostgreSQL"
    finally:
        first.send_signal(signal.SIGTERM)
        assert first.wait(60) == 0
    assert not (embedded_dir / "pgdata" / "postmaster.pid").exists(), "a clean stop stops PostgreSQL"

    again = start_server(embedded_dir, port)  # the lock went with the first server
    try:
        assert httpx.get(f"{base}/Patient/after-command").status_code == 200
    finally:
        again.send_signal(signal.SIGINT)
        assert again.wait(60) == 0
