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

``gc.freeze()`` of what start-up built was tried too: it saved nothing measurable here, and with it
a server whose embedded postmaster was killed did not serve writes again within two minutes
(tests/db/test_crash_loop.py; cause not found), so it is not done."""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000
"""Net container allocations between two collections of the youngest generation (CPython's: 700)."""


def tune_collector() -> None:
    """Collect the young generation less often (the older generations' thresholds are kept)."""
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
