"""Search-value extraction cost: ``rows_of`` (the generated row function of each resource type)
against the reference path it replaced (``reference_rows_of``: ``extract_all``, each type's
``add_rows``, ``text_rows``) and, as the floor, ``orjson.loads`` of the same resources, all in
this process and in the same run.

    python bench/extract.py [--files 8] [--rounds 5]

Resources: every entry of the first ``--files`` bundles of ``../shared/synthea-r4/``. Both paths
must give the same rows for every resource (checked first; the run stops otherwise). The modes
are timed in turn over chunks of ``CHUNK`` resources, each chunk ``--rounds`` times, in CPU time
of this thread (a shared machine preempts a long run more often than a short one: wall-clock
time would favour the faster mode); a chunk counts with its fastest round. Figures: CPU µs per
resource of each mode, and the ratios."""

from __future__ import annotations

import argparse
import gzip
import os
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from app.projections.search_index import reference_rows_of, rows_of
from app.search_types.extraction import extract_all
from app.search_types.text_document import document_rows

SYNTHEA = Path(__file__).resolve().parents[2] / "shared" / "synthea-r4"
if not SYNTHEA.exists():
    SYNTHEA = Path("/work/shared/synthea-r4")
CHUNK = 50


def load(files: int) -> list[dict]:
    out = []
    for path in sorted(SYNTHEA.glob("*.json.gz"))[:files]:
        bundle = orjson.loads(gzip.open(path).read())
        out.extend(e["resource"] for e in bundle.get("entry", []) if isinstance(e.get("resource"), dict))
    return out


def mismatches(resources: list[dict]) -> int:
    return sum(repr(rows_of(r)) != repr(reference_rows_of(r)) for r in resources)


def _timed(work: Callable[[object], object], items: list) -> float:
    start = time.thread_time()
    for item in items:
        work(item)
    return time.thread_time() - start


def measure(resources: list[dict], rounds: int) -> dict[str, float]:
    """Seconds per mode over all resources (each chunk at its fastest round)."""
    bodies = [orjson.dumps(r) for r in resources]
    modes: dict[str, tuple[Callable[[object], object], list]] = {
        "orjson.loads (floor)": (orjson.loads, bodies),
        "rows_of (generated)": (rows_of, resources),
        "rows_of (reference)": (reference_rows_of, resources),
        "  of which extract_all": (extract_all, resources),
        "  _content/_text rows": (document_rows, resources),
    }
    total: dict[str, float] = defaultdict(float)
    for start in range(0, len(resources), CHUNK):
        best: dict[str, float] = {}
        for _ in range(rounds):
            for name, (work, items) in modes.items():
                took = _timed(work, items[start : start + CHUNK])
                best[name] = min(best.get(name, took), took)
        for name, took in best.items():
            total[name] += took
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    resources = load(args.files)
    for r in resources:  # compile every type's function (and the reference extractors) first
        rows_of(r)
        reference_rows_of(r)
    bad = mismatches(resources)
    print(f"{len(resources)} resources of {args.files} bundles; rows differing from the reference: {bad}")
    if bad:
        sys.exit(1)
    total = measure(resources, args.rounds)
    n = len(resources)
    for name, seconds in total.items():
        print(f"{name:26s} {seconds / n * 1e6:8.1f} µs/resource")
    new, old, floor = total["rows_of (generated)"], total["rows_of (reference)"], total["orjson.loads (floor)"]
    print(f"reference / generated: {old / new:.2f}x; generated / orjson.loads: {new / floor:.2f}x")
    print("load average: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
