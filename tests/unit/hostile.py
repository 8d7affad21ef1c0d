"""Small values that expand hugely when read: what a user allowed to push XComs could store to make
every viewer's preview page huge. Each builder returns codec-shaped bytes (Parquet, CSV, .npy)."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

LONG = 10_000_000  # characters of the one long string


def _parquet(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    # store_schema=False: the reader sees plain string columns, though they were written from dictionaries
    pq.write_table(table, sink, compression="zstd", store_schema=False)
    return sink.getvalue()


def long_cells(rows: int = 20, length: int = LONG) -> bytes:
    """``rows`` rows of one string column, each the same ``length``-character string: kept once in
    the column's dictionary page, a few hundred bytes with zstd, ``rows × length`` bytes once read."""
    column = pa.DictionaryArray.from_arrays(pa.array([0] * rows, pa.int32()), pa.array(["x" * length]))
    return _parquet(pa.table({"s": column, "n": pa.array(range(rows))}))


def many_columns(n: int = 2000) -> bytes:
    return _parquet(pa.table({f"c{i}": pa.array([i, i + 1]) for i in range(n)}))


def long_names(n: int = 3, length: int = 100_000) -> bytes:
    return _parquet(pa.table({"n" * length + str(i): pa.array([i]) for i in range(n)}))


def long_list(items: int = 100_000) -> bytes:
    """One row holding a list of ``items`` copies of a 100-character string (a dictionary again)."""
    values = pa.DictionaryArray.from_arrays(pa.array([0] * items, pa.int32()), pa.array(["y" * 100]))
    lists = pa.ListArray.from_arrays(pa.array([0, items], pa.int32()), values)
    return _parquet(pa.table({"l": lists}))


PARQUET: dict[str, Callable[[], bytes]] = {
    "long_cells": long_cells,
    "many_columns": many_columns,
    "long_names": long_names,
    "long_list": long_list,
}


def wide_csv(columns: int = 5000, cell: int = 20_000) -> bytes:
    """A CSV whose header has ``columns`` columns and whose first row holds a ``cell``-character cell."""
    header = ",".join(f"c{i}" for i in range(columns))
    return f",{header}\n0,{'z' * cell}{',1' * (columns - 1)}\n".encode()


def long_strings_npy(length: int = 10_000, count: int = 50) -> bytes:
    sink = io.BytesIO()
    np.save(sink, np.array(["q" * length] * count))
    return sink.getvalue()


_POOLS: list[Any] = []  # a proxy pool must outlive every buffer allocated from it


@contextmanager
def arrow_peak() -> Iterator[Callable[[], int]]:
    """The peak bytes Arrow allocates (from the default pool) inside the block, as a callable."""
    parent = pa.default_memory_pool()
    pool = pa.proxy_memory_pool(parent)
    _POOLS.append(pool)
    pa.set_memory_pool(pool)
    try:
        yield pool.max_memory
    finally:
        pa.set_memory_pool(parent)
