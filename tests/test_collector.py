"""The serving processes' collector settings (app/collector.py): collections rarer, cyclic garbage
still freed without anyone calling ``gc.collect``."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from app.collector import MIDDLE_THRESHOLD, YOUNG_THRESHOLD, tune_collector


@pytest.fixture
def tuned() -> Iterator[None]:
    before = gc.get_threshold()
    gc.collect()
    tune_collector()
    try:
        yield
    finally:
        gc.set_threshold(*before)


class _Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: reference counting never frees it


def test_collections_are_rarer_and_the_oldest_threshold_is_kept(tuned: None) -> None:
    young, middle, _ = gc.get_threshold()
    assert (young, middle) == (YOUNG_THRESHOLD, MIDDLE_THRESHOLD)
    before = gc.get_stats()[0]["collections"]
    kept = [[] for _ in range(YOUNG_THRESHOLD // 2)]  # half the threshold of live containers
    assert gc.get_stats()[0]["collections"] == before, "a young collection ran before its threshold"
    del kept


def test_cyclic_garbage_is_still_collected_automatically(tuned: None) -> None:
    freed: list[int] = []
    watched = [_Node() for _ in range(100)]
    refs = [weakref.ref(n, lambda _: freed.append(1)) for n in watched]
    del watched
    assert not freed  # cycles: only the collector frees them
    for _ in range(YOUNG_THRESHOLD * MIDDLE_THRESHOLD // 1000 + 10):  # garbage cycles, no gc.collect()
        [_Node() for _ in range(1000)]
        if len(freed) == len(refs):
            break
    assert len(freed) == len(refs), "cyclic garbage was not collected without gc.collect()"
