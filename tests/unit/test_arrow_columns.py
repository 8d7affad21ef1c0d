"""pandas frames with Arrow-backed columns (``pd.ArrowDtype``, what ``dtype_backend="pyarrow"`` gives)
come back with the same dtypes and values, or are refused before anything is written, naming the
column (the property test in test_frames_property.py generates such columns too)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from include.xcom_backends.codecs import ParquetCodec
from localdev.inprocess import Result
from tests.unit.memory import MemJSON, MemoryStore, MemPandas, push

D = dt.datetime(2026, 3, 29, 1, 30)
# Every family of Arrow types Parquet holds, with three values (the last one null).
ARROW: dict[str, tuple[pa.DataType, list[Any]]] = {
    "list": (pa.list_(pa.int64()), [[1, 2], [], None]),
    "large_list": (pa.large_list(pa.string()), [["a"], ["b", None], None]),
    "fixed_size_list": (pa.list_(pa.float64(), 2), [[1.0, 2.0], [3.0, None], None]),
    "struct": (pa.struct([("a", pa.int64()), ("b", pa.string())]), [{"a": 1, "b": "x"}, {"a": None, "b": "y"}, None]),
    "map": (pa.map_(pa.string(), pa.int64()), [[("k", 1)], [], None]),
    "dictionary": (pa.dictionary(pa.int32(), pa.string()), ["x", "y", None]),
    "dictionary_int8": (pa.dictionary(pa.int8(), pa.string()), ["x", "x", None]),
    "decimal128": (pa.decimal128(10, 2), [Decimal("1.10"), Decimal("-2.00"), None]),
    "decimal256": (pa.decimal256(40, 5), [Decimal("1.10000"), Decimal("3"), None]),
    "string": (pa.string(), ["a", "é", None]),
    "large_string": (pa.large_string(), ["a", "b", None]),
    "binary": (pa.binary(), [b"\x00", b"ab", None]),
    "large_binary": (pa.large_binary(), [b"\x00", b"", None]),
    "date32": (pa.date32(), [dt.date(2026, 1, 1), dt.date(1900, 2, 3), None]),
    "date64": (pa.date64(), [dt.date(2026, 1, 1), dt.date(1970, 1, 1), None]),
    "time32": (pa.time32("s"), [dt.time(1, 2, 3), dt.time(0), None]),
    "time64": (pa.time64("ns"), [dt.time(1, 2, 3, 4), dt.time(0), None]),
    "timestamp_s": (pa.timestamp("s"), [D, D, None]),
    "timestamp_us": (pa.timestamp("us"), [D, D.replace(microsecond=7), None]),
    "timestamp_tz": (
        pa.timestamp("ns", tz="Europe/Berlin"),
        [D.replace(tzinfo=dt.UTC), D.replace(tzinfo=dt.UTC), None],
    ),
    "duration_s": (pa.duration("s"), [dt.timedelta(days=1), dt.timedelta(0), None]),
    "duration_us": (pa.duration("us"), [dt.timedelta(microseconds=-5), dt.timedelta(0), None]),
    "int64": (pa.int64(), [1, -(2**62), None]),
    "uint64": (pa.uint64(), [0, 2**64 - 1, None]),
    "float16": (pa.float16(), [1.5, -0.0, None]),
    "bool": (pa.bool_(), [True, False, None]),
    "null": (pa.null(), [None, None, None]),
}


def arrow(name: str) -> pd.api.extensions.ExtensionArray:
    arrow_type, values = ARROW[name]
    return pd.arrays.ArrowExtensionArray(pa.chunked_array([pa.array(values, type=arrow_type)]))


def roundtrip(value: Any) -> Any:
    codec = ParquetCodec()
    encoded = codec.encode(value)
    return codec.decode(encoded.data, encoded.kind)


@pytest.mark.parametrize("name", sorted(ARROW))
def test_every_arrow_type_comes_back_exact_in_frames_series_and_indexes(name: str) -> None:
    frame = pd.DataFrame({"c": arrow(name), "n": [1, 2, 3]})
    back = roundtrip(frame)
    pd.testing.assert_frame_equal(back, frame, check_exact=True)
    assert str(back.dtypes["c"]) == str(frame.dtypes["c"])  # the same type, list field names included
    series = pd.Series(arrow(name), name="s")
    pd.testing.assert_series_equal(roundtrip(series), series, check_exact=True)
    indexed = pd.DataFrame({"n": [1, 2, 3]}, index=pd.Index(arrow(name), name="i"))
    pd.testing.assert_frame_equal(roundtrip(indexed), indexed, check_exact=True)
    try:  # pandas factorizes MultiIndex levels, which it cannot for nested types, nulls in dictionaries...
        levels = pd.MultiIndex.from_arrays([arrow(name), [1, 2, 3]], names=["a", "b"])
    except (pa.ArrowException, NotImplementedError, TypeError):
        return
    multi = pd.DataFrame({"n": [1, 2, 3]}, index=levels)
    pd.testing.assert_frame_equal(roundtrip(multi), multi, check_exact=True)


def test_arrow_and_numpy_columns_of_the_same_arrow_type_in_one_frame() -> None:
    """A categorical and a dictionary ArrowDtype, an object column of Decimals and a decimal ArrowDtype:
    each comes back as the kind of column it was."""
    frame = pd.DataFrame(
        {
            "cat": pd.Categorical(["x", "y", "x"]),
            "dict": arrow("dictionary"),
            "obj_dec": pd.Series([Decimal("1.10"), Decimal("2.00"), None], dtype=object),
            "dec": arrow("decimal128"),
            "i": [1, 2, 3],
            "i_arrow": arrow("int64"),
            "ts": pd.to_datetime(["2026-01-01", None, "2026-01-02"]).tz_localize("UTC"),
            "ts_arrow": arrow("timestamp_tz"),
        }
    )
    pd.testing.assert_frame_equal(roundtrip(frame), frame, check_exact=True)


def test_a_frame_read_with_the_pyarrow_backend_round_trips() -> None:
    frame = pd.DataFrame({"a": [1, None], "b": ["x", None], "c": [[1], None]})
    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pandas(frame.drop(columns="c")), sink)
    read = pd.read_parquet(pa.BufferReader(sink.getvalue()), dtype_backend="pyarrow")
    assert all(isinstance(dtype, pd.ArrowDtype) for dtype in read.dtypes)
    pd.testing.assert_frame_equal(roundtrip(read), read, check_exact=True)


@pytest.mark.parametrize(
    ("column", "dtype"),
    [
        (ARROW["list"], "list<item: int64>[pyarrow]"),
        (ARROW["struct"], "struct<a: int64, b: string>[pyarrow]"),
        (ARROW["dictionary"], "dictionary<values=string, indices=int32, ordered=0>[pyarrow]"),
        (ARROW["decimal128"], "decimal128(10, 2)[pyarrow]"),
        (ARROW["int64"], "int64[pyarrow]"),
        ((pa.timestamp("us", tz="UTC"), [D, D, None]), "timestamp[us, tz=UTC][pyarrow]"),
    ],
    ids=["list", "struct", "dictionary", "decimal", "int64", "timestamp-tz"],
)
def test_the_reported_columns_through_the_pandas_backend(column: tuple[Any, list[Any]], dtype: str) -> None:
    arrow_type, values = column
    frame = pd.DataFrame({"c": pd.arrays.ArrowExtensionArray(pa.chunked_array([pa.array(values, type=arrow_type)]))})
    assert str(frame.dtypes["c"]) == dtype
    ref = push(MemPandas, frame)
    pd.testing.assert_frame_equal(MemPandas.deserialize_value(Result(ref)), frame, check_exact=True)


UNSTORABLE = {
    "dense_union": pa.UnionArray.from_dense(
        pa.array([0, 0], pa.int8()), pa.array([0, 1], pa.int32()), [pa.array([1, 2])]
    ),
    "month_day_nano_interval": pa.array([pa.MonthDayNano([1, 2, 3]), None], pa.month_day_nano_interval()),
    "run_end_encoded": pa.RunEndEncodedArray.from_arrays(pa.array([2], pa.int32()), pa.array([7])),
}


@pytest.mark.parametrize("name", sorted(UNSTORABLE))
def test_an_arrow_type_parquet_cannot_hold_is_refused_before_anything_is_written(name: str) -> None:
    frame = pd.DataFrame(
        {"ok": arrow("list")[:2], "bad": pd.arrays.ArrowExtensionArray(pa.chunked_array([UNSTORABLE[name]]))}
    )
    with pytest.raises(TypeError) as info:
        push(MemPandas, frame)
    message = str(info.value)
    assert message.startswith("This pandas dataframe cannot be stored exactly")
    assert f"column 'bad' has dtype {frame.dtypes['bad']}" in message and "'ok'" not in message
    assert "Cast such a column" in message
    assert MemoryStore.calls == [] and MemoryStore.objects == {}


def test_objects_written_before_arrow_columns_were_recorded_still_read() -> None:
    """Simple Arrow types were already stored; their objects carry no record of Arrow-backed columns."""
    frame = pd.DataFrame({"i": arrow("int64"), "t": arrow("timestamp_tz"), "n": [1, 2, 3]})
    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pandas(frame), sink)
    back = ParquetCodec().decode(sink.getvalue().to_pybytes(), "dataframe")
    pd.testing.assert_frame_equal(back, frame, check_exact=True)


@pytest.mark.parametrize("backend", [MemPandas, MemJSON])
def test_a_lazyframe_is_refused_with_what_to_do(backend: Any) -> None:
    lazy = pl.LazyFrame({"a": [1, 2]})
    with pytest.raises(TypeError, match=r"LazyFrame is a query, not data.*call \.collect\(\)"):
        push(backend, lazy)
    with pytest.raises(TypeError, match=r"\.collect\(\)"):
        push(backend, {"nested": lazy})
    assert MemoryStore.objects == {}


pytestmark = pytest.mark.usefixtures("mem_backend")
