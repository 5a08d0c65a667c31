"""app/api/worker_balance.py in-process: the start barrier and the sharing of connection bursts."""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from app.api import worker_balance
from app.api.worker_balance import ENV, PAUSES, _Bursts, barrier, share_burst, wait_for_peers


@pytest.fixture
def fresh_bursts() -> None:
    _Bursts.last = _Bursts.window = 0.0
    _Bursts.paused = 0


def test_a_burst_pauses_within_a_budget(monkeypatch: pytest.MonkeyPatch, fresh_bursts: None) -> None:
    monkeypatch.setenv(ENV, "2:/nonexistent")
    monkeypatch.setattr(worker_balance.time, "sleep", lambda s: None)
    assert share_burst(3, now=100.0) is False  # the first accept is no burst
    assert share_burst(1, now=100.001) is False  # no other connection held: nothing to share
    paused = [share_burst(3, now=100.002 + i * 0.001) for i in range(30)]
    assert paused[0] is True
    assert sum(paused) == PAUSES  # then the second's budget is spent
    assert share_burst(3, now=100.2) is False  # 0.2 s later: no burst
    assert share_burst(3, now=101.1) is False
    assert share_burst(3, now=101.101) is True  # a burst in a new second: a new budget


def test_one_worker_never_pauses(monkeypatch: pytest.MonkeyPatch, fresh_bursts: None) -> None:
    monkeypatch.delenv(ENV, raising=False)
    assert not any(share_burst(5, now=200.0 + i * 0.0001) for i in range(5))


def test_workers_wait_for_each_other() -> None:
    with barrier(2) as directory:
        assert os.environ[ENV] == f"2:{directory}"

        async def run() -> float:
            waiting = asyncio.create_task(wait_for_peers(timeout=30))
            await asyncio.sleep(0.3)
            assert not waiting.done()  # one worker of two has arrived
            (directory / "other-worker").touch()
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
