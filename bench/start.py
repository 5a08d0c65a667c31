"""Start-up cost: CPU seconds of what replay's fork server preloads
(``app.projections.replay_preload``), of replay's fork server with its workers from their start to
their first task (what every replay counts as worker CPU before any work, its caller's main module
importing the CLI as the ``fhirledger`` script's does), of importing the CLI, and of
``fhirledger serve`` until its first ``200`` on ``/metadata`` (wall seconds too).

Each is measured in fresh subprocesses of this tree, with the spec cache (app/fhirspec/derived.py)
in a temporary directory: *cold* (empty, so the process derives from the spec files and writes it)
and *warm* (written by an earlier process). CPU is user + system of the subprocess tree (the
embedded PostgreSQL excluded); on a busy machine the wall clock says less. Compare two trees by
measuring each in turn (``--tree``: the tree whose code runs, default this one).

    python bench/start.py [--tree DIR] [--runs 5] [--serve-runs 3] [--workers 1]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import ServerProcess  # noqa: E402


def child_cpu(code: str) -> float:
    """CPU seconds of ``python -c code`` in a fresh process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, "-c", code], check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


FORK_SERVER = """
import time
import psutil
from multiprocessing import forkserver
import app.cli  # as the fhirledger script, the main module of a CLI replay, does
from app.projections.rebuild import replay_executor

if __name__ == "__main__":
    with replay_executor([]) as executor:
        list(executor.map(abs, range(16)))
        server = psutil.Process(forkserver._forkserver._forkserver_pid)
    time.sleep(0.3)  # the fork server reaps its workers
    t = server.cpu_times()
    print(t.user + t.system + t.children_user + t.children_system)
"""


def fork_server_cpu(scratch: Path) -> float:
    """CPU seconds of replay's fork server and its workers, started and given a trivial task."""
    script = scratch / "fork_server_main.py"  # a main script (python -c has none to load)
    script.write_text(FORK_SERVER)
    done = subprocess.run([sys.executable, str(script)], check=True, capture_output=True, text=True)
    return float(done.stdout.split()[-1])


def tree_cpu(pid: int) -> float:
    """CPU seconds of process ``pid`` and its descendants, PostgreSQL's excluded."""
    root = psutil.Process(pid)
    total = 0.0
    for proc in [root, *root.children(recursive=True)]:
        try:
            if "postgres" in proc.name():
                continue
            t = proc.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
        except psutil.Error:
            pass
    return total


def serve_start(data_dir: Path, workers: int) -> tuple[float, float]:
    """Wall and CPU seconds of ``serve`` from its start to its first 200 on /metadata."""
    server = ServerProcess(str(data_dir), workers)
    start = time.perf_counter()
    with server:
        wall = time.perf_counter() - start
        assert server.proc is not None
        cpu = tree_cpu(server.proc.pid)
        assert httpx.get(f"{server.base}/metadata", timeout=10).status_code == 200
    return wall, cpu


def summary(name: str, values: list[float], unit: str = "s CPU") -> None:
    shown = ", ".join(f"{v:.3f}" for v in values)
    print(f"{name:<34} median {statistics.median(values):.3f} {unit}  ({shown})")


def main(tree: Path, runs: int, serve_runs: int, workers: int) -> None:
    print(f"tree {tree}")
    os.chdir(tree)
    with tempfile.TemporaryDirectory(prefix="fhirledger-start-") as scratch:
        cache = Path(scratch) / "spec-cache"
        os.environ["FHIRLEDGER_SPEC_CACHE_DIR"] = str(cache)  # every subprocess below inherits them
        os.environ["PYTHONPATH"] = str(tree)
        preload = "import app.projections.replay_preload"
        cold = []
        for _ in range(runs):
            subprocess.run(["rm", "-rf", str(cache)], check=True)
            cold.append(child_cpu(preload))
        summary("replay preload, cold cache", cold)
        summary("replay preload, warm cache", [child_cpu(preload) for _ in range(runs)])
        summary("fork server + workers (warm cache)", [fork_server_cpu(Path(scratch)) for _ in range(runs)])
        summary("import app.cli (warm cache)", [child_cpu("import app.cli") for _ in range(runs)])
        if serve_runs:
            data_dir = Path(scratch) / "data"
            serve_start(data_dir, workers)  # creates the database (not measured)
            starts = [serve_start(data_dir, workers) for _ in range(serve_runs)]
            summary(f"serve to first 200, {workers} worker(s)", [c for _, c in starts])
            summary("  the same, wall", [w for w, _ in starts], "s wall")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--tree", type=Path, default=ROOT)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--serve-runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1)
    a = parser.parse_args()
    main(a.tree.resolve(), a.runs, a.serve_runs, a.workers)
