"""The fork server replay's worker processes are forked from, with the caller's main module
loaded in it, as ``set_forkserver_preload(["__main__", ...])`` promises.

Before Python 3.13 that promise is not kept: the fork server looks the main script up under a key
the preparation data no longer has (https://github.com/python/cpython/issues/137996), so it never
loads it, and every worker ran the main script itself before its first task: for the CLI, whose
main script imports :mod:`app.cli`, about 0.23 s of CPU per worker, as much again as the fork
server's own start. So the caller names its main script (or module) in the environment of the fork
server it starts, and the preload module loads it there (:func:`load_callers_main`), as the fork
server of 3.13 does: a worker then finds it loaded and skips it.

Nor does the fork server of 3.11 take the caller's ``sys.path`` (its ``main`` is handed it and
leaves it unused): it imported the preloaded modules, this package among them, from wherever its
own path found them first, and each worker is a fork of it. A caller that runs a checkout of its
own (``sys.path.insert``, as the benchmarks do to compare two commits) then had its workers run the
installed one's code. So the fork server starts with the directory this package was imported from
first on its ``PYTHONPATH`` (:func:`ensure_running`), unless that is a site-packages directory.
"""

from __future__ import annotations

import logging
import os
import site
from multiprocessing import forkserver, process, spawn

import app

log = logging.getLogger("fhirledger.replay")

MAIN_ENV = "_FHIRLEDGER_FORK_SERVER_MAIN"
"""``path:<script>`` or ``name:<module>``: the caller's main, as its workers would load it."""


def ensure_running() -> None:
    """Start the fork server (once per process), telling it the caller's main module."""
    data = spawn.get_preparation_data("fork-server")
    if "init_main_from_name" in data:
        main = f"name:{data['init_main_from_name']}"
    elif "init_main_from_path" in data:
        main = f"path:{data['init_main_from_path']}"
    else:
        main = ""
    path = os.pathsep.join(p for p in (_checkout(), os.environ.get("PYTHONPATH")) if p)
    previous = {name: os.environ.get(name) for name in (MAIN_ENV, "PYTHONPATH")}
    os.environ.update({MAIN_ENV: main, "PYTHONPATH": path})  # read by the fork server as it starts
    try:
        forkserver.ensure_running()
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _checkout() -> str | None:
    """The directory the caller's ``app`` package was imported from, unless it is a site-packages
    directory (an installed package is found there anyway; first on the path, such a directory
    would shadow the standard library with any backport installed in it)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(app.__file__)))
    installed = {os.path.abspath(p) for p in (*site.getsitepackages(), site.getusersitepackages())}
    return None if root in installed else root


def load_callers_main() -> None:
    """In the fork server: load the main module its caller named (a no-op where the fork server
    already did, from 3.13 on). A main that fails to load here is left to the workers, as before."""
    kind, _, main = os.environ.pop(MAIN_ENV, "").partition(":")
    if not main:
        return
    current = process.current_process()
    current._inheriting = True  # type: ignore[attr-defined]  # as the fork server sets it: a main
    try:  # that starts processes while it is imported fails, instead of forking without end
        if kind == "name":
            spawn._fixup_main_from_name(main)  # type: ignore[attr-defined]
        else:
            spawn.import_main_path(main)
    except Exception:
        log.warning("the fork server could not load %s; each worker loads it", main, exc_info=True)
    finally:
        del current._inheriting  # type: ignore[attr-defined]
