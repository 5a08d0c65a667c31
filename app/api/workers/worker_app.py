"""The application factory of a worker process of ``fhirledger serve --workers N`` (N > 1).

A worker must not outlive the server process that started it: killed with SIGKILL, the parent
cannot stop its workers, which would keep serving on the inherited socket while the data directory
looks free (its lock released). On Linux each worker asks the kernel to kill it when its parent
dies (``PR_SET_PDEATHSIG``), and exits at once if the parent is already gone.

A worker whose application fails to start (its lifespan raises: the database unreachable, a
migration refused) logs the cause and ends at once with :data:`STARTUP_FAILURE`, the status the
supervisor (:mod:`app.api.workers.supervisor`) stops the server on. Left to uvicorn, it would raise
``SystemExit`` through the event loop and the interpreter's shutdown (cancelling tasks, joining
threads), during which it neither serves nor answers health checks, for as long as that takes.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Any, NoReturn

from fastapi import FastAPI
from uvicorn.config import STARTUP_FAILURE

from app.api.app import create_app
from app.api.workers.start_barrier import wait_for_peers
from app.projections import cross_process_gate

PR_SET_PDEATHSIG = 1
log = logging.getLogger("uvicorn.error")  # the worker's configured logger: lines as uvicorn's own


def die_with_parent() -> None:
    if not sys.platform.startswith("linux"):
        return
    parent = os.getppid()
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent or parent == 1:  # the parent died before the request took effect
        os._exit(1)


def exit_on_startup_failure(lifespan: Callable[[Any], AbstractAsyncContextManager[Any]]) -> Callable:
    """``lifespan``, ending the process with :data:`STARTUP_FAILURE` (the cause logged) when its
    start raises, and waiting at its end for the other workers; its shutdown is left as it is."""

    @asynccontextmanager
    async def guarded(app: Any) -> AsyncIterator[Any]:
        async with AsyncExitStack() as stack:
            try:
                state = await stack.enter_async_context(lifespan(app))
            except Exception as exc:
                _exit_after_failed_start(exc)
            await wait_for_peers()  # accept connections only once every worker can (app/api/workers/start_barrier.py)
            yield state

    return guarded


def _exit_after_failed_start(exc: Exception) -> NoReturn:
    log.error(
        "Application startup failed: %s: %s; worker process [%s] exits with status %s",
        type(exc).__name__,
        exc,
        os.getpid(),
        STARTUP_FAILURE,
        exc_info=exc,
    )
    for handler in [*logging.getLogger().handlers, *log.handlers]:
        handler.flush()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(STARTUP_FAILURE)


def create_worker_app() -> FastAPI:
    die_with_parent()
    sys.setswitchinterval(0.001)  # as ``serve`` does for a single process (app/cli.py)
    cross_process_gate.share(True)  # the other workers write the same types
    app = create_app()
    app.router.lifespan_context = exit_on_startup_failure(app.router.lifespan_context)
    return app
