"""`fhirledger serve` runs one worker process per core by default (half of them, rounded up,
when the database runs on this machine: the embedded one's backends need the rest);
each worker dies with the server process (tests/api/test_crash_safety.py kills a default,
multi-worker server with SIGKILL and finds the request it was serving cut off)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from app import cli
from app.cli import default_workers


def test_the_default_is_one_worker_per_core_with_a_database_elsewhere() -> None:
    assert default_workers("postgresql://fhir@db.example.org:5432/fhir") == len(os.sched_getaffinity(0))


def test_a_database_on_this_machine_leaves_it_half_the_cores(monkeypatch) -> None:
    local = (None, "postgresql://postgres@/fhirledger?host=/srv/fhir/pgdata&port=5432", "postgresql://fhir@localhost/f")
    for cores, expected in ((1, 1), (2, 1), (3, 2), (4, 2), (8, 4), (16, 8)):
        monkeypatch.setattr(cli, "cores_available", lambda cores=cores: cores)
        assert [default_workers(url) for url in local] == [expected] * 3, cores
        assert default_workers("postgresql://fhir@db.example.org:5432/fhir") == cores


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
