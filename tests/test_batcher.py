"""The micro-batcher: gathering, order, bounds, errors and cancellation, on a real event loop and thread."""

from __future__ import annotations

import asyncio
import threading
from contextlib import ExitStack

import pytest

from serving.batcher import MicroBatcher

HOUR = 3600.0  # a window no test may wait out


class Recorder:
    """A process function that records its batches and can hold the scoring thread until released."""

    def __init__(self, hold: bool = False):
        self.batches: list[list[int]] = []
        self.threads: list[threading.Thread] = []
        self.release = threading.Event()
        self.started = threading.Event()
        if not hold:
            self.release.set()

    def __call__(self, items: list[int]) -> list[int]:
        self.started.set()
        self.release.wait(timeout=30)
        self.batches.append(list(items))
        self.threads.append(threading.current_thread())
        return [item * 10 for item in items]


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, timeout=30))


async def request(batcher: MicroBatcher, items: list[int]) -> list[int]:
    """What serving.invocations does: a request counts as in flight for as long as it is answered."""
    with batcher.in_flight():
        return await batcher.run(items)


async def busy_batcher(recorder: Recorder) -> tuple[MicroBatcher, asyncio.Future]:
    """A batcher whose scoring thread is held by `recorder` on a request for [1, 0] (that request's future; two
    items, so that it goes to the thread though it is alone)."""
    batcher = MicroBatcher(recorder, max_batch=64, max_wait=HOUR)
    busy = asyncio.ensure_future(request(batcher, [1, 0]))
    await asyncio.to_thread(recorder.started.wait, 30)
    return batcher, busy


def others_in_flight(batcher: MicroBatcher, count: int) -> ExitStack:
    """`count` requests in flight (reading their bodies, answered inline, or about to send work)."""
    stack = ExitStack()
    for _ in range(count):
        stack.enter_context(batcher.in_flight())
    return stack


def test_concurrent_requests_are_scored_together_each_getting_its_own_results():
    recorder = Recorder()
    requests = 6

    async def scenario():
        batcher = MicroBatcher(recorder, max_batch=64, max_wait=HOUR)
        with others_in_flight(batcher, requests):  # six requests have arrived; then each sends its work
            results = await asyncio.gather(*(batcher.run([n, n + 100]) for n in range(requests)))
        batcher.close()
        return results

    results = run(scenario())
    assert results == [[n * 10, (n + 100) * 10] for n in range(requests)]
    assert len(recorder.batches) == 1 and len(recorder.batches[0]) == 2 * requests


def test_a_lone_request_does_not_wait_for_company():
    recorder = Recorder()

    async def scenario():
        batcher = MicroBatcher(recorder, max_batch=64, max_wait=HOUR)
        result = await request(batcher, [7, 8])
        batcher.close()
        return result

    assert run(scenario()) == [70, 80]
    assert recorder.threads[0] is not threading.main_thread()


def test_a_lone_query_is_scored_on_the_calling_thread_and_its_fault_reaches_its_caller():
    recorder = Recorder()

    def broken(items: list[int]) -> list[int]:
        raise RuntimeError("scoring exploded")

    async def scenario():
        batcher = MicroBatcher(recorder, max_batch=64, max_wait=HOUR)
        result = await request(batcher, [7])
        failing = MicroBatcher(broken, max_batch=64, max_wait=HOUR)
        with pytest.raises(RuntimeError, match="scoring exploded"):
            await request(failing, [1])
        batcher.close()
        failing.close()
        return result

    assert run(scenario()) == [70]
    assert recorder.threads == [threading.main_thread()]


def test_after_a_batch_of_several_queries_the_next_lone_query_keeps_to_the_thread_and_the_one_after_does_not():
    recorder = Recorder()

    async def scenario():
        batcher = MicroBatcher(recorder, max_batch=64, max_wait=HOUR)
        results = [await request(batcher, items) for items in ([1, 2], [3], [4])]
        batcher.close()
        return results

    assert run(scenario()) == [[10, 20], [30], [40]]
    main = threading.main_thread()
    assert [thread is main for thread in recorder.threads] == [False, False, True]


