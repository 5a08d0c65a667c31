"""Fixtures of the embedded-database tests.

``embedded_dir``: a fresh data directory outside pytest's ``tmp_path``. Run as root, the embedded
PostgreSQL runs as the ``pgserver`` user, which must be able to traverse the path; a concurrent
pytest run resets ``/tmp/pytest-of-root`` to mode 0700 and would lock it out mid-test.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def embedded_dir() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="fhirledger-embedded-"))
    root.chmod(0o755)
    try:
        yield root / "data"
    finally:
        shutil.rmtree(root, ignore_errors=True)
