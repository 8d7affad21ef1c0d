"""The values the benchmark moves: mixed-dtype DataFrames of several sizes (pandas, and one polars),
and two JSON values."""

from __future__ import annotations

from typing import Any

FRAME_ROWS = {"frame_10k": 10_000, "frame_100k": 100_000, "frame_1m": 1_000_000, "frame_3m": 3_000_000}
POLARS_ROWS = {"polars_1m": 1_000_000}  # the same orders as a polars DataFrame
# The same orders with Arrow-backed columns (pd.ArrowDtype: what dtype_backend="pyarrow" gives).
ARROW_ROWS = {"frame_1m_arrow": 1_000_000}
JSON_WORKLOADS = ("json_small", "json_1mb")
ALL = (*FRAME_ROWS, *ARROW_ROWS, *POLARS_ROWS, *JSON_WORKLOADS)
ROWS = {**FRAME_ROWS, **ARROW_ROWS, **POLARS_ROWS}


def orders_frame(rows: int, seed: int = 42) -> Any:
    """Random but seeded order rows: int, float, bool, string (with NA), tz-aware datetime, categorical
    and nullable int (with NA), realistic to compress (the tests' every-dtype frame is tests/frames.py)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    words = np.array([f"customer-{i:05d}" for i in range(5000)], dtype=object)
    strings = pd.array(rng.choice(words, rows), dtype="string")
    strings[rng.random(rows) < 0.05] = pd.NA
    nullable = pd.array(rng.integers(0, 1000, rows), dtype="Int64")
    nullable[rng.random(rows) < 0.1] = pd.NA
    start = pd.Timestamp("2024-03-30 12:00", tz="Europe/Berlin")  # spans the DST change
    return pd.DataFrame(
        {
            "id": rng.integers(0, 2**40, rows),
            "amount": rng.normal(100, 25, rows),
            "flag": rng.random(rows) < 0.3,
            "customer": strings,
            "ts": start + pd.to_timedelta(np.sort(rng.integers(0, 86_400 * 30, rows)), unit="s"),
            "status": pd.Categorical(rng.choice(["new", "paid", "shipped", "returned"], rows)),
            "quantity": nullable,
        }
    )


def make(workload: str) -> Any:
    if workload in FRAME_ROWS:
        return orders_frame(FRAME_ROWS[workload])
    if workload in ARROW_ROWS:
        return orders_frame(ARROW_ROWS[workload]).convert_dtypes(dtype_backend="pyarrow")
    if workload in POLARS_ROWS:
        import polars as pl

        return pl.from_pandas(orders_frame(POLARS_ROWS[workload]))
    if workload == "json_small":
        return {"run": "manual__2026-11-21", "rows": 1250, "ok": True, "ratio": 0.75, "tags": ["a", "b"]}
    if workload == "json_1mb":
        return [{"id": i, "name": f"item {i}", "price": round(i * 0.37, 2), "tags": ["x", "y"]} for i in range(15_000)]
    raise ValueError(f"unknown workload {workload!r}; choose from {', '.join(ALL)}")


def same(a: Any, b: Any) -> bool:
    """Whether a value came back identical (DataFrames: values, dtypes, index, exactly)."""
    if type(a).__module__.startswith("polars"):
        return type(b) is type(a) and a.schema == b.schema and bool(a.equals(b))
    import pandas as pd

    if isinstance(a, pd.DataFrame):
        if not isinstance(b, pd.DataFrame):
            return False
        try:
            pd.testing.assert_frame_equal(a, b, check_exact=True)
        except AssertionError:
            return False
        return True
    return type(a) is type(b) and a == b
