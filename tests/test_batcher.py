"""The micro-batcher: gathering, order, bounds, errors and cancellation, on a real event loop and thread."""

from __future__ import annotations

import asyncio
import threading

import pytest

from serving.batcher import MicroBatcher

HOUR = 3600.0  # a window no test may wait out


class Recorder:
    """A process function that records its batches and can hold the scoring thread until released."""

    def __init__(self, hold: bool = False):
        self.batches: list[list[int]] = []
        self.release = threading.Event()
        self.started = threading.Event()
        if not hold:
            self.release.set()

    def __call__(self, items: list[int]) -> list[int]:
        self.started.set()
        self.release.wait(timeout=30)
        self.batches.append(list(items))
        return [item * 10 for item in items]


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, timeout=30))


def test_concurrent_requests_are_scored_together_each_getting_its_own_results():
    recorder = Recorder()
    requests = 6

    async def scenario():
        batcher = MicroBatcher(recorder, max_batch=64, max_wait=HOUR, in_flight=lambda: requests)
        results = await asyncio.gather(*(batcher.run([n, n + 100]) for n in range(requests)))
        batcher.close()
        return results

    results = run(scenario())
    assert results == [[n * 10, (n + 100) * 10] for n in range(requests)]
    assert len(recorder.batches) == 1 and len(recorder.batches[0]) == 2 * requests


def test_a_lone_request_does_not_wait_for_company():
    recorder = Recorder()

    async def scenario():
        batcher = MicroBatcher(recorder, max_batch=64, max_wait=HOUR, in_flight=lambda: 1)
        result = await batcher.run([7])
        batcher.close()
        return result

    assert run(scenario()) == [70]


def test_a_request_waits_at_most_the_window_when_others_are_in_flight_but_do_not_join():
    recorder = Recorder()

    async def scenario():
        batcher = MicroBatcher(recorder, max_batch=64, max_wait=0.01, in_flight=lambda: 5)
        result = await batcher.run([1, 2])
        batcher.close()
        return result

    assert run(scenario()) == [10, 20]


def test_no_batch_exceeds_max_batch():
    recorder = Recorder()

    async def scenario():
        batcher = MicroBatcher(recorder, max_batch=4, max_wait=HOUR, in_flight=lambda: 1)
        result = await batcher.run(list(range(10)))
        batcher.close()
        return result

    assert run(scenario()) == [n * 10 for n in range(10)]
    assert [len(batch) for batch in recorder.batches] == [4, 4, 2]


def test_work_arriving_while_the_thread_is_busy_forms_the_next_batch():
    recorder = Recorder(hold=True)

    async def scenario():
        batcher = MicroBatcher(recorder, max_batch=64, max_wait=HOUR, in_flight=lambda: 1)
        first = asyncio.ensure_future(batcher.run([1]))
        await asyncio.to_thread(recorder.started.wait, 30)
        later = [asyncio.ensure_future(batcher.run([n])) for n in (2, 3, 4)]
        await asyncio.sleep(0)
        recorder.release.set()
        results = await asyncio.gather(first, *later)
        batcher.close()
        return results

    assert run(scenario()) == [[10], [20], [30], [40]]
    assert recorder.batches == [[1], [2, 3, 4]]


def test_a_request_that_gave_up_is_never_scored():
    recorder = Recorder(hold=True)

    async def scenario():
        batcher = MicroBatcher(recorder, max_batch=64, max_wait=HOUR, in_flight=lambda: 1)
        busy = asyncio.ensure_future(batcher.run([1]))
        await asyncio.to_thread(recorder.started.wait, 30)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(batcher.run([666, 667]), timeout=0.05)  # times out while the thread is busy
        recorder.release.set()
        await busy
        after = await batcher.run([2])
        batcher.close()
        return after

    assert run(scenario()) == [20]
    assert recorder.batches == [[1], [2]]


def test_a_failing_batch_fails_each_of_its_requests():
    def broken(items: list[int]) -> list[int]:
        raise RuntimeError("scoring exploded")

    async def scenario():
        batcher = MicroBatcher(broken, max_batch=64, max_wait=HOUR, in_flight=lambda: 2)
        outcomes = await asyncio.gather(batcher.run([1]), batcher.run([2]), return_exceptions=True)
        batcher.close()
        return outcomes

    outcomes = run(scenario())
    assert all(isinstance(outcome, RuntimeError) and str(outcome) == "scoring exploded" for outcome in outcomes)
