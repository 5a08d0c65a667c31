"""This machine: the cores this process may run on (:func:`app.cli.default_workers` starts one HTTP
worker per core)."""

from __future__ import annotations

import os


def cores_available() -> int:
    """The cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)
