"""The large-value benchmark's DAG (``python -m bench.large``): a task pushes one very large value (a
bytes value or a DataFrame of ``XCOM_LARGE_MB`` MB), its downstream task pulls it and checks it.

The frame is the benchmark's order frame (``bench/workloads.py``), as in ``make bench``. Each task
measures itself and logs one line ``XCOM_LARGE {json}``: seconds, the value's size, and the
peak resident memory above what the process held before the push (or pull), sampled every 5 ms,
after a first push (pull) of a tiny value of the same kind, as ``make bench`` measures memory.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from airflow.sdk import dag, task
from pendulum import datetime

MB = int(os.environ.get("XCOM_LARGE_MB", "300"))
KINDS = os.environ.get("XCOM_LARGE_KINDS", "bytes,frame").split(",")
PAGE = os.sysconf("SC_PAGE_SIZE")


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def measured(work: Callable[[], Any]) -> tuple[Any, float, int]:
    """``work()``, its seconds, and the peak resident memory above the level before it."""
    base, peak, done = rss(), [0], threading.Event()

    def sample() -> None:
        while not done.wait(0.005):
            peak[0] = max(peak[0], rss())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t0 = time.perf_counter()
    try:
        result = work()
    finally:
        seconds = time.perf_counter() - t0
        done.set()
        sampler.join()
    return result, seconds, max(peak[0], rss()) - base


def make(kind: str) -> Any:
    """``MB`` MB of random bytes, or the benchmark's order frame (int, float, bool, string with NA,
    tz-aware datetime, categorical, nullable int: 1M rows are 54 MiB in memory) of about ``MB`` MB."""
    n = MB * 1024 * 1024
    if kind == "bytes":
        return os.urandom(n)
    from bench.workloads import orders_frame

    return orders_frame(int(n / 56.4))


def digest(value: Any) -> str:
    if isinstance(value, bytes):
        return hashlib.sha256(value).hexdigest()
    import pandas as pd

    return hashlib.sha256(pd.util.hash_pandas_object(value, index=True).values.tobytes()).hexdigest()


def size_of(value: Any) -> int:
    return len(value) if isinstance(value, bytes) else int(value.memory_usage(index=True, deep=True).sum())


@dag(schedule=None, start_date=datetime(2026, 1, 1), catchup=False, tags=["bench"], default_args={"retries": 0})
def xcom_large() -> None:
    previous: Any = None  # one value at a time: push_bytes -> pull_bytes -> push_frame -> pull_frame
    for kind in KINDS:

        @task(task_id=f"push_{kind}")
        def push(kind: str = kind, ti: Any = None) -> str:
            value = make(kind)
            # As the benchmark's push-mem: a tiny value first, so imports and the client are not counted.
            ti.xcom_push(key="warmup", value=value[:1000] if kind == "bytes" else value.head(10))
            _, seconds, extra = measured(lambda: ti.xcom_push(key="value", value=value))
            line = {
                "task": "push",
                "kind": kind,
                "mb": MB,
                "value_bytes": size_of(value),
                "seconds": seconds,
                "peak_extra_bytes": extra,
            }
            print("XCOM_LARGE " + json.dumps(line), flush=True)
            return digest(value)

        @task(task_id=f"pull_{kind}")
        def pull(expected: str, kind: str = kind, ti: Any = None) -> None:
            ti.xcom_pull(task_ids=f"push_{kind}", key="warmup")
            value, seconds, extra = measured(lambda: ti.xcom_pull(task_ids=f"push_{kind}", key="value"))
            same = digest(value) == expected
            line = {
                "task": "pull",
                "kind": kind,
                "mb": MB,
                "value_bytes": size_of(value),
                "seconds": seconds,
                "peak_extra_bytes": extra,
                "identical": same,
            }
            print("XCOM_LARGE " + json.dumps(line), flush=True)
            if not same:
                raise ValueError(f"the {kind} value pulled differs from the one pushed")

        pushed = push()
        pulled = pull(pushed)
        if previous is not None:
            previous >> pushed
        previous = pulled


xcom_large()
