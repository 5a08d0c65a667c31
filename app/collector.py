"""The garbage collector's settings for a serving process, and for the CPU-bound replay and reindex
(the CLI's rebuild and the replay worker processes: a batch of a few thousand resources parsed and
projected is the same pattern, measured there at 58 against 37 us of worker CPU per resource).

CPython collects its youngest generation every 700 net allocations of container objects, and each
collection traverses every young object still alive. A request that parses a large body (a
transaction Bundle of a few hundred resources is some 100,000 dicts and lists, alive until the
answer) triggers hundreds of collections that free nothing: reference counting frees the parsed
JSON, and cycles are rare. Measured on Synthea transaction Bundles, that was about 0.06 ms of CPU per
resource ingested, 16% of the server's Python time; with the youngest generation collected every
10,000 allocations it is under 0.01 ms. Cyclic garbage is still collected, only in larger steps.

The middle generation's threshold matters as much (session 24): every 10 young collections CPython
collected the middle generation, and moved what was alive then (the Bundles still in flight) to the
oldest, counting it towards a full collection, which traverses the whole heap (the FHIR model, the
compiled extractors: about 0.1 s each). Timed by ``gc.callbacks`` in each server worker over
125,352 Synthea resources ingested (``bench/scale.py build --copies 5`` from 188,028): at
(10,000, 10, 10) 1.7 s of collections in about 14.5 s of CPU per worker, six of them full (0.6 s); at
(50,000, 100, 10) 0.45-0.5 s and none full: about 8% of the server's Python CPU. The oldest
generation is still collected after every ten collections of the middle one, once what it gained
since its last collection is a quarter of what it holds (CPython's rule).

``gc.freeze()`` of what start-up built was tried too: it saved nothing measurable here, and with it
a server whose embedded postmaster was killed did not serve writes again within two minutes
(tests/db/test_crash_loop.py; cause not found), so it is not done."""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 50_000
"""Net container allocations between two collections of the youngest generation (CPython's: 700)."""
MIDDLE_THRESHOLD = 100
"""Young collections between two collections of the middle generation (CPython's: 10)."""


def tune_collector() -> None:
    """Collect the young and middle generations less often (the oldest's threshold is kept)."""
    old = gc.get_threshold()[2]
    gc.set_threshold(YOUNG_THRESHOLD, MIDDLE_THRESHOLD, old)
