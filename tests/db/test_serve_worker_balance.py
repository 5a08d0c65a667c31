"""``fhirledger serve --workers 2`` spreads connections over its workers: the first answer comes
once both accept connections, and connections a client opens at once do not all land on the first
worker awake (app/api/workers/start_barrier.py). A real server subprocess, one worker slowed at start."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest

from app.api.workers.accept_balance import MAX_PAUSE
from tests.db.test_serve_worker_deaths import WORKERS, _wait, _workers
from tests.server_process import embedded_data_dir, free_port, start_server

SLOW_START = 6  # seconds the first worker spawned waits before starting


@pytest.fixture(scope="module")
def data_dir() -> Iterator[Path]:
    """One data directory for the module's servers, one at a time (created and migrated once)."""
    with embedded_data_dir() as path:
        yield path


def _open(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(b"GET /fhir/metadata?_summary=true HTTP/1.1\r\nhost: x\r\n\r\n")
    assert _read_response(sock).startswith(b"HTTP/1.1 200")
    return sock


def _read_response(sock: socket.socket) -> bytes:
    """Read one response (with a content-length) off ``sock``; its head."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(next(h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")).split(b":")[1])
    while len(body) < length:
        body += sock.recv(65536)
    return head


def _owners(proc: subprocess.Popen, port: int) -> Counter[int]:
    """worker pid -> established connections it holds on ``port``."""
    out: Counter[int] = Counter()
    for worker in _workers(proc):
        out[worker.pid] = sum(
            1 for c in worker.net_connections("tcp") if c.status == psutil.CONN_ESTABLISHED and c.laddr.port == port
        )
    return out


def test_connections_opened_at_once_reach_both_workers(data_dir: Path, tmp_path: Path) -> None:
    marker = tmp_path / "slowed"
    (tmp_path / "sitecustomize.py").write_text(
        "import os, sys, time\n"
        "if '--multiprocessing-fork' in sys.argv:\n"
        "    try:\n"
        f"        os.close(os.open({str(marker)!r}, os.O_CREAT | os.O_EXCL))\n"
        f"        time.sleep({SLOW_START})\n"
        "    except FileExistsError:\n"
        "        pass\n"
    )
    port = free_port()
    proc = start_server(data_dir, port, timeout=120, args=WORKERS, env={"PYTHONPATH": str(tmp_path)})
    try:
        with ThreadPoolExecutor(4) as pool:  # four connections at once, as soon as it answers
            socks = list(pool.map(lambda _: _open(port), range(4)))
        owners = _owners(proc, port)
        for sock in socks:
            sock.close()
        assert len(owners) == 2 and all(n >= 1 for n in owners.values()), owners
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    assert marker.exists() and os.environ.get("FHIRLEDGER_START_BARRIER") is None


def _open_while_busy(port: int, count: int) -> list[socket.socket]:
    """``count`` connections opened 50 ms apart, the first kept busy with requests meanwhile."""
    busy = threading.Event()

    def keep_busy(sock: socket.socket) -> None:
        while not busy.is_set():
            sock.sendall(b"GET /fhir/metadata HTTP/1.1\r\nhost: x\r\n\r\n")
            _read_response(sock)

    socks = [_open(port)]
    worker = threading.Thread(target=keep_busy, args=(socks[0],))
    worker.start()
    try:
        for _ in range(count - 1):
            time.sleep(0.05)
            socks.append(_open(port))
    finally:
        busy.set()
        worker.join()
    return socks


def _shared(proc: subprocess.Popen, port: int, count: int) -> Counter[int]:
    """worker pid -> connections it took of ``count`` opened by :func:`_open_while_busy`."""
    socks = _open_while_busy(port, count)
    owners = _owners(proc, port)
    for sock in socks:
        sock.close()
    return owners


def test_connections_opened_one_after_another_are_shared(data_dir: Path) -> None:
    """A client that opens its connections one at a time while the server is busy (an ingest
    client's workers, each opening one when it has read its first file) gets them spread evenly
    over the workers: the busy worker, awake when each arrived, took them all before (5:1)."""
    port = free_port()
    proc = start_server(data_dir, port, timeout=120, args=WORKERS)
    try:
        owners = _shared(proc, port, 6)
        assert sorted(owners.values()) == [3, 3], owners
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)


def test_a_hung_worker_delays_new_connections_by_the_longest_pause_at_most(data_dir: Path) -> None:
    """One worker stopped (hung, say, until the supervisor kills it): the other, though it holds
    more connections, takes every new one after :data:`MAX_PAUSE` at most, not never."""
    port = free_port()
    proc = start_server(data_dir, port, timeout=120, args=WORKERS)
    hung = _workers(proc)[0]
    socks: list[socket.socket] = []
    try:
        socks.append(_open(port))
        hung.suspend()
        start = time.monotonic()
        for _ in range(5):
            socks.append(_open(port))
        took = time.monotonic() - start
        owners = _owners(proc, port)
        assert owners[hung.pid] <= 1 and sum(owners.values()) == 6, owners
        assert took < 5 * (MAX_PAUSE + 0.2), took
    finally:
        hung.resume()
        for sock in socks:
            sock.close()
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)


def test_workers_restarted_by_sighup_still_share_connections(data_dir: Path) -> None:
    """SIGHUP replaces each worker (the supervisor's own restart, with balanced workers): the new
    ones serve, share the connections opened one after another, and the old ones' counts are gone."""
    port = free_port()
    proc = start_server(data_dir, port, timeout=120, args=WORKERS)
    try:
        old = _pids(proc)
        proc.send_signal(signal.SIGHUP)
        _wait("both workers replaced", lambda: len(_pids(proc)) == 2 and not _pids(proc) & old, 120)
        owners = _shared(proc, port, 4)
        assert set(owners) == _pids(proc) and sorted(owners.values()) == [2, 2], owners
        assert not {f"{pid}.open" for pid in old} & _published()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)


def test_a_worker_added_by_sigttin_takes_its_share(data_dir: Path) -> None:
    """SIGTTIN adds a worker (the supervisor's own, balanced): it serves, and connections opened
    one after another while the others are busy reach it too."""
    port = free_port()
    proc = start_server(data_dir, port, timeout=120, args=WORKERS)
    try:
        proc.send_signal(signal.SIGTTIN)
        _wait("a third worker serving", lambda: len(_pids(proc)) == 3 and _serves_from_all(proc), 120)
        owners = _shared(proc, port, 6)
        assert len(owners) == 3 and sorted(owners.values()) == [2, 2, 2], owners
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)


def _published() -> set[str]:
    """The connection counts the workers of this machine's servers publish (their file names)."""
    directory = Path(os.environ.get("TMPDIR", "/tmp"))
    return {p.name for p in directory.glob("fhirledger-start-*/*.open")}


def _serves_from_all(proc: subprocess.Popen) -> bool:
    """Whether every worker has published its count (it listens, balanced)."""
    return all(f"{pid}.open" in _published() for pid in _pids(proc))


def _pids(proc: subprocess.Popen) -> set[int]:
    return {w.pid for w in _workers(proc)}
