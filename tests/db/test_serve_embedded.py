"""`fhirledger serve` on its embedded PostgreSQL: data survives restarts, SIGTERM stops the
embedded server too, and a SIGKILLed server's orphaned postmaster is reused on the next start."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(data_dir: Path, port: int) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "FHIRLEDGER_DATABASE_URL"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(port), "--data-dir", str(data_dir)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/fhir/metadata", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        assert proc.poll() is None, "server exited during start-up"
        time.sleep(0.3)
    proc.kill()
    raise AssertionError("server did not start within 60 s")


def _postmaster(data_dir: Path) -> int | None:
    pid_file = data_dir / "pgdata" / "postmaster.pid"
    return int(pid_file.read_text().split()[0]) if pid_file.exists() else None


def test_serve_persists_and_stops_cleanly(tmp_path: Path) -> None:
    port = _free_port()
    base = f"http://127.0.0.1:{port}/fhir"
    proc = _start(tmp_path, port)
    try:
        r = httpx.put(f"{base}/Patient/keep", json={"resourceType": "Patient", "id": "keep", "active": True})
        assert r.status_code == 201
        postmaster = _postmaster(tmp_path)
        assert postmaster is not None and psutil.pid_exists(postmaster)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    assert _postmaster(tmp_path) is None, "SIGTERM must stop the embedded PostgreSQL too"
    assert not psutil.pid_exists(postmaster) or psutil.Process(postmaster).status() == psutil.STATUS_ZOMBIE

    proc = _start(tmp_path, port)
    try:
        r = httpx.get(f"{base}/Patient/keep")
        assert r.status_code == 200 and r.json()["active"] is True
        orphan = _postmaster(tmp_path)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    assert orphan is not None and psutil.pid_exists(orphan), "a SIGKILLed server leaves its postmaster running"

    proc = _start(tmp_path, port)
    try:
        assert httpx.get(f"{base}/Patient/keep").status_code == 200
        assert _postmaster(tmp_path) == orphan, "the orphaned postmaster is reused"
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0
    assert _postmaster(tmp_path) is None
