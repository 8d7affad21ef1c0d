"""Property: a pandas frame or series pushed as Parquet (the Pandas backends' default) comes back
identical (values, dtypes, categories and their order, index, names, column axis), or the push fails
with a TypeError that names what would differ. Never a quiet change.

hypothesis generates frames across pandas' dtypes, sizes (0, 1, many rows), indexes and column labels.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from include.xcom_backends.codecs import ParquetCodec

FLOATS = st.floats(allow_nan=True, allow_infinity=True, width=64)
TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=5)
CATS = st.lists(TEXT, min_size=1, max_size=4, unique=True) | st.lists(
    st.integers(-5, 5), min_size=1, max_size=4, unique=True
)


def _whole_seconds(value: Any) -> Any:
    return value.replace(microsecond=0)


# Arrow types a pd.ArrowDtype column may have, with a strategy for one value of each (None: null).
ARROW_TYPES: dict[str, tuple[Any, Any]] = {
    "int64": (pa.int64(), st.integers(-(2**62), 2**62)),
    "uint8": (pa.uint8(), st.integers(0, 255)),
    "float32": (pa.float32(), st.floats(width=32)),
    "bool": (pa.bool_(), st.booleans()),
    "string": (pa.string(), TEXT),
    "large_string": (pa.large_string(), TEXT),
    "binary": (pa.binary(), st.binary(max_size=4)),
    "decimal": (pa.decimal128(10, 2), st.decimals(-(10**7), 10**7, places=2, allow_nan=False)),
    "date32": (pa.date32(), st.dates()),
    "date64": (pa.date64(), st.dates()),
    "time32": (pa.time32("s"), st.times().map(_whole_seconds)),
    "time64": (pa.time64("us"), st.times()),
    "timestamp": (pa.timestamp("s"), st.datetimes(min_value=datetime(1970, 1, 1)).map(_whole_seconds)),
    "timestamp_tz": (pa.timestamp("us", tz="Europe/Berlin"), st.datetimes(timezones=st.just(UTC))),
    "duration": (pa.duration("ms"), st.integers(-(10**11), 10**11).map(lambda ms: timedelta(milliseconds=ms))),
    "list": (pa.list_(pa.int64()), st.lists(st.integers(-5, 5) | st.none(), max_size=3)),
    "large_list": (pa.large_list(pa.string()), st.lists(TEXT, max_size=3)),
    "fixed_size_list": (pa.list_(pa.int32(), 2), st.lists(st.integers(-5, 5), min_size=2, max_size=2)),
    "struct": (
        pa.struct([("a", pa.int64()), ("b", pa.string())]),
        st.fixed_dictionaries({"a": st.integers(-5, 5) | st.none(), "b": TEXT | st.none()}),
    ),
    "map": (pa.map_(pa.string(), pa.int64()), st.lists(st.tuples(TEXT, st.integers(-5, 5)), max_size=2)),
    "dictionary": (pa.dictionary(pa.int32(), pa.string()), st.sampled_from(["a", "b", "c"])),
}


@st.composite
def arrow_column(draw: st.DrawFn, n: int) -> Any:
    """One pd.ArrowDtype column of ``n`` values (nulls included) of one of ARROW_TYPES."""
    arrow_type, values = ARROW_TYPES[draw(st.sampled_from(sorted(ARROW_TYPES)))]
    items = draw(st.lists(values | st.none(), min_size=n, max_size=n))
    return pd.arrays.ArrowExtensionArray(pa.chunked_array([pa.array(items, type=arrow_type)]))


# The NumPy-backed and extension dtypes column() draws from; its Arrow-backed ones are in ARROW_TYPES.
COLUMN_KINDS = [
    "int64",
    "float64",
    "bool",
    "object_str",
    "object_mixed",
    "string",
    "Int64",
    "boolean",
    "Float64",
    "datetime",
    "datetime_tz",
    "timedelta",
    "category",
    "category_ordered",
    "complex",
    "int8",
    "uint32",
]


@st.composite
def column(draw: st.DrawFn, n: int) -> Any:
    """One column of ``n`` values of one of pandas' dtypes (NA where the dtype has it), NumPy-backed,
    extension or Arrow-backed."""
    if draw(st.integers(0, 3)) == 0:
        return draw(arrow_column(n))
    kind = draw(st.sampled_from(COLUMN_KINDS))
    if kind in ("int64", "int8", "uint32"):
        info = np.iinfo(kind)
        return np.array(draw(st.lists(st.integers(int(info.min), int(info.max)), min_size=n, max_size=n)), dtype=kind)
    if kind == "float64":
        return np.array(draw(st.lists(FLOATS, min_size=n, max_size=n)), dtype="float64")
    if kind == "complex":
        return np.array([complex(x, 1) for x in draw(st.lists(st.floats(-1, 1), min_size=n, max_size=n))])
    if kind == "bool":
        return np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
    if kind == "object_str":
        return pd.Series(draw(st.lists(TEXT | st.none(), min_size=n, max_size=n)), dtype=object).to_numpy()
    if kind == "object_mixed":
        return pd.Series(draw(st.lists(TEXT | st.integers(-3, 3), min_size=n, max_size=n)), dtype=object).to_numpy()
    if kind in ("string", "Int64", "boolean", "Float64"):
        elements = {
            "string": TEXT,
            "Int64": st.integers(-(2**40), 2**40),
            "boolean": st.booleans(),
            "Float64": st.floats(allow_nan=False),
        }[kind]
        return pd.array(draw(st.lists(elements | st.none(), min_size=n, max_size=n)), dtype=kind)
    if kind in ("datetime", "datetime_tz"):
        seconds = draw(st.lists(st.integers(0, 2_000_000_000) | st.none(), min_size=n, max_size=n))
        values = pd.to_datetime(pd.Series(seconds, dtype="Int64").astype("float64"), unit="s")
        return (
            pd.DatetimeIndex(values).tz_localize("UTC").tz_convert("Europe/Berlin") if kind == "datetime_tz" else values
        )
    if kind == "timedelta":
        return pd.to_timedelta(draw(st.lists(st.integers(-(10**12), 10**12), min_size=n, max_size=n)), unit="us")
    categories = draw(CATS)
    values = draw(st.lists(st.sampled_from(categories) | st.none(), min_size=n, max_size=n))
    return pd.Categorical(values, categories=categories, ordered=kind == "category_ordered")


@st.composite
def index(draw: st.DrawFn, n: int) -> pd.Index:
    kind = draw(
        st.sampled_from(["range", "range_step", "int", "str", "datetime_freq", "datetime", "category", "arrow"])
    )
    name = draw(st.none() | TEXT)
    if kind == "arrow":
        return pd.Index(draw(arrow_column(n)), name=name)
    if kind == "range":
        return pd.RangeIndex(n, name=name)
    if kind == "range_step":
        return pd.RangeIndex(5, 5 + 3 * n, 3, name=name)
    if kind == "int":
        return pd.Index(draw(st.lists(st.integers(-100, 100), min_size=n, max_size=n)), dtype="int64", name=name)
    if kind == "str":
        return pd.Index(draw(st.lists(TEXT, min_size=n, max_size=n)), dtype=object, name=name)
    if kind == "datetime_freq":
        return pd.date_range("2026-03-28", periods=n, freq=draw(st.sampled_from(["D", "h", "15min"])), name=name)
    if kind == "datetime":
        seconds = draw(st.lists(st.integers(0, 10**9), min_size=n, max_size=n))
        return pd.DatetimeIndex(pd.to_datetime(seconds, unit="s"), name=name)
    return pd.CategoricalIndex(draw(st.lists(st.sampled_from(["a", "b", "c"]), min_size=n, max_size=n)), name=name)


@st.composite
def frames(draw: st.DrawFn, plain_axes: bool = False) -> pd.DataFrame:
    n = draw(st.sampled_from([0, 1, 2, 3, 17]))
    width = draw(st.integers(0, 4))
    labels_kind = "str" if plain_axes else draw(st.sampled_from(["str", "int", "range", "duplicates"]))
    if labels_kind == "str":
        labels: Any = draw(st.lists(TEXT, min_size=width, max_size=width, unique=True))
    elif labels_kind == "int":
        labels = draw(st.lists(st.integers(-50, 50), min_size=width, max_size=width, unique=True))
    elif labels_kind == "range":
        labels = pd.RangeIndex(width)
    else:
        labels = ["x"] * width
    columns = {i: draw(column(n)) for i in range(width)}  # drawn before the index, as always
    frame = pd.DataFrame(columns, index=pd.RangeIndex(n) if plain_axes else draw(index(n)))
    frame.columns = labels
    frame.columns.name = draw(st.none() | TEXT)
    return frame


def _check(value: pd.DataFrame | pd.Series) -> None:
    codec = ParquetCodec()
    try:
        encoded = codec.encode(value)
    except TypeError as exc:
        assert str(exc).startswith("This pandas "), exc  # the refusal says what and why
        return
    back = codec.decode(encoded.data, encoded.kind)
    if isinstance(value, pd.Series):
        pd.testing.assert_series_equal(back, value, check_exact=True)
    else:
        pd.testing.assert_frame_equal(back, value, check_exact=True)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frames())
def test_a_frame_comes_back_identical_or_is_refused(frame: pd.DataFrame) -> None:
    _check(frame)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frames(plain_axes=True))
def test_a_frame_that_skips_the_probe_comes_back_identical(frame: pd.DataFrame) -> None:
    """Frames with a RangeIndex and str labels, where most skip the probe (codecs._known_exact)."""
    _check(frame)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 5).flatmap(lambda n: st.tuples(column(n), index(n), st.none() | TEXT)))
def test_a_series_comes_back_identical_or_is_refused(parts: tuple[Any, pd.Index, str | None]) -> None:
    values, idx, name = parts
    _check(pd.Series(values, index=idx, name=name))


@pytest.mark.parametrize(
    ("frame", "named"),
    [
        (pd.DataFrame([[1, 2]], columns=["a", "a"]), "Duplicate column names found: ['a', 'a']"),
        (pd.DataFrame({"z": [1 + 2j]}), "column z with type complex128"),
        (pd.DataFrame({"m": [1, "a"]}), "column m with type object"),
        (pd.DataFrame({"c": pd.Categorical(pd.to_datetime(["2026-01-01"]))}), 'column name="c"'),
    ],
)
def test_refusals_name_the_column_and_the_reason(frame: pd.DataFrame, named: str) -> None:
    with pytest.raises(TypeError, match="cannot be stored exactly") as info:
        ParquetCodec().encode(frame)
    assert named in str(info.value)


@pytest.mark.parametrize(
    "frame",
    [
        pd.DataFrame({"c": pd.Categorical([], categories=["a", "b"])}),
        pd.DataFrame({"c": pd.Categorical(["a", "b"], categories=["b", "a"], ordered=True)}).iloc[:0],
        pd.DataFrame({"c": pd.Categorical([1, 2, 1])}),
        pd.DataFrame(),
        pd.DataFrame({"a": [1, 2]}, index=pd.date_range("2026-03-29", periods=2, freq="h")),
    ],
    ids=["empty-categorical", "sliced-to-zero-rows", "integer-categories", "empty", "index-frequency"],
)
def test_the_edges_seen_in_the_issue_come_back_identical(frame: pd.DataFrame) -> None:
    codec = ParquetCodec()
    encoded = codec.encode(frame)
    pd.testing.assert_frame_equal(codec.decode(encoded.data, encoded.kind), frame, check_exact=True)
