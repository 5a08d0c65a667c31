"""The workers of ``fhirledger serve --workers N`` start accepting connections together.

A worker accepts connections as soon as its own start-up ends; the others may still be loading
(the FHIR definitions, compiled checkers: seconds on a loaded machine). Clients that connect in
that window, and keep their connections alive, all land on the first worker and stay there: an
ingest client with four connections ran on one worker of two, the other idle (measured, bench/
ingest.py: one process busy, the second at 0.06 s of CPU). So each worker, at the end of its
start-up, waits until every worker of the first generation has reached that point (one file per
worker in a directory the supervisor makes), or :data:`TIMEOUT` seconds; a worker started later
to replace one that died finds them all there and does not wait.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ENV = "FHIRLEDGER_START_BARRIER"
"""``<workers>:<directory>``, set by the supervisor for the workers it spawns."""

TIMEOUT = 120.0  # as long as the supervisor's start-up grace: a worker slower than that is killed anyway
_POLL = 0.05

log = logging.getLogger("uvicorn.error")


@contextmanager
def barrier(workers: int) -> Iterator[Path]:
    """A barrier for ``workers`` processes, announced in the environment the workers inherit."""
    directory = Path(tempfile.mkdtemp(prefix="fhirledger-start-"))
    previous = os.environ.get(ENV)
    os.environ[ENV] = f"{workers}:{directory}"
    try:
        yield directory
    finally:
        if previous is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = previous
        shutil.rmtree(directory, ignore_errors=True)


def barrier_directory() -> Path | None:
    """The directory of the start barrier (None when this process is no worker of several); the
    workers keep other files there too (app/api/workers/accept_balance.py)."""
    value = os.environ.get(ENV)
    return Path(value.partition(":")[2]) if value else None


def barrier_workers() -> int:
    """How many workers the start barrier is for (0 when this process is no worker of several)."""
    value = os.environ.get(ENV)
    return int(value.partition(":")[0]) if value else 0


def _arrived(directory: Path) -> int:
    return sum(1 for name in os.listdir(directory) if name.isdigit())


async def wait_for_peers(timeout: float = TIMEOUT) -> None:
    """Say this worker is ready, then wait until all are (nothing to wait for without a barrier)."""
    directory, count = barrier_directory(), barrier_workers()
    if directory is None:
        return
    try:
        (directory / str(os.getpid())).touch()
    except OSError as exc:  # the supervisor's directory gone: serve rather than wait
        log.warning("worker process [%s]: start barrier unusable (%s); serving now", os.getpid(), exc)
        return
    deadline = time.monotonic() + timeout
    while _arrived(directory) < count:
        if time.monotonic() >= deadline:
            log.warning(
                "worker process [%s]: the other workers did not start within %.0f s; serving now", os.getpid(), timeout
            )
            return
        await asyncio.sleep(_POLL)
