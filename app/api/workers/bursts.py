"""The workers of ``fhirledger serve --workers N`` share the bursts of connections a client opens at
once (:func:`share_burst`); connections opened one by one are kept even by
:mod:`app.api.workers.accept_balance`."""

from __future__ import annotations

import os
import time

from app.api.workers.start_barrier import ENV

BURST_GAP = 0.005  # seconds between two accepts that make them one burst of connections
YIELD = 0.002  # how long a worker holds back after accepting a connection of a burst
PAUSES = 10  # at most this many pauses per second (20 ms): clients that never keep a connection alive
# open one per request, and must not be slowed by more than 2 %


class _Bursts:
    """When this worker last accepted, and how often it paused in the current second."""

    last = 0.0
    window = 0.0
    paused = 0


def share_burst(open_connections: int, now: float | None = None) -> bool:
    """Called as a worker accepts a connection. When it accepted another one just before (a client
    opening several at once) and holds others, it pauses for :data:`YIELD` s (blocking its loop,
    so it accepts nothing meanwhile), so that the other workers, woken for the same connections,
    accept the rest of the burst: else the first worker awake takes them all in one go (four
    connections opened together went 4:0 to one worker of two, which kept them for the whole
    ingest). At most :data:`PAUSES` pauses per second. Whether it paused."""
    if not os.environ.get(ENV):
        return False  # one worker: nothing to share with
    now = time.monotonic() if now is None else now
    burst, _Bursts.last = now - _Bursts.last < BURST_GAP, now
    if now - _Bursts.window >= 1.0:
        _Bursts.window, _Bursts.paused = now, 0
    if not burst or open_connections < 2 or _Bursts.paused >= PAUSES:
        return False
    _Bursts.paused += 1
    time.sleep(YIELD)
    return True
