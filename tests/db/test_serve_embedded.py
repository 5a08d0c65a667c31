"""`fhirledger serve` on its embedded PostgreSQL: data survives restarts, SIGTERM stops the
embedded server too, and a SIGKILLed server's orphaned postmaster is reused on the next start."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import psutil

from tests.server_process import free_port, start_server

# the server gives PostgreSQL's fast shutdown (its checkpoint syncs every file the migrations made)
# up to 60 s, then 10 s for each escalation (app/db/postmaster.py shut_down); under load the checkpoint
# alone took 11-21 s, so a 30 s wait failed a stop that was going as designed
STOP_SECONDS = 90


def _postmaster(data_dir: Path) -> int | None:
    pid_file = data_dir / "pgdata" / "postmaster.pid"
    return int(pid_file.read_text().split()[0]) if pid_file.exists() else None


def test_serve_persists_and_stops_cleanly(embedded_dir: Path) -> None:
    tmp_path = embedded_dir
    port = free_port()
    base = f"http://127.0.0.1:{port}/fhir"
    proc = start_server(tmp_path, port)
    try:
        r = httpx.put(f"{base}/Patient/keep", json={"resourceType": "Patient", "id": "keep", "active": True})
        assert r.status_code == 201
        postmaster = _postmaster(tmp_path)
        assert postmaster is not None and psutil.pid_exists(postmaster)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(STOP_SECONDS) == 0
    assert _postmaster(tmp_path) is None, "SIGTERM must stop the embedded PostgreSQL too"
    assert not psutil.pid_exists(postmaster) or psutil.Process(postmaster).status() == psutil.STATUS_ZOMBIE

    proc = start_server(tmp_path, port)
    try:
        r = httpx.get(f"{base}/Patient/keep")
        assert r.status_code == 200 and r.json()["active"] is True
        orphan = _postmaster(tmp_path)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    assert orphan is not None and psutil.pid_exists(orphan), "a SIGKILLed server leaves its postmaster running"

    proc = start_server(tmp_path, port)
    try:
        assert httpx.get(f"{base}/Patient/keep").status_code == 200
        assert _postmaster(tmp_path) == orphan, "the orphaned postmaster is reused"
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(STOP_SECONDS) == 0
    assert _postmaster(tmp_path) is None
