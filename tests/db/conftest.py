"""Fixtures of the embedded-database tests.

``embedded_dir``: a fresh data directory outside pytest's ``tmp_path``. Run as root, the embedded
PostgreSQL runs as the ``pgserver`` user, which must be able to traverse the path; a concurrent
pytest run resets ``/tmp/pytest-of-root`` to mode 0700 and would lock it out mid-test.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.server_process import embedded_data_dir


@pytest.fixture
def embedded_dir() -> Iterator[Path]:
    with embedded_data_dir() as path:
        yield path
