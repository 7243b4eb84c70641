"""Batches: work split over forked worker processes and the main process, results complete."""

from __future__ import annotations

import os
from collections.abc import Sequence

from feedsvc.batches import Batches
from feedsvc.config import Settings, settings_from_mapping

SETTINGS = settings_from_mapping({})


def pid_and_square(settings: Settings, items: Sequence[int]) -> list[tuple[int, int]]:
    return [(os.getpid(), i * i) for i in items]


def test_few_items_run_in_the_main_process() -> None:
    results = Batches(pid_and_square, SETTINGS, [1, 2, 3], workers=2, threshold=10).collect()
    assert results == [(os.getpid(), 1), (os.getpid(), 4), (os.getpid(), 9)]


def test_many_items_use_workers_and_lose_nothing() -> None:
    items = list(range(100))
    results = Batches(pid_and_square, SETTINGS, items, workers=2, threshold=10).collect()
    assert [square for _, square in results] == [i * i for i in items]
    assert os.getpid() not in {pid for pid, _ in results}


def test_main_share_is_done_in_the_main_process_first() -> None:
    items = list(range(100))
    batches = Batches(pid_and_square, SETTINGS, items, workers=2, threshold=10, main_share=0.25)
    chunks = list(batches.chunks())
    assert {pid for pid, _ in chunks[0]} == {os.getpid()}
    assert len(chunks[0]) == 25
    assert sorted(square for chunk in chunks for _, square in chunk) == [i * i for i in items]
