"""Reproduces the event log's shipped zstd dictionary (``app/events/dictionaries/1.zdict``) from the
public Synthea R4 bundles, and measures it on the bundles it was not trained on.

    python bench/log_dictionary.py [--dir ../shared/synthea-r4] [--out app/events/dictionaries/1.zdict]

The samples are the resources as the server stores them (:func:`app.commands.stamp.stamp`: ``id``
and ``meta`` first, an id the server assigned, ``urn:uuid:`` references rewritten to ``Type/id``)
from every other bundle (sorted by name, even indexes); the odd ones are held out to measure the
compressed size and the time per resource. The ids come from a seeded generator and the COVER
parameters are fixed, so a run gives the same dictionary.
"""

from __future__ import annotations

import argparse
import gzip
import random
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import orjson
import zstandard

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from app.commands.stamp import stamp
from app.events.codec import DICTIONARY_ID, LEVEL

SIZE = 64 * 1024
WHEN = datetime(2026, 1, 1, tzinfo=UTC)


def served(bundle: dict, rng: random.Random) -> list[bytes]:
    """The bundle's resources as the server would store them after a transaction."""
    entries = [e for e in bundle.get("entry", []) if "resource" in e]
    ids = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in entries]
    refs = {
        orjson.dumps(e["fullUrl"]): orjson.dumps(f"{e['resource']['resourceType']}/{i}")
        for e, i in zip(entries, ids, strict=True)
        if e.get("fullUrl", "").startswith("urn:uuid:")
    }
    out = []
    for e, i in zip(entries, ids, strict=True):
        data = stamp(e["resource"], i, 1, WHEN)
        for old, new in refs.items():
            data = data.replace(old, new)
        out.append(data)
    return out


def load(files: list[Path], seed: int) -> list[bytes]:
    rng = random.Random(seed)
    return [r for f in files for r in served(orjson.loads(gzip.decompress(f.read_bytes())), rng)]


def measure(dictionary: bytes, held_out: list[bytes]) -> None:
    d = zstandard.ZstdCompressionDict(dictionary)
    c = zstandard.ZstdCompressor(level=LEVEL, dict_data=d, write_dict_id=True, write_checksum=False)
    x = zstandard.ZstdDecompressor(dict_data=d)
    t0 = time.perf_counter()
    frames = [c.compress(r) for r in held_out]
    t1 = time.perf_counter()
    back = [x.decompress(f) for f in frames]
    t2 = time.perf_counter()
    assert back == held_out
    n, raw, packed = len(held_out), sum(map(len, held_out)), sum(map(len, frames))
    print(f"held out: {n} resources, {raw / n:.0f} B -> {packed / n:.0f} B per resource ({raw / packed:.1f}x)")
    print(f"compress {(t1 - t0) / n * 1e6:.1f} us, decompress {(t2 - t1) / n * 1e6:.1f} us per resource")


def main(directory: str, out: str) -> None:
    files = sorted(Path(directory).glob("*.json*"))
    train = load(files[0::2], seed=1)
    print(f"training on {len(train)} resources from {len(files[0::2])} bundles")
    trained = zstandard.train_dictionary(SIZE, train, k=1024, d=8, dict_id=DICTIONARY_ID, level=LEVEL, threads=1)
    data = trained.as_bytes()
    Path(out).write_bytes(data)
    print(f"wrote {out}: {len(data)} bytes, id {trained.dict_id()}")
    measure(data, load(files[1::2], seed=2))


if __name__ == "__main__":
    here = Path(__file__).resolve().parent.parent
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default=str(here.parent.parent / "shared" / "synthea-r4"))
    parser.add_argument("--out", default=str(here / "app" / "events" / "dictionaries" / "1.zdict"))
    a = parser.parse_args()
    main(a.dir, a.out)
