"""CPU time of a server's processes by role while a benchmark runs: the server's Python processes,
PostgreSQL's backends (the connections), its autovacuum workers, its other processes (checkpointer,
WAL writer, I/O workers), and this load generator.

Autovacuum workers come and go, so the tree under the server process is sampled every
``interval`` seconds from a thread (``psutil``; PostgreSQL's processes are named by their title, as
``ps`` shows it); a process seen for the first time counts with all its CPU, one alive at the
start only with what it used since. What a process used in its last interval before it ended is
not seen (less than ``interval`` seconds of CPU each).
"""

from __future__ import annotations

import threading
from collections import Counter

import psutil

ROLES = ("server Python", "PostgreSQL backends", "autovacuum", "PostgreSQL other", "this client")


_AUXILIARY = (
    "checkpointer",
    "background writer",
    "walwriter",
    "autovacuum launcher",
    "logical replication",
    "io worker",
    "walsummarizer",
    "startup",
    "archiver",
    "walsender",
    "walreceiver",
)
"""The titles of PostgreSQL's own processes after ``postgres: `` (a backend's is the user, the
database, the client and what it does; a parallel worker's is work of a backend)."""


def role(process: psutil.Process) -> str:
    """The role of one process under the server."""
    if "postgres" not in process.name():
        return ROLES[0]
    title = " ".join(process.cmdline())
    if not title.startswith("postgres: "):
        return ROLES[3]  # the postmaster
    job = title.removeprefix("postgres: ")
    if job.startswith("autovacuum worker"):
        return ROLES[2]
    return ROLES[3] if job.startswith(_AUXILIARY) else ROLES[1]


def cpu_used(process: psutil.Process) -> float:
    """CPU seconds (user and system) a process has used so far."""
    times = process.cpu_times()
    return times.user + times.system


class RoleSampler:
    """``with RoleSampler(pid) as cpu: ...``, then ``cpu.seconds`` (role -> CPU seconds)."""

    def __init__(self, root_pid: int, interval: float = 0.5) -> None:
        self.root = psutil.Process(root_pid)
        self.interval = interval
        self.seconds: Counter[str] = Counter()
        self._last: dict[int, tuple[str, float]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._own = 0.0

    def __enter__(self) -> RoleSampler:
        self._sample(count=False)
        self._own = cpu_used(psutil.Process())
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample(count=True)
        self.seconds[ROLES[4]] += cpu_used(psutil.Process()) - self._own

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample(count=True)

    def _sample(self, count: bool) -> None:
        try:
            tree = [self.root, *self.root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return
        for process in tree:
            try:
                used = cpu_used(process)
                known = self._last.get(process.pid)
                name = known[0] if known else role(process)
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            if count:
                self.seconds[name] += used - (known[1] if known else 0.0)
            self._last[process.pid] = (name, used)

    def per_item(self, items: int) -> str:
        """Milliseconds of CPU per item of each role, as one line."""
        parts = [f"{name} {self.seconds[name] * 1000 / max(items, 1):.3f}" for name in ROLES]
        return "CPU ms per resource: " + ", ".join(parts)
