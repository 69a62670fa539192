"""Micro-batching: concurrent requests' scoring work, gathered into one call on the worker's scoring thread.

A batch starts when the scoring thread is free and either `max_batch` items wait, the oldest has waited
`max_wait` seconds, or every request in flight in this worker is already waiting here (nobody else could
join, so waiting would only add latency). While a batch runs, new items gather for the next one, which starts
as soon as the thread is free. Items whose caller has given up (the request timed out or was cancelled) are
dropped before scoring, so a 504 stops costing CPU within one batch.

A lone query skips the thread: when it is the only item of the only request in flight, nothing is scoring (a
model is never scored on two threads at once) or waiting, and the previous scoring was of one query too, it is
scored on the calling (event loop) thread. The hand-off to the scoring thread and back cost such a request
0.5-0.9 ms of its 3.1-4.6 ms (docs/benchmarks.md); blocking the loop for one query's milliseconds costs nobody
anything when nobody else is there. Requests that arrive together get one turn of the loop to count themselves
in first, and traffic that came in batches a moment ago keeps to the thread: at 8 connections, scoring whichever
request happened to arrive first inline held the other seven back (p50 1.07×, p99 1.12×). A lone query's scoring
is not interrupted by its timeout: one query takes milliseconds (12.5 ms for an exact top-k over a million
videos, docs/large-catalogues.md).

The batcher owns the worker's count of requests in flight: each request is counted for as long as it is
answered (`with batcher.in_flight():`), whether or not it ever sends work here.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


class MicroBatcher(Generic[Item, Result]):
    def __init__(self, process: Callable[[list[Item]], Sequence[Result]], max_batch: int, max_wait: float):
        self._process = process
        self._max_batch = max_batch
        self._max_wait = max_wait
        self._in_flight = 0
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="scoring")
        self._pending: deque[tuple[Item, asyncio.Future, float]] = deque()
        self._waiting_requests = 0
        self._busy = False
        self._last_batch = 1  # queries in the latest scoring call
        self._timer: asyncio.TimerHandle | None = None

    @contextmanager
    def in_flight(self) -> Iterator[None]:
        """Count one request in flight in this worker while the block runs."""
        self._in_flight += 1
        try:
            yield
        finally:
            self._in_flight -= 1

    async def run(self, items: Sequence[Item], timeout: float | None = None) -> list[Result]:
        """Results for `items`, in order; raises what `process` raised for their batch, or TimeoutError when they are
        not all scored within `timeout` seconds (one loop timer: asyncio.timeout costs a request ~20 µs more). A lone
        query is scored on the calling thread, where `timeout` cannot stop it."""
        if len(items) == 1 and await self._alone():
            return list(self._process(list(items)))
        loop = asyncio.get_running_loop()
        now = loop.time()
        futures = [loop.create_future() for _ in items]
        self._pending.extend((item, future, now) for item, future in zip(items, futures))
        self._waiting_requests += 1
        timer = None if timeout is None else loop.call_later(timeout, _expire, futures)
        try:
            self._maybe_start(loop)
            if len(futures) == 1:
                return [await futures[0]]
            return list(await asyncio.gather(*futures))
        finally:
            if timer is not None:
                timer.cancel()
            self._waiting_requests -= 1
            for future in futures:
                future.cancel()  # a no-op for finished ones; drops the rest when this request gave up

    async def _alone(self) -> bool:
        """Whether the caller is the only request in flight, nothing is scoring or waiting and the latest scoring was
        of one query, even after one turn of the loop (requests whose bytes arrived with the caller's start count
        themselves in during it)."""
        if self._last_batch > 1 or self._company():
            return False
        await asyncio.sleep(0)
        return not self._company()

    def _company(self) -> bool:
        return self._busy or bool(self._pending) or self._in_flight > 1

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)

    def _maybe_start(self, loop: asyncio.AbstractEventLoop) -> None:
        while self._pending and self._pending[0][1].done():
            self._pending.popleft()
        if self._busy or not self._pending:
            return
        waited = loop.time() - self._pending[0][2]
        if len(self._pending) >= self._max_batch or waited >= self._max_wait or self._everyone_waits():
            self._start(loop)
        elif self._timer is None:
            self._timer = loop.call_later(self._max_wait - waited, self._on_timer, loop)

    def _everyone_waits(self) -> bool:
        return self._waiting_requests >= self._in_flight

    def _on_timer(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        self._maybe_start(loop)

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch: list[tuple[Item, asyncio.Future]] = []
        while self._pending and len(batch) < self._max_batch:
            item, future, _ = self._pending.popleft()
            if not future.done():
                batch.append((item, future))
        if not batch:
            return
        self._busy = True
        self._last_batch = len(batch)
        work = loop.run_in_executor(self._executor, self._process, [item for item, _ in batch])
        work.add_done_callback(lambda done: self._finish(loop, batch, done))

    def _finish(self, loop: asyncio.AbstractEventLoop, batch: list, done: asyncio.Future) -> None:
        self._busy = False
        error = asyncio.CancelledError("scoring was shut down") if done.cancelled() else done.exception()
        results = None if error else done.result()
        for index, (_, future) in enumerate(batch):
            if future.done():
                continue
            if error:
                future.set_exception(error)
            else:
                future.set_result(results[index])
        if self._pending:  # they waited while the thread was busy: start at once
            self._start(loop)


def _expire(futures: list[asyncio.Future]) -> None:
    for future in futures:
        if not future.done():
            future.set_exception(TimeoutError())