def test_lone_queries_that_arrive_in_the_same_turn_of_the_loop_are_batched_on_the_scoring_thread():
    recorder = Recorder()

    async def scenario():
        batcher = MicroBatcher(recorder, max_batch=64, max_wait=HOUR)
        results = await asyncio.gather(*(request(batcher, [n]) for n in range(3)))
        batcher.close()
        return results

    assert run(scenario()) == [[0], [10], [20]]
    assert len(recorder.batches) == 1 and sorted(recorder.batches[0]) == [0, 1, 2]
    assert recorder.threads[0] is not threading.main_thread()


def test_a_lone_query_waits_for_a_busy_thread_so_that_two_scorings_never_overlap():
    recorder = Recorder(hold=True)

    async def scenario():
        batcher = MicroBatcher(recorder, max_batch=64, max_wait=HOUR)
        abandoned = asyncio.ensure_future(batcher.run([1, 0]))  # its caller no longer counts as in flight
        await asyncio.to_thread(recorder.started.wait, 30)
        lone = asyncio.ensure_future(request(batcher, [5]))
        await asyncio.sleep(0.05)
        recorder.release.set()
        results = await asyncio.gather(abandoned, lone)
        batcher.close()
        return results

    assert run(scenario()) == [[10, 0], [50]]
    assert recorder.batches == [[1, 0], [5]]
    assert all(thread is not threading.main_thread() for thread in recorder.threads)


def test_a_request_waits_at_most_the_window_when_others_are_in_flight_but_do_not_join():
    recorder = Recorder()

    async def scenario():
        batcher = MicroBatcher(recorder, max_batch=64, max_wait=0.01)
        with others_in_flight(batcher, 4):
            result = await request(batcher, [1, 2])
        batcher.close()
        return result

    assert run(scenario()) == [10, 20]


def test_no_batch_exceeds_max_batch():
    recorder = Recorder()

    async def scenario():
        batcher = MicroBatcher(recorder, max_batch=4, max_wait=HOUR)
        result = await request(batcher, list(range(10)))
        batcher.close()
        return result

    assert run(scenario()) == [n * 10 for n in range(10)]
    assert [len(batch) for batch in recorder.batches] == [4, 4, 2]


def test_work_arriving_while_the_thread_is_busy_forms_the_next_batch():
    recorder = Recorder(hold=True)

    async def scenario():
        batcher, first = await busy_batcher(recorder)
        later = [asyncio.ensure_future(request(batcher, [n])) for n in (2, 3, 4)]
        await asyncio.sleep(0)
        recorder.release.set()
        results = await asyncio.gather(first, *later)
        batcher.close()
        return results

    assert run(scenario()) == [[10, 0], [20], [30], [40]]
    assert recorder.batches == [[1, 0], [2, 3, 4]]


def test_a_request_that_gave_up_is_never_scored():
    recorder = Recorder(hold=True)

    async def scenario():
        batcher, busy = await busy_batcher(recorder)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(request(batcher, [666, 667]), timeout=0.05)  # times out while the thread is busy
        recorder.release.set()
        await busy
        after = await request(batcher, [2])
        batcher.close()
        return after

    assert run(scenario()) == [20]
    assert recorder.batches == [[1, 0], [2]]


def test_a_request_past_its_timeout_gets_timeout_error_and_its_items_are_never_scored():
    recorder = Recorder(hold=True)

    async def scenario():
        batcher, busy = await busy_batcher(recorder)
        with batcher.in_flight(), pytest.raises(TimeoutError):
            await batcher.run([666, 667], timeout=0.05)  # expires while the thread is busy
        with batcher.in_flight(), pytest.raises(TimeoutError):
            await batcher.run([668], timeout=0.05)
        recorder.release.set()
        await busy
        after = await asyncio.gather(request(batcher, [2]), batcher.run([3], timeout=HOUR))
        batcher.close()
        return after

    assert run(scenario()) == [[20], [30]]
    assert recorder.batches[0] == [1, 0] and sorted(item for batch in recorder.batches[1:] for item in batch) == [2, 3]


def test_a_failing_batch_fails_each_of_its_requests():
    def broken(items: list[int]) -> list[int]:
        raise RuntimeError("scoring exploded")

    async def scenario():
        batcher = MicroBatcher(broken, max_batch=64, max_wait=HOUR)
        outcomes = await asyncio.gather(request(batcher, [1]), request(batcher, [2]), return_exceptions=True)
        batcher.close()
        return outcomes

    outcomes = run(scenario())
    assert all(isinstance(outcome, RuntimeError) and str(outcome) == "scoring exploded" for outcome in outcomes)
