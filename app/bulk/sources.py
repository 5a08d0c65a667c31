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
    path: str  # as reported (the file's path, or the URL it was downloaded from)
    first_line: int
    lines: list[bytes]
    weight: int
    resource_type: str | None = None  # every line must hold one of this type, when given


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


def _lines(path: Path, label: str, per_unit: int, resource_type: str | None) -> Iterator[Lines]:
    with path.open("rb") as raw:
        stream: BinaryIO = gzip.GzipFile(fileobj=raw) if _is_gzip(path) else raw  # type: ignore[assignment]
        first, chunk, offset = 1, [], 0
        for line in stream:
            chunk.append(line)
            if len(chunk) >= per_unit:
                at = raw.tell()
                yield Lines(label, first, chunk, at - offset, resource_type)
                first, chunk, offset = first + len(chunk), [], at
        yield Lines(label, first, chunk, path.stat().st_size - offset, resource_type)


@dataclass(frozen=True, slots=True)
class Source:
    """A file to import, named as reported (``label``), with the type its lines must have, if any."""

    path: Path
    label: str
    resource_type: str | None = None
    ndjson: bool = False  # read as ndjson whatever its name


def units(sources: list[Source], per_unit: int = LINES_PER_UNIT) -> Iterator[Unit]:
    """The units of work of ``sources``, in order."""
    for s in sources:
        if is_document(s.path) and not s.ndjson:
            yield Document(str(s.path), s.path.stat().st_size)
        else:
            yield from _lines(s.path, s.label, per_unit, s.resource_type)
