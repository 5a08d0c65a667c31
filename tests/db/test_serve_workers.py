"""`fhirledger serve` runs one worker process per core by default, wherever the database runs;
each worker dies with the server process (tests/api/test_crash_safety.py kills a default,
multi-worker server with SIGKILL and finds the request it was serving cut off)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from app import cli
from app.cli import default_workers


def test_the_default_is_one_worker_per_core_available(monkeypatch) -> None:
    assert default_workers() == len(os.sched_getaffinity(0))
    for cores in (1, 2, 3, 4, 8, 16):
        monkeypatch.setattr(cli, "cores_available", lambda cores=cores: cores)
        assert default_workers() == cores


def test_a_worker_dies_when_its_parent_is_killed() -> None:
    code = textwrap.dedent(
        """
        import os, subprocess, sys, time
        body = "from app.api.workers.worker_app import die_with_parent; import time; die_with_parent(); "
        body += "print('ready', flush=True); time.sleep(60)"
        child = subprocess.Popen([sys.executable, "-c", body], stdout=subprocess.PIPE, text=True)
        assert child.stdout.readline().strip() == "ready"
        print(child.pid, flush=True)
        time.sleep(60)
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=os.getcwd())
    try:
        assert parent.stdout is not None
        worker = int(parent.stdout.readline())
        parent.kill()
        parent.wait(10)
        for _ in range(100):
            try:
                os.kill(worker, 0)
            except ProcessLookupError:
                return
            subprocess.run(["sleep", "0.1"], check=True)
        raise AssertionError("the worker outlived its killed parent")
    finally:
        if parent.poll() is None:
            parent.kill()
