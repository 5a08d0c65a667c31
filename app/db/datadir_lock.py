"""Advisory locks on a data directory (``fcntl.flock``), so that one data directory has at most one
``fhirledger serve`` and its embedded PostgreSQL is started and stopped by one process at a time.

``flock`` locks belong to an open file description and the kernel releases them when the process
dies, however it dies: a SIGKILLed server never leaves a stale lock behind (a pid file would, and
its pid can be reused). Three lock files live directly under the data directory:

- ``serve.lock``: held exclusively by ``fhirledger serve`` for its whole lifetime; it holds the
  server's pid, for the message a second server prints when it refuses to start.
- ``users.lock``: held shared by every process using the embedded PostgreSQL (the server and the
  operator commands); whoever can take it exclusively when leaving is the last user and stops the
  postmaster.
- ``lifecycle.lock``: held exclusively while the postmaster is being started, adopted or stopped,
  so these never interleave.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class DataDirInUse(Exception):
    """Another ``fhirledger serve`` holds the data directory."""


class FileLock:
    """One lock file under the data directory, opened once and locked with ``flock``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def _open(self) -> int:
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        return self._fd

    def acquire(self, *, shared: bool = False, block: bool = True) -> bool:
        """Take the lock; with ``block=False`` returns False instead of waiting when it is held."""
        flags = (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | (0 if block else fcntl.LOCK_NB)
        try:
            fcntl.flock(self._open(), flags)
        except BlockingIOError:
            return False
        return True

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the only descriptor drops the lock
            self._fd = None

    def held_elsewhere(self) -> bool:
        """Whether another process holds the lock exclusively (probed without keeping it)."""
        probe = FileLock(self.path)
        try:
            return not probe.acquire(shared=True, block=False)
        finally:
            probe.release()

    def write_pid(self) -> None:
        fd = self._open()
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)

    def read_pid(self) -> int | None:
        try:
            return int(self.path.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None


def serve_lock(data_dir: Path) -> FileLock:
    return FileLock(data_dir / "serve.lock")


def users_lock(data_dir: Path) -> FileLock:
    return FileLock(data_dir / "users.lock")


@contextmanager
def lifecycle(data_dir: Path) -> Iterator[None]:
    """Exclusive while the postmaster is being started, adopted or stopped (waits for the holder)."""
    lock = FileLock(data_dir / "lifecycle.lock")
    lock.acquire()
    try:
        yield
    finally:
        lock.release()


def claim_for_serve(data_dir: Path) -> FileLock:
    """The serve lock of ``data_dir``, held until the process exits (or :meth:`FileLock.release`).

    Raises :class:`DataDirInUse` naming the running server's pid when another server holds it."""
    lock = serve_lock(data_dir)
    if not lock.acquire(block=False):
        pid = lock.read_pid()
        lock.release()
        holder = f" (pid {pid})" if pid else ""
        raise DataDirInUse(
            f"the data directory {data_dir} is in use by another fhirledger serve{holder}; stop that server"
            " first or pass another --data-dir. Operator commands (projections, events, audit) can run"
            " alongside it with the same --data-dir."
        )
    lock.write_pid()
    return lock
