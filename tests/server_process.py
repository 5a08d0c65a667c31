"""A real `fhirledger serve` subprocess on an embedded database, for end-to-end tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(data_dir: Path, port: int, timeout: float = 60) -> subprocess.Popen:
    """Start the server (ignoring FHIRLEDGER_DATABASE_URL) and wait until it answers /metadata."""
    env = {k: v for k, v in os.environ.items() if k != "FHIRLEDGER_DATABASE_URL"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(port), "--data-dir", str(data_dir)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/fhir/metadata", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise AssertionError(f"server exited during start-up with {proc.returncode}")
        time.sleep(0.3)
    proc.kill()
    raise AssertionError(f"server did not start within {timeout:.0f} s")
