"""The inputs of an import: which files, and the units of work they are read in.

A directory stands for the files under it (recursively) named ``*.ndjson``, ``*.jsonl`` or
``*.json``, each optionally ``.gz``; a file named on its own is read whatever its name (``.json``:
one JSON document, else ndjson). Gzip is recognised by its magic bytes. An ndjson file is read in
chunks of lines (:class:`Lines`), a JSON document whole (:class:`Document`, read by the worker).
Each unit carries ``weight``, the bytes of the file (as stored, compressed or not) it accounts for,
so progress and ETA follow the bytes read.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

SUFFIXES = (".ndjson", ".jsonl", ".json")
MAX_DOCUMENT_BYTES = 256 * 1024 * 1024
"""A JSON document (a Bundle) is parsed whole; larger ones must come as ndjson."""
LINES_PER_UNIT = 500


class SourceError(Exception):
    """A path that cannot be imported (missing, unreadable)."""


@dataclass(frozen=True, slots=True)
class Lines:
    path: str
    first_line: int
    lines: list[bytes]
    weight: int


@dataclass(frozen=True, slots=True)
class Document:
    path: str
    weight: int


Unit = Lines | Document


def _base_name(path: Path) -> str:
    name = path.name.lower()
    return name[:-3] if name.endswith(".gz") else name


def find_files(paths: list[str]) -> list[Path]:
    """The files to import, in the order given (a directory's files sorted by path)."""
    out: list[Path] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            found = [p for p in sorted(path.rglob("*")) if p.is_file() and _base_name(p).endswith(SUFFIXES)]
            out += found
        elif path.is_file():
            out.append(path)
        else:
            raise SourceError(f"{given}: no such file or directory")
    return list(dict.fromkeys(out))


def is_document(path: Path) -> bool:
    return _base_name(path).endswith(".json")


def _is_gzip(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(2) == b"\x1f\x8b"


def read_document(path: Path) -> bytes:
    """A JSON document's bytes (decompressed); :class:`SourceError` past :data:`MAX_DOCUMENT_BYTES`."""
    opener = gzip.open if _is_gzip(path) else open
    with opener(path, "rb") as f:
        raw = f.read(MAX_DOCUMENT_BYTES + 1)
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise SourceError(
            f"{path}: a JSON document over {MAX_DOCUMENT_BYTES // 2**20} MiB is not read whole; write it as ndjson"
        )
    return raw


def _lines(path: Path, label: str, per_unit: int) -> Iterator[Lines]:
    with path.open("rb") as raw:
        stream: BinaryIO = gzip.GzipFile(fileobj=raw) if _is_gzip(path) else raw  # type: ignore[assignment]
        first, chunk, offset = 1, [], 0
        for line in stream:
            chunk.append(line)
            if len(chunk) >= per_unit:
                at = raw.tell()
                yield Lines(label, first, chunk, at - offset)
                first, chunk, offset = first + len(chunk), [], at
        yield Lines(label, first, chunk, path.stat().st_size - offset)


def units(files: list[Path], per_unit: int = LINES_PER_UNIT) -> Iterator[Unit]:
    """The units of work of ``files``, in order."""
    for path in files:
        if is_document(path):
            yield Document(str(path), path.stat().st_size)
        else:
            yield from _lines(path, str(path), per_unit)
