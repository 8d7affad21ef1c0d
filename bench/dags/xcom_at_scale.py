"""The at-scale benchmark's DAG: N mapped tasks each push a value; one task reads them all.

``XCOM_BENCH_KIND=frames`` (default): a ~1 MB DataFrame per task. ``XCOM_BENCH_KIND=json``: a small
JSON dict per task, so that what a task process pays before its first byte moves is all there is.
"""

from __future__ import annotations

import os
from typing import Any

from airflow.sdk import dag, task
from pendulum import datetime

TASKS = int(os.environ.get("XCOM_BENCH_TASKS", "500"))
KIND = os.environ.get("XCOM_BENCH_KIND", "frames")
ROWS = 20_000  # ~1.1 MB in memory with the benchmark's mixed dtypes


@dag(schedule=None, start_date=datetime(2026, 1, 1), catchup=False, tags=["bench"], max_active_tasks=64)
def xcom_at_scale() -> None:
    @task
    def produce(i: int) -> Any:
        if KIND == "json":
            return {"task": i, "status": "ok", "rows": ROWS, "tags": ["a", "b", "c"], "score": i / 7}
        from bench.workloads import orders_frame

        return orders_frame(ROWS, seed=i)

    @task
    def consume(values: list[Any]) -> int:
        if KIND == "json":
            got = sorted(v["task"] for v in values)
            if got != list(range(TASKS)):
                raise ValueError(f"read {len(got)} values, not the {TASKS} pushed")
            return len(got)
        rows = sum(len(f) for f in values)
        if rows != TASKS * ROWS:
            raise ValueError(f"read {rows} rows, expected {TASKS * ROWS}")
        return rows

    consume(produce.expand(i=list(range(TASKS))))


xcom_at_scale()
