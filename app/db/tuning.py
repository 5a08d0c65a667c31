"""The embedded PostgreSQL's settings for the machine it runs on, written once at its first start.

``tuned_settings`` derives them from the memory, cores and disk space available (shared_buffers
about a quarter of the memory, capped; the planner told the disk is an SSD; room for WAL between
checkpoints by the disk space free); ``ensure_tuning`` writes them to ``<pgdata>/fhirledger.conf``
and includes that file from ``postgresql.conf``. The file is written only when it is missing, so an
operator's edits stay. Durability is never traded for speed: ``fsync``, ``synchronous_commit`` and
``full_page_writes`` keep their safe defaults. An external server is never touched (``fhirledger
doctor`` reports its settings instead, :mod:`app.cli_doctor`).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from pathlib import Path

import psutil

from app.db.locality import cores_available

log = logging.getLogger("fhirledger.embedded")

TUNING_FILE = "fhirledger.conf"
INCLUDE_LINE = f"include_if_exists = '{TUNING_FILE}'  # fhirledger: settings for this machine"

MB = 1024 * 1024
GB = 1024 * MB
SHARED_BUFFERS_CAP = 4 * GB
MAX_CONNECTIONS = 100


def _mb(value: int) -> str:
    return f"{max(1, value // MB)}MB"


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))


def wal_size(disk_free: int) -> str:
    """``max_wal_size`` for a data directory with ``disk_free`` bytes free: an eighth of it, from 1 to
    16 GB. A checkpoint is started each time about half of it has been written (with
    ``checkpoint_completion_target`` 0.9), and after a checkpoint each page's first change writes the
    whole page to the WAL again: at 4 GB, a replay of a million events (1.7 GB of WAL, after the
    log's own append) started one midway, and took 2.7-3.0 KB of WAL and 73-86 us of PostgreSQL
    CPU per event instead of 1.7 KB and 69-74 (bench/replay.py, five runs alternated, session
    17). The price: a crash recovery replays up to that much WAL, and the WAL may take that much
    disk between checkpoints (``checkpoint_timeout`` still starts one every 5 minutes)."""
    return f"{_clamp(disk_free // 8 // GB, 1, 16)}GB"


def tuned_settings(memory: int, cores: int, lz4: bool, disk_free: int) -> dict[str, str]:
    """The settings for a machine with ``memory`` bytes of RAM and ``cores`` CPUs (``lz4``: the
    server binary was built with LZ4, which compresses faster than the built-in pglz;
    ``disk_free``: bytes free where the data directory is)."""
    shared = _clamp(memory // 4, 128 * MB, SHARED_BUFFERS_CAP)
    settings = {
        "shared_buffers": _mb(shared),
        "effective_cache_size": _mb(max(shared, memory * 3 // 4)),
        # per sort or hash node of one query: a quarter of the memory over the connections
        "work_mem": _mb(_clamp(memory // 4 // MAX_CONNECTIONS, 4 * MB, 64 * MB)),
        "maintenance_work_mem": _mb(_clamp(memory // 16, 64 * MB, 1 * GB)),
        "max_wal_size": wal_size(disk_free),
        "min_wal_size": "512MB",
        "checkpoint_completion_target": "0.9",
        "random_page_cost": "1.1",  # an SSD: random reads cost little more than sequential ones
        "effective_io_concurrency": "200",
        "jit": "off",  # compiling a large search's plan costs more than it saves on short queries
        "max_worker_processes": str(max(8, cores)),
        "max_parallel_workers": str(max(2, cores)),
        "max_parallel_workers_per_gather": str(_clamp(cores // 2, 1, 4)),
        "max_parallel_maintenance_workers": str(_clamp(cores // 2, 1, 4)),
    }
    if lz4:
        settings["default_toast_compression"] = "lz4"
    return settings


def server_has_lz4(bin_dir: Path) -> bool:
    """Whether the PostgreSQL binaries under ``bin_dir`` were built with LZ4 support."""
    try:
        out = subprocess.run(
            [str(bin_dir / "pg_config"), "--configure", "--libs"], capture_output=True, text=True, timeout=30
        ).stdout
    except OSError:
        return False
    return "lz4" in out


def machine() -> tuple[int, int]:
    """(bytes of memory, cores) this process may use."""
    return psutil.virtual_memory().total, cores_available()


def render(settings: dict[str, str], memory: int, cores: int) -> str:
    lines = [
        "# Written by fhirledger at the first start of this embedded PostgreSQL, for a machine with",
        f"# {memory / GB:.1f} GB of memory and {cores} core(s). Edit freely: it is never overwritten",
        "# (delete it to have it computed again at the next start). Durability settings (fsync,",
        "# synchronous_commit, full_page_writes) are left at their safe defaults on purpose.",
    ]
    lines += [f"{name} = '{value}'" for name, value in settings.items()]
    return "\n".join(lines) + "\n"


def ensure_tuning(pgdata: Path, bin_dir: Path) -> bool:
    """Write ``fhirledger.conf`` (if missing) and include it from ``postgresql.conf`` (if not yet);
    returns whether anything was written. Takes effect when the postmaster (re)starts."""
    conf = pgdata / "postgresql.conf"
    if not conf.exists():
        return False
    wrote = False
    target = pgdata / TUNING_FILE
    if not target.exists():
        memory, cores = machine()
        settings = tuned_settings(memory, cores, server_has_lz4(bin_dir), shutil.disk_usage(pgdata).free)
        target.write_text(render(settings, memory, cores))
        _same_owner(target, conf)
        log.info("wrote PostgreSQL settings for this machine to %s", target)
        wrote = True
    text = conf.read_text()
    if INCLUDE_LINE not in text:
        conf.write_text(text.rstrip("\n") + "\n\n" + INCLUDE_LINE + "\n")
        wrote = True
    return wrote


def _same_owner(path: Path, like: Path) -> None:
    """The postmaster runs as the data directory's owner (``pgserver`` when we are root)."""
    if os.name == "posix" and os.geteuid() == 0:
        st = like.stat()
        os.chown(path, st.st_uid, st.st_gid)
