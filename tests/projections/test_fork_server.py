"""Replay's fork server loads the caller's main module once, and its workers do not load it again
(app/projections/fork_server.py; before Python 3.13 the fork server ignores ``__main__`` in its
preload list, and every worker ran the main script itself)."""

from __future__ import annotations

import os
import site
import subprocess
import sys
from pathlib import Path

import app
from app.projections.fork_server import _checkout
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


CHECKOUT = """
import sys
sys.path.insert(0, sys.argv[1])
from app.projections.rebuild import replay_executor

if __name__ == "__main__":
    with replay_executor([]) as executor:
        print(executor.submit(eval, "__import__('app').__file__").result())
"""


def test_workers_run_the_callers_checkout_not_the_installed_one(tmp_path: Path):
    """A script that puts a checkout of its own first on ``sys.path`` (as the benchmarks do to
    compare two commits) has its replay workers run that checkout's code: the fork server they are
    forked from imports the package from the caller's checkout, not from wherever its own path finds
    one first (the installed package; Python 3.11's fork server ignores the caller's path)."""
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    (checkout / "app").symlink_to(PROJECT_ROOT / "app")  # the same code, at a path of its own
    script = tmp_path / "main.py"
    script.write_text(CHECKOUT)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [sys.executable, str(script), str(checkout)], env=env, cwd=tmp_path, check=True, capture_output=True, text=True
    )
    assert done.stdout.strip() == str(checkout / "app" / "__init__.py")


def test_an_installed_package_adds_nothing_to_the_fork_servers_path(monkeypatch):
    """Only a checkout goes first on the fork server's path: a site-packages directory there would
    shadow the standard library with any backport installed in it (an installed package is found
    anyway)."""
    installed = site.getsitepackages()[0]
    monkeypatch.setattr(app, "__file__", os.path.join(installed, "app", "__init__.py"))
    assert _checkout() is None
    monkeypatch.setattr(app, "__file__", str(PROJECT_ROOT / "app" / "__init__.py"))
    assert _checkout() == str(PROJECT_ROOT)
