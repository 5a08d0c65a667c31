"""Building the scale benchmark's database once: the real Synthea R4 patient Bundles
(``/work/shared/synthea-r4``, 193 patients, 62,676 resources) and copies of them with fresh ids,
posted as transaction Bundles through the server's API at some concurrency.

Copy 0 is the files as they are; copy ``k`` rewrites every UUID of a file (resource ids, the
``urn:uuid:`` of fullUrls and references, identifiers that carry one) to
``uuid5(NAMESPACE, "k:<old uuid>")``: the same old UUID maps to the same new one within a copy,
so each copy is a self-consistent new set of patients, and the build is deterministic.

Progress is recorded in ``<data-dir>/scale-progress.txt`` (one ``copy file`` line per committed
Bundle), so an interrupted build resumes where it stopped and a grown build (more copies) adds
only the new Bundles. A transaction Bundle is all-or-nothing, so a Bundle that failed or was cut
off is simply posted again.
"""

from __future__ import annotations

import asyncio
import gzip
import re
import time
import uuid
from array import array
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import orjson

from bench.rawhttp import RawConnection

SYNTHEA = Path("/work/shared/synthea-r4")
NAMESPACE = uuid.UUID("6f1c9a52-8a1e-4d2e-9b8e-5b2c1f0e7a31")
_UUID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
UUID_LENGTH = 36
PROGRESS = "scale-progress.txt"


def synthea_files(source: Path = SYNTHEA) -> list[Path]:
    return sorted(source.glob("*.json.gz"))


class Layout(NamedTuple):
    """Where a file's UUIDs lie (their start offsets) and how many entries its Bundle has: found
    once per file, so the client's cost per posted copy is a decompression and a join (scanning
    4 KB per resource for UUIDs with ``re`` cost the client 0.1 ms per resource, a fifth of what
    the server spends, on the same two cores)."""

    starts: array
    entries: int


_layouts: dict[str, Layout] = {}


def layout(name: str, raw: bytes) -> Layout:
    found = _layouts.get(name)
    if found is None:
        starts = array("L", (m.start() for m in _UUID.finditer(raw)))
        found = _layouts[name] = Layout(starts, len(orjson.loads(raw)["entry"]))
    return found


def copy_bytes(raw: bytes, copy: int, starts: Sequence[int] | None = None) -> bytes:
    """The Bundle of one copy: every UUID replaced consistently (copy 0 unchanged); ``starts``:
    the UUIDs' offsets when known (:func:`layout`)."""
    if copy == 0:
        return raw
    if starts is None:
        starts = [m.start() for m in _UUID.finditer(raw)]
    olds = [raw[i : i + UUID_LENGTH] for i in starts]
    mapping = {old: str(uuid.uuid5(NAMESPACE, f"{copy}:{old.decode()}")).encode() for old in set(olds)}
    parts, end = [], 0
    for i, old in zip(starts, olds, strict=True):
        parts += (raw[end:i], mapping[old])
        end = i + UUID_LENGTH
    parts.append(raw[end:])
    return b"".join(parts)


def done_units(data_dir: Path) -> set[tuple[int, str]]:
    path = data_dir / PROGRESS
    if not path.exists():
        return set()
    out = set()
    for line in path.read_text().splitlines():
        copy, _, name = line.partition(" ")
        if name:
            out.add((int(copy), name))
    return out


async def build(base: str, data_dir: Path, copies: int, concurrency: int) -> tuple[int, float]:
    """Post every (copy, file) Bundle not yet recorded, ``concurrency`` at a time; returns the
    number of resources posted and the seconds it took."""
    files = synthea_files()
    done = done_units(data_dir)
    units = [(c, f) for c in range(copies) for f in files if (c, f.name) not in done]
    print(f"{len(done)} Bundles already loaded; {len(units)} to post ({copies} copies of {len(files)})", flush=True)
    log = (data_dir / PROGRESS).open("a")
    headers = {"Content-Type": "application/fhir+json"}
    queue = iter(units)
    posted = resources = 0
    start = time.perf_counter()

    async def worker() -> None:
        nonlocal posted, resources
        conn = RawConnection(base)
        try:
            for copy, path in queue:
                raw = gzip.decompress(path.read_bytes())
                known = layout(path.name, raw)
                body = copy_bytes(raw, copy, known.starts)
                for attempt in range(5):
                    try:
                        status, _, answer = await conn.request("POST", "", body, headers)
                    except (ConnectionError, asyncio.IncompleteReadError) as exc:  # a transaction is all or nothing
                        status, answer = 0, repr(exc).encode()
                        await conn.close()
                        conn = RawConnection(base)
                    if status == 200:
                        break
                    print(f"  {path.name} copy {copy}: {status} {answer[:200]!r} (attempt {attempt + 1})", flush=True)
                    await asyncio.sleep(2)
                else:
                    raise RuntimeError(f"{path.name} copy {copy} failed")
                log.write(f"{copy} {path.name}\n")
                log.flush()
                posted += 1
                resources += known.entries
                if posted % 50 == 0:
                    rate = resources / (time.perf_counter() - start)
                    print(f"  {posted}/{len(units)} Bundles, {resources} resources, {rate:.0f} resources/s", flush=True)
        finally:
            await conn.close()

    await asyncio.gather(*[worker() for _ in range(concurrency)])
    log.close()
    seconds = time.perf_counter() - start
    print(f"posted {posted} Bundles, {resources} resources in {seconds:.0f} s ({resources / max(seconds, 1e-9):.0f}/s)")
    return resources, seconds


RECORD = "scale-build.json"
"""Each build step's figures, kept in the data directory (``bench/scale.py targets`` reports them;
a directory copied from a smaller build keeps the smaller build's steps)."""


def recorded_steps(data_dir: Path) -> list[dict]:
    """The build steps recorded in the data directory, oldest first."""
    path = data_dir / RECORD
    return orjson.loads(path.read_bytes()) if path.exists() else []


def record_step(data_dir: Path, step: dict) -> None:
    """Append a build step's figures to the data directory's record."""
    steps = [*recorded_steps(data_dir), step]
    (data_dir / RECORD).write_bytes(orjson.dumps(steps, option=orjson.OPT_INDENT_2))
