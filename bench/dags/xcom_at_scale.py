"""The at-scale benchmark's DAG: N mapped tasks each push a ~1 MB DataFrame; one task reads them all."""

from __future__ import annotations

import os

import pandas as pd
from airflow.sdk import dag, task
from pendulum import datetime

TASKS = int(os.environ.get("XCOM_BENCH_TASKS", "500"))
ROWS = 20_000  # ~1.1 MB in memory with the benchmark's mixed dtypes


@dag(schedule=None, start_date=datetime(2026, 1, 1), catchup=False, tags=["bench"], max_active_tasks=64)
def xcom_at_scale() -> None:
    @task
    def produce(i: int) -> pd.DataFrame:
        from bench.workloads import orders_frame

        return orders_frame(ROWS, seed=i)

    @task
    def consume(frames: list[pd.DataFrame]) -> int:
        rows = sum(len(f) for f in frames)
        if rows != TASKS * ROWS:
            raise ValueError(f"read {rows} rows, expected {TASKS * ROWS}")
        return rows

    consume(produce.expand(i=list(range(TASKS))))


xcom_at_scale()
