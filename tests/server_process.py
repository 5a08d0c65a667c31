"""A real `fhirledger serve` subprocess on an embedded database, for end-to-end tests.

The server's output goes to ``<data-dir>.serve.log`` (appended, one file per data directory), and
a failed start shows its end."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_log(data_dir: Path) -> Path:
    return data_dir.with_name(data_dir.name + ".serve.log")


def log_tail(data_dir: Path, lines: int = 30) -> str:
    path = server_log(data_dir)
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


def spawn_server(
    data_dir: Path,
    port: int,
    cwd: Path | None = None,
    args: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
) -> subprocess.Popen:
    """Start `python -m app.cli serve [args]` without waiting for it; FHIRLEDGER_DATABASE_URL is
    ignored unless ``env`` (added to this process's environment) sets it."""
    env = {**{k: v for k, v in os.environ.items() if k != "FHIRLEDGER_DATABASE_URL"}, **(env or {})}
    paths = [str(Path(__file__).resolve().parents[1]), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    with open(server_log(((cwd or Path.cwd()) / data_dir).resolve()), "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--port", str(port), "--data-dir", str(data_dir), *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=cwd,
        )


def wait_until_serving(proc: subprocess.Popen, data_dir: Path, port: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/fhir/metadata", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise AssertionError(f"server exited during start-up with {proc.returncode}:\n{log_tail(data_dir)}")
        time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"server did not start within {timeout:.0f} s:\n{log_tail(data_dir)}")


def start_server(
    data_dir: Path,
    port: int,
    timeout: float = 120,
    cwd: Path | None = None,
    args: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
) -> subprocess.Popen:
    """Start the server and wait until it answers /metadata."""
    proc = spawn_server(data_dir, port, cwd, args, env)
    wait_until_serving(proc, (cwd or Path.cwd()) / data_dir, port, timeout)
    return proc


@contextmanager
def embedded_data_dir() -> Iterator[Path]:
    """A data directory (not created yet) under a fresh root the ``pgserver`` user can traverse."""
    root = Path(tempfile.mkdtemp(prefix="fhirledger-embedded-"))
    root.chmod(0o755)
    try:
        yield root / "data"
    finally:
        shutil.rmtree(root, ignore_errors=True)
