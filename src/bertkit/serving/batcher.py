"""Dynamic micro-batching: items from concurrent requests are merged into one model call.

Each request submits its items (texts, pairs, question/context tuples) and awaits one future per item. A
single worker task takes up to ``max_batch_size`` items, waiting at most ``max_wait_ms`` after the oldest
waiting item arrived for others to join, and runs the batch in an executor thread so the event loop keeps
accepting requests while the model works. Every caller gets exactly the rows of its own items.

If a batch call raises, its items are retried one by one, so one bad item fails only its own request.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any


class QueueFullError(Exception):
    """The queue holds ``max_queue`` items already; the caller should retry later."""


class BatcherClosedError(Exception):
    """The service is shutting down and takes no new work."""


@dataclass
class _Pending:
    item: Any
    future: asyncio.Future
    arrived: float = field(default_factory=time.monotonic)


@dataclass
class _Failed:
    error: BaseException


BatchFn = Callable[[list[Any]], Sequence[Any]]
"""Runs the model on a list of items and returns one result per item, in order (called in a thread)."""


class MicroBatcher:
    """Merge items of concurrent :meth:`submit` calls into batches for ``run_batch``.

    ``on_batch(size, seconds)`` is called after each batch (metrics). ``executor`` runs the batches; pass
    one single-thread executor to several batchers so that only one forward pass runs at a time.
    ``in_flight()``, when given, counts the requests the server is handling for this batcher (submitted or
    not yet): while every one of them has submitted already, nobody is on the way and the batch starts at
    once instead of waiting ``max_wait_ms`` for company (a lone client pays no batching delay).
    """

    def __init__(
        self,
        run_batch: BatchFn,
        *,
        executor: Executor,
        max_batch_size: int = 32,
        max_wait_ms: float = 5.0,
        max_queue: int = 1024,
        on_batch: Callable[[int, float], None] | None = None,
        in_flight: Callable[[], int] | None = None,
    ) -> None:
        self.run_batch = run_batch
        self.executor = executor
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait_ms / 1000
        self.max_queue = max_queue
        self.on_batch = on_batch
        self.in_flight = in_flight
        self.callers = 0  # submit calls not yet answered
        self._queue: deque[_Pending] = deque()
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._closing = False

    @property
    def depth(self) -> int:
        """Items waiting for the model (the batch being computed not included)."""
        return len(self._queue)

    def start(self) -> None:
        """Start the worker task on the running event loop."""
        self._wakeup = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._work(), name="bertkit-batcher")

    async def close(self) -> None:
        """Take no new items, finish every queued one, then stop the worker."""
        self._closing = True
        if self._task is not None:
            self._wakeup.set()
            await self._task
            self._task = None

    async def submit(self, items: Sequence[Any]) -> list[Any]:
        """Queue ``items`` and wait for their results (in order). Raises what ``run_batch`` raised for an
        item, :class:`QueueFullError` when there is no room, :class:`BatcherClosedError` after close."""
        if self._closing or self._task is None:
            raise BatcherClosedError("the server is shutting down")
        if len(self._queue) + len(items) > self.max_queue:
            raise QueueFullError(f"{len(self._queue)} texts are already waiting (--max-queue {self.max_queue})")
        loop = asyncio.get_running_loop()
        pending = [_Pending(item, loop.create_future()) for item in items]
        self._queue.extend(pending)
        self.callers += 1
        self._wakeup.set()
        try:
            return list(await asyncio.gather(*(p.future for p in pending)))
        except BaseException:
            # Timed out or disconnected: the worker skips our items that are still queued.
            for p in pending:
                p.future.cancel()
            raise
        finally:
            self.callers -= 1

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._queue:
                if self._closing:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            # Wait for company until the oldest item has waited max_wait (items that queued up while the
            # previous batch ran have waited already and go at once).
            deadline = self._queue[0].arrived + self.max_wait
            while len(self._queue) < self.max_batch_size and not self._closing:
                if self.in_flight is not None and self.in_flight() <= self.callers:
                    break  # every request the server holds is queued: waiting would only add latency
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._wakeup.clear()
                try:
                    await asyncio.wait_for(self._wakeup.wait(), remaining)
                except TimeoutError:
                    break
            batch: list[_Pending] = []
            while self._queue and len(batch) < self.max_batch_size:
                pending = self._queue.popleft()
                if not pending.future.done():  # cancelled callers are not computed
                    batch.append(pending)
            if batch:
                await self._run(loop, batch)

    async def _run(self, loop: asyncio.AbstractEventLoop, batch: list[_Pending]) -> None:
        started = time.perf_counter()
        try:
            results = await loop.run_in_executor(self.executor, _run_isolated, self.run_batch, [p.item for p in batch])
        except BaseException as exc:  # the executor itself failed (e.g. shut down): fail this batch only
            results = [_Failed(exc)] * len(batch)
        if self.on_batch is not None:
            self.on_batch(len(batch), time.perf_counter() - started)
        for pending, result in zip(batch, results, strict=True):
            if pending.future.done():
                continue
            if isinstance(result, _Failed):
                pending.future.set_exception(result.error)
            else:
                pending.future.set_result(result)


def _run_isolated(run_batch: BatchFn, items: list[Any]) -> list[Any]:
    """``run_batch(items)``; if it fails, each item alone, so an error belongs to the item that caused it."""
    try:
        results = list(run_batch(items))
        if len(results) != len(items):
            raise RuntimeError(f"the model returned {len(results)} results for {len(items)} items")
        return results
    except Exception as exc:
        if len(items) == 1:
            return [_Failed(exc)]
    out: list[Any] = []
    for item in items:
        try:
            out.append(list(run_batch([item]))[0])
        except Exception as exc:
            out.append(_Failed(exc))
    return out
