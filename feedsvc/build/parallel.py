"""Work over many items in forked worker processes, with the main process taking a share."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:  # the pool's machinery is imported when a pool is made (worker_pool)
    from concurrent.futures import ProcessPoolExecutor

T = TypeVar("T")
R = TypeVar("R")
C = TypeVar("C")  # what every call gets besides its items: settings, parse options


class Batches(Generic[C, T, R]):
    """``func(context, some_items)`` over ``items``, in worker processes when there are many.

    Work starts at construction; the main process is free until it asks for results.
    With ``main_share`` it also takes that fraction of the items itself (on 2 cores one
    worker plus the main process beats two workers and an idle main process: those
    results never cross a process boundary, and the main process can digest the
    workers' results while they still come in).
    """

    def __init__(
        self,
        func: Callable[[C, Sequence[T]], list[R]],
        context: C,
        items: Sequence[T],
        *,
        workers: int,
        threshold: int,
        main_share: float = 0.0,
        pool: ProcessPoolExecutor | None = None,
    ) -> None:
        """``pool``: worker processes to use (the caller's to shut down), else new ones."""
        self.func = func
        self.context = context
        self.pool: ProcessPoolExecutor | None = None
        self.own_pool = pool is None
        self.futures: list[Future[list[R]]] = []
        self.work: dict[Future[list[R]], Sequence[T]] = {}  # each chunk's items
        self.local: Sequence[T] = items
        processes = workers - 1 if main_share else workers
        if len(items) < threshold or processes < 1:
            return
        pooled = len(items) - int(len(items) * main_share)
        self.local = items[pooled:]
        self.pool = pool or worker_pool(processes)
        # Cut as if the main process were one more worker: it may take chunks (chunks_ready).
        for start, end in chunk_bounds(pooled, processes + 1):
            self.add(items[start:end])

    @classmethod
    def fed(
        cls, func: Callable[[C, Sequence[T]], list[R]], context: C, processes: int
    ) -> Batches[C, T, R]:
        """Worker processes started now, with no work yet: chunks come with :meth:`add`
        (a caller that is still finding its items)."""
        batches = cls(func, context, (), workers=processes, threshold=1)
        batches.pool = worker_pool(processes)
        return batches

    def add(self, items: Sequence[T]) -> None:
        """One more chunk for the workers."""
        assert self.pool is not None
        future = self.pool.submit(self.func, self.context, items)
        self.futures.append(future)
        self.work[future] = items

    def stop(self) -> None:
        """Stop the workers; work not started is dropped (a pool given is left running)."""
        if self.pool is not None and self.own_pool:
            self.pool.shutdown(cancel_futures=True)
        for future in self.futures:
            future.cancel()

    def chunks(self) -> Iterator[list[R]]:
        """Results a chunk at a time: the main process's share first, then the workers'."""
        try:
            if self.local:
                yield self.func(self.context, self.local)
            for future in self.futures:
                yield future.result()
        finally:
            self.stop()

    def chunks_ready(self) -> Iterator[list[R]]:
        """Results a chunk at a time, in no particular order: each chunk as soon as it is
        done, and whenever none is, the main process does the next chunk no worker has
        started rather than wait (the chunks get smaller: all finish about together)."""
        try:
            if self.local:
                yield self.func(self.context, self.local)
            waiting = list(self.futures)
            while waiting:
                done = next((f for f in waiting if f.done()), None)
                if done is None:
                    for future in waiting:
                        if future.cancel():  # not sent to a worker yet: the main's now
                            waiting.remove(future)
                            yield self.func(self.context, self.work[future])
                            break
                    else:
                        wait(waiting, return_when=FIRST_COMPLETED)
                    continue
                waiting.remove(done)
                yield done.result()
        finally:
            self.stop()

    def collect(self) -> list[R]:
        """Every result, in the order of the items (the main process's share is the last
        items, done first)."""
        chunks = list(self.chunks())
        if self.local:
            chunks.append(chunks.pop(0))
        return [result for chunk in chunks for result in chunk]


def worker_pool(processes: int) -> ProcessPoolExecutor:
    """Forked worker processes: they start in milliseconds with everything imported."""
    # multiprocessing and the process pool (~5 ms to import) only for a build that parses
    # or renders: a build with nothing to do needs neither.
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    return ProcessPoolExecutor(max_workers=processes, mp_context=get_context("fork"))


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
