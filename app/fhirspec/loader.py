"""Loads the official R4 definition bundles from ``spec/fhir/r4`` (gzipped or plain JSON)."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import orjson

from app.settings import get_settings


def spec_path(name: str, spec_dir: Path | None = None) -> Path:
    base = spec_dir or get_settings().spec_dir
    for candidate in (base / f"{name}.gz", base / name):
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"FHIR definition file {name} not found under {base}")


@cache
def load_json(name: str) -> dict:
    """Parse one definition file, e.g. ``profiles-resources.json``; cached for the process."""
    path = spec_path(name)
    raw = gzip.open(path).read() if path.suffix == ".gz" else path.read_bytes()
    return orjson.loads(raw)


def bundle_resources(name: str) -> Iterator[dict]:
    for entry in load_json(name).get("entry", []):
        yield entry["resource"]
