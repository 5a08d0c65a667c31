"""app/api/workers/bursts.py in-process: the sharing of connection bursts."""

from __future__ import annotations

import pytest

from app.api.workers import bursts
from app.api.workers.bursts import PAUSES, _Bursts, share_burst
from app.api.workers.start_barrier import ENV


@pytest.fixture
def fresh_bursts() -> None:
    _Bursts.last = _Bursts.window = 0.0
    _Bursts.paused = 0


def test_a_burst_pauses_within_a_budget(monkeypatch: pytest.MonkeyPatch, fresh_bursts: None) -> None:
    monkeypatch.setenv(ENV, "2:/nonexistent")
    monkeypatch.setattr(bursts.time, "sleep", lambda s: None)
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
