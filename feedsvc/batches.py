"""Work over many items in forked worker processes, with the main process taking a share."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from multiprocessing import get_context
from typing import Generic, TypeVar

from feedsvc.config import Settings

T = TypeVar("T")
R = TypeVar("R")


class Batches(Generic[T, R]):
    """``func`` over ``items``, in worker processes when there are many.

    Work starts at construction; the main process is free until it asks for results.
    With ``main_share`` it also takes that fraction of the items itself (on 2 cores one
    worker plus the main process beats two workers and an idle main process: those
    results never cross a process boundary, and the main process can digest the
    workers' results while they still come in).
    """

    def __init__(
        self,
        func: Callable[[Settings, Sequence[T]], list[R]],
        settings: Settings,
        items: Sequence[T],
        *,
        workers: int,
        threshold: int,
        main_share: float = 0.0,
    ) -> None:
        self.func = func
        self.settings = settings
        self.pool: ProcessPoolExecutor | None = None
        self.futures: list[Future[list[R]]] = []
        self.local: Sequence[T] = items
        processes = workers - 1 if main_share else workers
        if len(items) < threshold or processes < 1:
            return
        pooled = len(items) - int(len(items) * main_share)
        self.local = items[pooled:]
        # fork: the workers start in milliseconds with everything already imported.
        self.pool = ProcessPoolExecutor(max_workers=processes, mp_context=get_context("fork"))
        self.futures = [
            self.pool.submit(func, settings, items[start:end])
            for start, end in chunk_bounds(pooled, processes)
        ]

    def chunks(self) -> Iterator[list[R]]:
        """Results a chunk at a time: the main process's share first, then the workers'."""
        try:
            if self.local:
                yield self.func(self.settings, self.local)
            for future in self.futures:
                yield future.result()
        finally:
            if self.pool is not None:
                self.pool.shutdown(cancel_futures=True)

    def collect(self) -> list[R]:
        return [result for chunk in self.chunks() for result in chunk]


def chunk_bounds(count: int, processes: int) -> list[tuple[int, int]]:
    """Where to cut ``count`` items into chunks for ``processes`` workers: big chunks first,
    then smaller and smaller ones ("guided" scheduling). The workers finish together, and
    the last chunk, which the main process digests after they are done, is small."""
    floor = max(1, count // (processes * 16))
    bounds = []
    start = 0
    while start < count:
        size = max(floor, -(-(count - start) // (processes * 2)))
        bounds.append((start, min(start + size, count)))
        start += size
    return bounds


def default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, 8))
