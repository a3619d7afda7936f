"""The micro-batcher alone, with a recording fake model: merging, bounds, isolation, queue limit, shutdown."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

pytest.importorskip("fastapi", reason="bertkit serve needs the serve extra")

from bertkit.serving.batcher import BatcherClosedError, MicroBatcher, QueueFullError  # noqa: E402


class FakeModel:
    """Doubles numbers; raises for negative ones (as a model would on an input it cannot take)."""

    def __init__(self, delay: float = 0.0) -> None:
        self.batches: list[list[int]] = []
        self.delay = delay
        self.threads: set[str] = set()

    def __call__(self, items: list[int]) -> list[int]:
        self.batches.append(list(items))
        self.threads.add(threading.current_thread().name)
        time.sleep(self.delay)
        if any(x < 0 for x in items):
            raise ValueError(f"negative input {min(items)}")
        return [2 * x for x in items]


def run(coro):
    return asyncio.run(coro)


async def _with_batcher(model, body, **options):
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="model") as executor:
        batcher = MicroBatcher(model, executor=executor, **options)
        batcher.start()
        try:
            return await body(batcher)
        finally:
            await batcher.close()


def test_concurrent_requests_are_merged_and_each_caller_gets_its_own_rows():
    model = FakeModel(delay=0.01)

    async def body(batcher):
        requests = [[10 * r + i for i in range(r % 3 + 1)] for r in range(20)]
        answers = await asyncio.gather(*(batcher.submit(items) for items in requests))
        return requests, answers

    requests, answers = run(_with_batcher(model, body, max_batch_size=8, max_wait_ms=20))
    assert answers == [[2 * x for x in items] for items in requests]
    assert max(len(b) for b in model.batches) == 8  # bounded...
    assert len(model.batches) < 10  # ...and merged (40 items, one-by-one would be 40 calls)
    assert sorted(x for b in model.batches for x in b) == sorted(x for r in requests for x in r)
    assert model.threads and all(name.startswith("model") for name in model.threads)  # off the event loop


def test_a_lone_item_waits_at_most_max_wait():
    model = FakeModel()

    async def body(batcher):
        started = time.perf_counter()
        answer = await batcher.submit([3])
        return answer, time.perf_counter() - started

    answer, seconds = run(_with_batcher(model, body, max_batch_size=8, max_wait_ms=50))
    assert answer == [6]
    assert 0.04 <= seconds < 1.0


def test_no_wait_when_every_request_in_flight_is_queued():
    model = FakeModel()
    in_flight = {"n": 1}

    async def body(batcher):
        started = time.perf_counter()
        alone = await batcher.submit([3])  # the only request the server holds: no point waiting
        alone_seconds = time.perf_counter() - started
        in_flight["n"] = 2  # a second request is on its way (its body still being read)
        first = asyncio.ensure_future(batcher.submit([4]))
        await asyncio.sleep(0.05)
        assert not first.done()  # waiting for it
        second = await batcher.submit([5])
        return alone, alone_seconds, await first, second

    alone, seconds, first, second = run(
        _with_batcher(model, body, max_batch_size=8, max_wait_ms=2000, in_flight=lambda: in_flight["n"])
    )
    assert (alone, first, second) == ([6], [8], [10])
    assert seconds < 1.0  # not the 2 s window
    assert model.batches == [[3], [4, 5]]


def test_a_bad_item_fails_only_its_own_request():
    model = FakeModel()

    async def body(batcher):
        return await asyncio.gather(
            batcher.submit([1, 2]), batcher.submit([-5]), batcher.submit([3]), return_exceptions=True
        )

    good_a, bad, good_b = run(_with_batcher(model, body, max_batch_size=8, max_wait_ms=30))
    assert good_a == [2, 4] and good_b == [6]
    assert isinstance(bad, ValueError) and "negative input -5" in str(bad)
    assert model.batches[0] == [1, 2, -5, 3]  # they shared a batch, then were retried one by one


def test_a_full_queue_refuses_new_work():
    model = FakeModel()

    async def body(batcher):
        first = asyncio.ensure_future(batcher.submit([1, 2, 3]))
        await asyncio.sleep(0)  # let it queue (the worker waits up to max_wait for more)
        with pytest.raises(QueueFullError, match=r"3 texts are already waiting \(--max-queue 4\)"):
            await batcher.submit([4, 5])
        return await first

    assert run(_with_batcher(model, body, max_batch_size=8, max_wait_ms=200, max_queue=4)) == [2, 4, 6]


def test_cancelled_callers_are_not_computed():
    model = FakeModel()

    async def body(batcher):
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(batcher.submit([7]), 0.01)
        return await batcher.submit([8])

    assert run(_with_batcher(model, body, max_batch_size=8, max_wait_ms=100)) == [16]
    assert [7] not in model.batches and all(7 not in b for b in model.batches)


def test_close_finishes_queued_work_then_refuses():
    model = FakeModel(delay=0.05)

    async def body():
        with ThreadPoolExecutor(max_workers=1) as executor:
            batcher = MicroBatcher(model, executor=executor, max_batch_size=2, max_wait_ms=1)
            batcher.start()
            pending = [asyncio.ensure_future(batcher.submit([i])) for i in range(5)]
            await asyncio.sleep(0)
            await batcher.close()
            assert sorted(x for b in model.batches for x in b) == [0, 1, 2, 3, 4]  # all computed before it returned
            with pytest.raises(BatcherClosedError, match="shutting down"):
                await batcher.submit([9])
            return await asyncio.gather(*pending)

    assert run(body()) == [[0], [2], [4], [6], [8]]
