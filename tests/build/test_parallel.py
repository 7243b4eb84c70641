"""Batches: work split over forked worker processes and the main process, results complete."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from itertools import pairwise

import pytest

from feedsvc.build.parallel import Batches, chunk_bounds
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


@pytest.mark.parametrize(("count", "processes"), [(1, 1), (5, 2), (286, 2), (10_000, 2), (999, 8)])
def test_chunks_cover_every_item_once_and_shrink(count: int, processes: int) -> None:
    bounds = chunk_bounds(count, processes)
    assert bounds[0][0] == 0 and bounds[-1][1] == count
    assert all(end == start for (_, end), (start, _) in pairwise(bounds))
    sizes = [end - start for start, end in bounds]
    assert all(size > 0 for size in sizes)
    assert sizes == sorted(sizes, reverse=True)  # the last chunks are the small ones
    if count >= 1000:
        assert sizes[-1] <= count // (processes * 16)


def slow_in_workers(settings: Settings, items: Sequence[int]) -> list[tuple[int, int]]:
    """Squares; a worker process takes its time, the main process none."""
    if os.getpid() != MAIN_PID:
        time.sleep(0.05)
    return [(os.getpid(), i * i) for i in items]


MAIN_PID = os.getpid()


def test_chunks_ready_has_every_result_once_and_the_main_process_takes_idle_work() -> None:
    items = list(range(300))
    batches = Batches(slow_in_workers, SETTINGS, items, workers=1, threshold=10)
    results = [result for chunk in batches.chunks_ready() for result in chunk]
    assert sorted(square for _, square in results) == [i * i for i in items]
    pids = {pid for pid, _ in results}
    assert os.getpid() in pids  # chunks no worker had started were done here
    assert len(pids) == 2  # and the worker did its part


def test_collect_keeps_the_order_of_the_items_whoever_did_them() -> None:
    items = list(range(200))
    for share in (0.0, 0.3, 0.5):
        batches = Batches(
            pid_and_square, SETTINGS, items, workers=2, threshold=10, main_share=share
        )
        assert [square for _, square in batches.collect()] == [i * i for i in items]
