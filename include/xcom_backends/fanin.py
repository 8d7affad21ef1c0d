"""Reading every map index of an upstream task at once (``get_all``): the objects of the references are
fetched a few at a time, and the values come back in their order.

The task SDK's ``BaseXCom.get_all`` calls ``deserialize_value`` on each stored value in turn, so a
task reading N offloaded values waits for N object-store round trips one after another.
``read_in_order`` runs the same per-value function (``decode``) for the values that need a fetch in a
bounded thread pool, and everything else in the calling thread, then hands back the results in the
original order:

- at most ``limit`` fetches are in flight, and at most ``limit`` of them are submitted and not yet
  collected: nothing is fetched ahead of that window (the results collected so far are the list
  returned anyway);
- the error raised is the one the sequential loop would have raised (the first in order, the same
  exception object), and no new fetch starts once one has failed;
- every thread has finished when it returns or raises (the pool is shut down, waiting, on the way
  out, and queued work is cancelled).

Each fetch runs in a copy of the caller's ``contextvars`` context, so what the caller set (the row a
pull reads, ``backend._ROW``) holds in the pool threads as it does in the loop.
"""

from __future__ import annotations

import contextvars
import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


def read_in_order(
    values: Sequence[Any], decode: Callable[[Any], T], fetches: Callable[[Any], bool], limit: int
) -> list[T]:
    """``[decode(v) for v in values]``, with the values for which ``fetches(v)`` is true decoded in up to
    ``limit`` threads at a time. ``fetches`` is called in the calling thread, once per value, in order
    (it may prepare what the threads share); ``limit`` 1, or a single value, is exactly the sequential
    loop."""
    if limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    if limit == 1 or len(values) < 2:  # one value (a pull of an unmapped task): no thread to start
        return [decode(value) for value in values]

    results: list[T] = []
    window: deque[tuple[Future[T], bool]] = deque()  # in order: (result, whether it is the pool's)
    in_pool = 0
    failed = threading.Event()

    def on_done(future: Future[T]) -> None:
        if not future.cancelled() and future.exception() is not None:
            failed.set()

    def collect() -> None:
        nonlocal in_pool
        future, pooled = window.popleft()
        in_pool -= pooled
        results.append(future.result())  # the first error in order is raised here

    pool = ThreadPoolExecutor(max_workers=min(limit, len(values)), thread_name_prefix="xcom-read")
    try:
        for value in values:
            if failed.is_set():
                break  # the error is raised below, in order; nothing after it is started
            if fetches(value):
                while in_pool >= limit:
                    collect()
                future = pool.submit(contextvars.copy_context().run, decode, value)
                future.add_done_callback(on_done)
                window.append((future, True))
                in_pool += 1
            elif not window:
                results.append(decode(value))  # nothing pending before it: as the loop does
            else:
                done: Future[T] = Future()
                try:
                    done.set_result(decode(value))
                except Exception as exc:  # raised in order, after what is pending before it
                    done.set_exception(exc)
                    failed.set()
                window.append((done, False))
        while window:
            collect()
        return results
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
