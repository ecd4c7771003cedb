"""A bounded queue of plan runs served by worker threads, one runner (plan instance) per worker.

A Plan is not thread-safe (stitch buffers, HailoRT bindings are reused across runs), so each
worker owns its runner. At most `workers` runs execute and `queue_size` wait; a submit beyond that
raises QueueFull at once, so a burst costs clients a 503 and a retry instead of latency for everyone.
"""

from __future__ import annotations

import math
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Protocol


class Runner(Protocol):
    def run(self, feeds: dict) -> object: ...

    def close(self) -> None: ...


class QueueFull(Exception):
    def __init__(self, depth: int, retry_after_s: int):
        super().__init__(f"server busy: {depth} requests queued or running; retry in {retry_after_s} s")
        self.depth, self.retry_after_s = depth, retry_after_s


_STOP = object()


class BoundedExecutor:
    def __init__(self, runners: list[Runner], queue_size: int):
        if not runners:
            raise ValueError("BoundedExecutor needs at least one runner")
        self.runners = runners
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size + len(runners))
        self._capacity = queue_size + len(runners)
        self._lock = threading.Lock()
        self._depth = 0  # submitted and not finished (queued + running)
        self._mean_seconds = 0.0  # moving average of a run, for Retry-After
        self._threads = [
            threading.Thread(target=self._work, args=(r,), name=f"plan-worker-{i}", daemon=True)
            for i, r in enumerate(runners)
        ]
        for t in self._threads:
            t.start()

    @property
    def depth(self) -> int:
        return self._depth

    def submit(self, feeds: dict, block: bool = False) -> Future:
        """Queue one run; QueueFull if `block` is false and the queue is full."""
        fut: Future = Future()
        with self._lock:
            if not block and self._depth >= self._capacity:
                raise QueueFull(self._depth, self.retry_after())
            self._depth += 1
        try:
            self._queue.put((feeds, fut), block=block)
        except queue.Full:  # cannot happen while depth <= capacity; kept for safety
            with self._lock:
                self._depth -= 1
            raise QueueFull(self._depth, self.retry_after()) from None
        return fut

    def retry_after(self) -> int:
        """Seconds until the queue has drained at the recent rate (HTTP wants whole seconds, >= 1)."""
        return max(1, math.ceil(self._depth * self._mean_seconds / len(self.runners)))

    def _work(self, runner: Runner) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            feeds, fut = item
            if fut.set_running_or_notify_cancel():
                t0 = time.perf_counter()
                try:
                    fut.set_result(runner.run(feeds))
                except BaseException as e:  # noqa: BLE001 - handed to the waiting request
                    fut.set_exception(e)
                self._mean_seconds += 0.1 * (time.perf_counter() - t0 - self._mean_seconds)
            with self._lock:
                self._depth -= 1

    def close(self, timeout: float | None = 30.0) -> None:
        """Finish what is queued, stop the workers, close the runners."""
        for _ in self._threads:
            self._queue.put(_STOP)
        for t in self._threads:
            t.join(timeout)
        for r in self.runners:
            r.close()


def run_all(
    executor: BoundedExecutor,
    make_feeds: Callable[[int], dict],
    count: int,
    concurrency: int,
    on_done: Callable[[float, object], None],
) -> float:
    """Drive `count` runs through `executor` from `concurrency` client threads (blocking submits).

    on_done(latency_seconds, result) is called from the client threads; returns the elapsed seconds.
    """
    counter = iter(range(count))
    lock = threading.Lock()
    errors: list[BaseException] = []

    def client():
        while True:
            with lock:
                i = next(counter, None)
            if i is None or errors:
                return
            t0 = time.perf_counter()
            try:
                result = executor.submit(make_feeds(i), block=True).result()
            except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
                errors.append(e)
                return
            on_done(time.perf_counter() - t0, result)

    threads = [threading.Thread(target=client, name=f"bench-client-{k}") for k in range(concurrency)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return time.perf_counter() - t0
