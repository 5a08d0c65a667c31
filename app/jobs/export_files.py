"""The files of a bulk export: one directory per export under the export root
(``FHIRLEDGER_EXPORT_DIR``, else ``<data dir>/exports``), ndjson files of at most
:data:`FILE_MAX_RESOURCES` resources each (``Observation-1.ndjson``, ``Observation-2.ndjson``, …)
and ``errors.ndjson`` (OperationOutcome lines), removed on cancellation and after the TTL
(:func:`remove_expired`, run periodically by the jobs leader)."""

from __future__ import annotations

import re
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

import asyncpg

from app.jobs.export_store import expire_due

FILE_MAX_RESOURCES = 100_000
FILE_NAME = re.compile(r"^[A-Za-z]+-\d{1,6}\.ndjson$|^errors\.ndjson$")


class TypeWriter:
    """Writes one type's resources, a line each, starting a new part every ``limit`` lines."""

    def __init__(self, directory: Path, resource_type: str, limit: int = FILE_MAX_RESOURCES) -> None:
        self.directory = directory
        self.resource_type = resource_type
        self.limit = limit
        self.files: list[tuple[str, int]] = []  # (file name, lines)
        self._handle: BinaryIO | None = None

    def write(self, line: bytes) -> None:
        if self._handle is None or self.files[-1][1] >= self.limit:
            self._open_next()
        assert self._handle is not None
        self._handle.write(line)
        self._handle.write(b"\n")
        name, count = self.files[-1]
        self.files[-1] = (name, count + 1)

    def write_all(self, lines: list[bytes]) -> None:
        """Write ``lines`` (a part's worth at a time)."""
        while lines:
            if self._handle is None or self.files[-1][1] >= self.limit:
                self._open_next()
            assert self._handle is not None
            name, count = self.files[-1]
            room = self.limit - count
            part, lines = lines[:room], lines[room:]
            self._handle.write(b"\n".join(part) + b"\n")
            self.files[-1] = (name, count + len(part))

    def _open_next(self) -> None:
        self.close()
        name = f"{self.resource_type}-{len(self.files) + 1}.ndjson"
        self._handle = (self.directory / name).open("wb", buffering=1 << 20)
        self.files.append((name, 0))

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    @property
    def count(self) -> int:
        return sum(n for _, n in self.files)


def remove_type_files(directory: Path, resource_type: str) -> None:
    """Remove a type's (partial) files, before the type is written again after a restart."""
    for path in directory.glob(f"{resource_type}-*.ndjson"):
        path.unlink(missing_ok=True)


def remove_directory(directory: str | Path) -> None:
    shutil.rmtree(directory, ignore_errors=True)


def file_path(directory: str, name: str) -> Path | None:
    """The path of an export's file ``name`` (None if the name is not one this module writes)."""
    return Path(directory) / name if FILE_NAME.fullmatch(name) else None


async def remove_expired(pool: asyncpg.Pool, now: datetime | None = None) -> int:
    """Expire the exports past their TTL and remove their files; returns how many."""
    due = await expire_due(pool, now or datetime.now(UTC))
    for record in due:
        remove_directory(record.directory)
    return len(due)
