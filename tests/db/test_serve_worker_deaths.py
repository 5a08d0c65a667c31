"""``fhirledger serve --workers 2``: a worker that dies is reported with its cause and replaced; a
worker slow to start (a loaded machine) is waited for, not killed; workers that cannot start stop
the server with a non-zero exit status. A real server subprocess each time."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from tests.server_process import embedded_data_dir, free_port, server_log, spawn_server, start_server

WORKERS = ("--workers", "2", "--log-level", "warning")
SLOW_START = 8  # seconds a worker's interpreter takes to start (more than uvicorn's 5 s health check)
LINGER = 300  # seconds a thread would keep a worker alive after its interpreter's exit
PROMPT = 20  # seconds from a worker's failed start to the server's exit (30 s was a hung worker's timeout)


@pytest.fixture(scope="module")
def data_dir() -> Iterator[Path]:
    """One data directory for the module's servers (one at a time), outside pytest's ``tmp_path``
    as ``embedded_dir`` (tests/db/conftest.py) says why."""
    with embedded_data_dir() as path:
        yield path


def _workers(proc: subprocess.Popen) -> list[psutil.Process]:
    """The live worker processes (one that has ended but is not reaped yet is left out)."""
    out = []
    for child in psutil.Process(proc.pid).children():
        try:
            line = child.cmdline()
        except (psutil.ZombieProcess, psutil.NoSuchProcess):
            continue
        if "--multiprocessing-fork" in line and "spawn_main" in " ".join(line):
            out.append(child)
    return out


def _wait(what: str, check, timeout: float = 90) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def stop() -> Iterator[list[subprocess.Popen]]:
    started: list[subprocess.Popen] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()


def _serves(port: int) -> bool:
    return httpx.get(f"http://127.0.0.1:{port}/fhir/metadata", timeout=10).status_code == 200


def test_a_killed_worker_is_reported_and_replaced(data_dir: Path, stop: list[subprocess.Popen]) -> None:
    port = free_port()
    proc = start_server(data_dir, port, args=WORKERS)
    stop.append(proc)
    _wait("two workers", lambda: len(_workers(proc)) == 2)
    victim = _workers(proc)[0]
    victim.kill()
    log = server_log(data_dir.resolve())
    _wait("the death reported", lambda: f"worker process [{victim.pid}] was killed by SIGKILL" in log.read_text())
    _wait("a replacement", lambda: len(_workers(proc)) == 2 and victim.pid not in [w.pid for w in _workers(proc)])
    assert all(_serves(port) for _ in range(10))
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) == 0


def test_a_worker_slow_to_start_is_not_killed(data_dir: Path, tmp_path: Path, stop: list[subprocess.Popen]) -> None:
    (tmp_path / "sitecustomize.py").write_text(
        f"import sys, time\nif '--multiprocessing-fork' in sys.argv:\n    time.sleep({SLOW_START})\n"
    )
    log = server_log(data_dir.resolve())
    before = log.read_text() if log.exists() else ""
    port = free_port()
    proc = start_server(data_dir, port, timeout=90, args=WORKERS, env={"PYTHONPATH": str(tmp_path)})
    stop.append(proc)
    _wait("both workers serving", lambda: len(_workers(proc)) == 2 and _serves(port))
    time.sleep(2)
    assert "worker process" not in log.read_text()[len(before) :], log.read_text()[len(before) :]
    assert proc.poll() is None


def test_workers_that_cannot_start_stop_the_server_with_an_error(tmp_path: Path) -> None:
    # each worker also starts a thread that would keep its process alive for minutes after its
    # interpreter's normal exit (as a stuck library thread would): a worker whose start failed
    # must end at once all the same, and the supervisor see its exit status, not a hung worker
    (tmp_path / "sitecustomize.py").write_text(
        "import sys, threading, time\n"
        "if '--multiprocessing-fork' in sys.argv:\n"
        f"    threading.Thread(target=time.sleep, args=({LINGER},), daemon=False).start()\n"
    )
    closed = free_port()  # nothing listens there: every worker fails to connect at start-up
    data_dir = tmp_path / "unused"
    env = {
        "FHIRLEDGER_DATABASE_URL": f"postgresql://postgres@127.0.0.1:{closed}/fhirledger",
        "PYTHONPATH": str(tmp_path),
    }
    proc = spawn_server(data_dir, free_port(), args=WORKERS, env=env)
    log = server_log(data_dir.resolve())
    try:
        _wait("a worker's failed start logged", lambda: "Application startup failed" in log.read_text(), timeout=120)
        status = proc.wait(PROMPT)  # the supervisor looks at its workers every half second
    finally:
        if proc.poll() is None:
            proc.kill()
    out = log.read_text()
    assert status == 1, out
    assert "Application startup failed: ConnectionRefusedError" in out, out  # the cause, in the worker
    assert "failed to start its application (its error is logged above); stopping the server" in out, out
    assert "hung" not in out and "killed it" not in out, out
