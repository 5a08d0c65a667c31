"""The application factory of a worker process of ``fhirledger serve --workers N`` (N > 1).

A worker must not outlive the server process that started it: killed with SIGKILL, the parent
cannot stop its workers, which would keep serving on the inherited socket while the data directory
looks free (its lock released). On Linux each worker asks the kernel to kill it when its parent
dies (``PR_SET_PDEATHSIG``), and exits at once if the parent is already gone.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

from fastapi import FastAPI

from app.api.app import create_app

PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    if not sys.platform.startswith("linux"):
        return
    parent = os.getppid()
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent or parent == 1:  # the parent died before the request took effect
        os._exit(1)


def create_worker_app() -> FastAPI:
    die_with_parent()
    sys.setswitchinterval(0.001)  # as ``serve`` does for a single process (app/cli.py)
    return create_app()
