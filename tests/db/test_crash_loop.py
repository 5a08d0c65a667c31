"""Crash after crash on one data directory: a real `fhirledger serve` and its embedded PostgreSQL
are killed in every way a machine can kill them, 12 rounds in a row, while a client writes; after
each restart every write acknowledged with 201 is readable (nothing acknowledged is lost) and the
server comes up on its own (crash recovery, backends of a killed postmaster ended); a server whose
postmaster alone was killed starts a new one and takes writes again without a restart."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx
import psutil

from tests.server_process import free_port, log_tail, server_log, start_server

log = logging.getLogger(__name__)

ROUNDS = 12
"""Each kind of kill three times; of the three killed postmasters whose backends outlive it, two
servers are then stopped cleanly (rounds 3 and 11) and one killed (round 7). Twenty rounds took 78 s,
a quarter of the suite (session 19)."""
KINDS = ("server", "postmaster", "both", "backends")


def _postmaster(data_dir: Path) -> psutil.Process:
    pid = int((data_dir / "pgdata" / "postmaster.pid").read_text().split()[0])
    return psutil.Process(pid)


class Writer(threading.Thread):
    """PUTs new Patients as fast as it can until told to stop; remembers the ones answered 201."""

    def __init__(self, base: str, prefix: str) -> None:
        super().__init__(daemon=True)
        self.base, self.prefix = base, prefix
        self.acknowledged: list[str] = []
        self.stop = threading.Event()

    def run(self) -> None:
        with httpx.Client(timeout=10) as client:
            n = 0
            while not self.stop.is_set():
                rid = f"{self.prefix}-{n}"
                n += 1
                try:
                    r = client.put(f"{self.base}/Patient/{rid}", json={"resourceType": "Patient", "id": rid})
                except httpx.HTTPError:
                    time.sleep(0.02)
                    continue
                if r.status_code == 201:
                    self.acknowledged.append(rid)


def _kill(kind: str, round_no: int, proc: subprocess.Popen, data_dir: Path) -> bool:
    """Kill as ``kind`` says; returns whether the server process is gone (else it heals itself)."""
    postmaster = _postmaster(data_dir)
    if kind == "backends":  # backends that outlive their postmaster keep its shared memory attached
        for child in postmaster.children():
            child.send_signal(signal.SIGSTOP)
    if kind in ("server", "both"):
        proc.kill()
    if kind != "server":
        postmaster.kill()
    if kind == "postmaster":
        return False  # the server's watchdog starts a new postmaster
    if kind == "backends" and round_no % 8 == 3:  # a clean stop of a server whose postmaster was killed
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0, log_tail(data_dir)
    elif kind == "backends":  # or the server killed too: the next start ends the backends
        proc.kill()
    proc.wait(30)
    return True


def _wait_for_writes(base: str, timeout: float = 120) -> float:
    """Seconds until the server acknowledges a write again."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.put(f"{base}/Patient/probe", json={"resourceType": "Patient", "id": "probe"}).status_code < 300:
                return time.monotonic() - t0
        time.sleep(0.1)
    raise AssertionError(f"the server did not recover within {timeout} s")


def _unreadable(base: str, ids: list[str]) -> list[str]:
    with httpx.Client(timeout=10) as client:
        return [rid for rid in ids if client.get(f"{base}/Patient/{rid}").status_code != 200]


def test_acknowledged_writes_survive_every_kind_of_crash(embedded_dir: Path) -> None:
    data_dir = embedded_dir
    port = free_port()
    base = f"http://127.0.0.1:{port}/fhir"
    proc = start_server(data_dir, port)
    acknowledged: list[str] = []
    starts: list[float] = []
    healed: list[float] = []
    began = time.monotonic()
    try:
        for round_no in range(ROUNDS):
            kind = KINDS[round_no % len(KINDS)]
            writer = Writer(base, f"r{round_no}")
            writer.start()
            deadline = time.monotonic() + 60
            while not writer.acknowledged and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.2)  # the kill lands in the middle of the writes
            restart = _kill(kind, round_no, proc, data_dir)
            writer.stop.set()
            writer.join(30)
            assert writer.acknowledged, f"round {round_no}: no write acknowledged before the kill"
            acknowledged += writer.acknowledged
            t0 = time.monotonic()
            if restart:
                proc = start_server(data_dir, port)
                starts.append(time.monotonic() - t0)
            else:
                healed.append(_wait_for_writes(base))
            lost = _unreadable(base, writer.acknowledged)
            assert not lost, f"round {round_no} ({kind}): acknowledged but not readable after restart: {lost}"
        assert not _unreadable(base, acknowledged)
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    log.warning(
        "crash loop: %d rounds in %.1f s, %d acknowledged writes; restart of the server %.1f-%.1f s (mean %.1f);"
        " writes again after a killed postmaster %.1f-%.1f s",
        ROUNDS,
        time.monotonic() - began,
        len(acknowledged),
        min(starts),
        max(starts),
        sum(starts) / len(starts),
        min(healed),
        max(healed),
    )
    text = server_log(data_dir).read_text()
    assert "terminating" in text and "left by a killed postmaster" in text, "orphaned backends were ended at start"
    assert "was not stopped cleanly" in text
    assert "died; starting it again" in text
    assert not (data_dir / "pgdata" / "postmaster.pid").exists(), "the last SIGTERM stopped PostgreSQL"
    assert not [p for p in psutil.process_iter() if _of(p, data_dir)], "no PostgreSQL process is left"


def _of(proc: psutil.Process, data_dir: Path) -> bool:
    with contextlib.suppress(psutil.Error):
        return proc.name() == "postgres" and proc.cwd() == str(data_dir / "pgdata") and proc.pid != os.getpid()
    return False
