"""The parent process of ``fhirledger serve --workers N`` (N > 1): uvicorn's worker supervisor,
with deaths that are reported and never leave the server silently degraded.

uvicorn's own supervisor pings each worker every half second and kills one that does not answer
within its health-check timeout, then starts another, saying only ``Child process [pid] died`` at
INFO level (hidden under ``--log-level warning``). A worker cannot answer before its interpreter
has started and re-imported the command line (``multiprocessing`` spawn): on a loaded machine that
takes longer than uvicorn's 5 seconds, so workers were killed while starting, without a word. And
when a worker failed to start, the parent stopped serving but exited 0. Here:

- a new worker has :data:`STARTUP_GRACE` seconds to answer its first health check; once it has
  answered, one that stops answering for :data:`HEALTHCHECK_TIMEOUT` seconds is killed as hung;
- every death is logged at WARNING with its cause (exit status, signal, or the unanswered check),
  and the worker is replaced;
- a worker that fails to start (its error is logged above by the worker), or deaths piling up
  (:data:`MAX_DEATHS` within :data:`DEATH_WINDOW` seconds), stop the server with an ERROR, and
  :func:`run_workers` returns a non-zero exit status.
"""

from __future__ import annotations

import logging
import pickle
import signal
import time
from collections import deque
from multiprocessing.connection import wait
from typing import Any

from uvicorn import Config
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors.multiprocess import Multiprocess, Process

from app.api.workers.accept_balance import forget
from app.api.workers.start_barrier import barrier, barrier_directory
from app.api.workers.worker_server import BalancedProcess

log = logging.getLogger("fhirledger.workers")

STARTUP_GRACE = 120.0
HEALTHCHECK_TIMEOUT = 30
MAX_DEATHS = 4
DEATH_WINDOW = 60.0
_POLL = 0.2  # how long one look at a worker that has not answered yet may wait


def death_cause(exitcode: int | None) -> str:
    """What a worker's exit status says about how it ended."""
    if exitcode is None:
        return "ended (no exit status)"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        hint = " (sent by an operator or by the kernel when memory runs out)" if name == "SIGKILL" else ""
        return f"was killed by {name}{hint}"
    if exitcode == STARTUP_FAILURE:
        return "failed to start its application (its error is logged above)"
    return f"exited with status {exitcode}"


def _answers(process: Process, timeout: float) -> bool:
    """Whether the worker answers a health check within ``timeout`` seconds; False as soon as it
    exits. uvicorn's own check waits out the whole timeout for a worker that dies meanwhile (this
    process holds the worker's end of the pipe too, so no end of file arrives): a worker that failed
    to start was then reported 30 s late, as hung and killed, instead of by its exit status."""
    conn = process.parent_conn
    try:
        conn.send(b"ping")
        if conn not in wait([conn, process.process.sentinel], timeout):
            return False
        conn.recv()
    except (OSError, EOFError, pickle.UnpicklingError):
        return False
    return True


class WorkerSupervisor(Multiprocess):
    """uvicorn's :class:`Multiprocess` with the health checks and death handling described above;
    ``exit_status`` is 0 unless it stopped the server because of its workers."""

    def __init__(self, config: Config, sockets: list[Any], grace: float = STARTUP_GRACE) -> None:
        super().__init__(config, sockets)
        self.grace = grace
        self.exit_status = 0
        self._first_seen: dict[int, float] = {}
        self._answered: set[int] = set()
        self._deaths: deque[float] = deque()

    def start_process(self) -> Process:
        """A worker process, started, that shares its connections evenly with the others (uvicorn's
        own places make a plain ``Process``; each is overridden here to call this instead)."""
        process = BalancedProcess(self.config, self.sockets)
        process.start()
        return process

    def init_processes(self) -> None:
        self.processes.extend(self.start_process() for _ in range(self.processes_num))

    def handle_ttin(self) -> None:
        log.info("Received SIGTTIN, increasing the number of processes.")
        self.processes_num += 1
        self.processes.append(self.start_process())

    def restart_all(self) -> None:
        """Replaces each worker (SIGHUP), bringing its replacement into service before retiring
        the old worker; stops at the first replacement not ready in time (uvicorn's own, with
        :meth:`start_process`)."""
        for idx, old_process in enumerate(self.processes):
            if self.should_exit.is_set():
                return
            new_process = self.start_process()
            if not new_process.wait_until_ready(self.config.timeout_worker_healthcheck, self.should_exit):
                new_process.kill()
                new_process.join()
                if not self.should_exit.is_set():
                    log.error(
                        "New worker process [%s] was not ready in time; keeping worker [%s] and aborting the restart",
                        new_process.pid,
                        old_process.pid,
                    )
                return
            old_process.terminate()
            old_process.join()
            self.processes[idx] = new_process

    def keep_subprocess_alive(self) -> None:
        for idx, process in enumerate(self.processes):
            if self.should_exit.is_set():
                return
            cause = self._failure(process)
            if cause is not None:
                self._replace(idx, process, cause)

    def _failure(self, process: Process) -> str | None:
        """None while ``process`` is alive (or still starting), else why it is gone (killing it
        when it has stopped answering)."""
        pid = process.pid or 0
        first = self._first_seen.setdefault(pid, time.monotonic())
        answered = pid in self._answered
        if _answers(process, self.config.timeout_worker_healthcheck if answered else _POLL):
            self._answered.add(pid)
            return None
        if not process.process.is_alive():
            process.join()
            return death_cause(process.exitcode)
        if answered:
            why = f"stopped answering health checks for {self.config.timeout_worker_healthcheck} s (hung)"
        elif time.monotonic() - first < self.grace:
            return None
        else:
            why = f"did not answer a health check within {self.grace:.0f} s of starting"
        process.kill()
        process.join()
        return f"{why}; killed it"

    def _replace(self, idx: int, process: Process, cause: str) -> None:
        directory = barrier_directory()
        if directory is not None and process.pid is not None:
            forget(directory, process.pid)  # its count of connections, left by a worker killed
        self._first_seen.pop(process.pid or 0, None)
        self._answered.discard(process.pid or 0)
        now = time.monotonic()
        self._deaths.append(now)
        while self._deaths and now - self._deaths[0] > DEATH_WINDOW:
            self._deaths.popleft()
        if process.exitcode == STARTUP_FAILURE:
            self._stop(f"worker process [{process.pid}] {cause}; stopping the server")
            return
        if len(self._deaths) >= MAX_DEATHS:
            self._stop(
                f"worker process [{process.pid}] {cause}; {len(self._deaths)} workers died within "
                f"{DEATH_WINDOW:.0f} s, stopping the server instead of restarting them"
            )
            return
        log.warning("worker process [%s] %s; starting another", process.pid, cause)
        self.processes[idx] = self.start_process()

    def _stop(self, message: str) -> None:
        log.error(message)
        self.exit_status = 1
        self.should_exit.set()


def run_workers(app: str, workers: int, **options: Any) -> int:
    """Serve the application factory ``app`` (``module:function``) with ``workers`` processes
    under :class:`WorkerSupervisor`, until stopped; returns the exit status for the command line."""
    config = Config(app, factory=True, workers=workers, timeout_worker_healthcheck=HEALTHCHECK_TIMEOUT, **options)
    with barrier(workers):  # the workers start accepting together (app/api/workers/start_barrier.py)
        supervisor = WorkerSupervisor(config, [config.bind_socket()])
        supervisor.run()
    return supervisor.exit_status
