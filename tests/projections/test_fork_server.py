"""Replay's fork server loads the caller's main module once, and its workers do not load it again
(app/projections/fork_server.py; before Python 3.13 the fork server ignores ``__main__`` in its
preload list, and every worker ran the main script itself)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from app.settings import PROJECT_ROOT

MAIN = """
import os, sys
with open(os.environ["MAIN_RUNS"], "a") as runs:
    runs.write(f"{__name__} {os.getpid()}\\n")
from app.projections.rebuild import replay_executor

if __name__ == "__main__":
    with replay_executor([]) as executor:
        workers = {executor.submit(os.getpid).result() for _ in range(6)}
    print(" ".join(map(str, sorted(workers))))
"""


def test_the_main_script_is_loaded_by_the_fork_server_only(tmp_path: Path):
    script, runs = tmp_path / "main.py", tmp_path / "runs"
    script.write_text(MAIN)
    env = {**os.environ, "MAIN_RUNS": str(runs), "PYTHONPATH": str(PROJECT_ROOT)}
    done = subprocess.run(
        [sys.executable, str(script)], env=env, cwd=PROJECT_ROOT, check=True, capture_output=True, text=True
    )
    workers = {int(pid) for pid in done.stdout.split()}
    loads = [line.split() for line in runs.read_text().splitlines()]
    assert workers and [name for name, _ in loads] == ["__main__", "__mp_main__"]
    assert int(loads[1][1]) not in workers  # the fork server's, not a worker's
