"""The DataFrame the tests push: every dtype the Pandas backends promise to bring back identical."""

from __future__ import annotations

from typing import Any


def mixed_frame(n: int) -> Any:
    """``n`` rows of int64, float (NaN, 1e300, negative), bool, string (NA, unicode, empty), tz-aware
    datetime across the DST change, categorical and nullable Int64 (NA), with a named index and a
    named column axis. The first five rows hold the edge values; the rest are regular."""
    import numpy as np
    import pandas as pd

    i = np.arange(n)
    floats = np.linspace(0, 1, n)
    edges = [1.5, np.nan, 2.0, -3.25, 1e300][:n]
    floats[: len(edges)] = edges
    words = ["a", "ü", None, "日本", ""]
    df = pd.DataFrame(
        {
            "int": i.astype("int64"),
            "float": floats,
            "bool": i % 2 == 0,
            "string": pd.array([words[k] if k < 5 else (f"s{k}" if k % 7 else None) for k in range(n)], dtype="string"),
            "ts": pd.date_range("2024-03-31 01:57", periods=n, freq="min", tz="Europe/Berlin"),
            "cat": pd.Categorical(np.array(["x", "y", "z"])[i % 3]),
            "nullable": pd.array([k if k % 5 else None for k in range(n)], dtype="Int64"),
        },
        index=pd.Index(i * 10, name="row_id"),
    )
    df.columns.name = "fields"
    return df
