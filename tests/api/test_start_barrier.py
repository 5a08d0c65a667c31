"""app/api/workers/start_barrier.py in-process: the workers start accepting together."""

from __future__ import annotations

import asyncio
import os
import time

from app.api.workers.start_barrier import ENV, barrier, wait_for_peers


def test_workers_wait_for_each_other() -> None:
    with barrier(2) as directory:
        assert os.environ[ENV] == f"2:{directory}"

        async def run() -> float:
            waiting = asyncio.create_task(wait_for_peers(timeout=30))
            await asyncio.sleep(0.3)
            assert not waiting.done()  # one worker of two has arrived
            (directory / "4242").touch()  # the other worker, by its pid
            start = time.monotonic()
            await waiting
            return time.monotonic() - start

        assert asyncio.run(run()) < 5
    assert ENV not in os.environ
    assert not directory.exists()


def test_a_late_peer_is_not_waited_for_forever() -> None:
    with barrier(3):
        start = time.monotonic()
        asyncio.run(wait_for_peers(timeout=0.3))
        assert 0.3 <= time.monotonic() - start < 5
