from __future__ import annotations

import io
import json
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest

from include.xcom_backends.codecs import CSVCodec, JSONCodec, ParquetCodec, codec_for_format
from tests.frames import mixed_frame


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        0,
        -17,
        2**62,
        3.14159,
        "",
        "héllo wörld ✓ 日本",
        [],
        {},
        [1, "two", 3.0, None, False, {"nested": [[], {}]}],
        {"a": {"b": {"c": [1, 2, {"d": None}]}}, "ünï": "cödé"},
    ],
)
def test_json_roundtrip(value: Any) -> None:
    codec = JSONCodec()
    encoded = codec.encode(value)
    assert json.loads(bytes(encoded.data)) == value  # a plain JSON file any reader opens
    assert codec.decode(encoded.data, encoded.kind) == value


@pytest.mark.parametrize(
    ("value", "named"),
    [(object(), "builtins.object"), ([1, {"x": lambda: 1}], r"value\[1\]\['x'\] of type .*function")],
)
def test_json_refuses_what_it_cannot_hold(value: Any, named: str) -> None:
    with pytest.raises(TypeError, match=named):
        JSONCodec().encode(value)


@pytest.mark.parametrize("compression", ["snappy", "zstd", "gzip", "none"])
def test_parquet_roundtrip_keeps_every_dtype_and_index(compression: str) -> None:
    df = mixed_frame(5)
    codec = ParquetCodec(compression)
    encoded = codec.encode(df)
    assert encoded.extension == "parquet"
    # A plain Parquet file: pyarrow opens it without our code.
    assert pq.read_table(io.BytesIO(encoded.data)).num_rows == 5
    pd.testing.assert_frame_equal(codec.decode(encoded.data, encoded.kind), df, check_exact=True)


@pytest.mark.parametrize(
    "series",
    [
        pd.Series([1, 2, 3]),
        pd.Series([1.5, None], name="x", index=pd.Index(["a", "b"], name="k")),
        pd.Series(pd.Categorical(["a", "b"]), name="c"),
    ],
)
def test_parquet_roundtrip_series(series: pd.Series) -> None:
    codec = ParquetCodec()
    encoded = codec.encode(series)
    assert encoded.kind == "series"
    pd.testing.assert_series_equal(codec.decode(encoded.data, encoded.kind), series)


def test_csv_is_the_tutorials_format_and_loses_dtypes() -> None:
    df = pd.DataFrame({"pokemon": ["pikachu", "vulpix"], "xp": [112, 60]})
    codec = CSVCodec()
    encoded = codec.encode(df)
    assert bytes(encoded.data).decode().splitlines()[0] == ",pokemon,xp"
    back = codec.decode(encoded.data, encoded.kind)
    assert back["xp"].tolist() == [112, 60]
    # What CSV loses (documented in docs/value-types.md): e.g. the categorical dtype.
    cat = pd.DataFrame({"c": pd.Categorical(["a"])})
    assert str(codec.decode(codec.encode(cat).data, "dataframe")["c"].dtype) != "category"


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="pickle"):
        codec_for_format("pickle")


def test_csv_push_logs_the_columns_that_will_not_come_back_with_their_dtype(caplog: pytest.LogCaptureFixture) -> None:
    df = pd.DataFrame({"n": [1], "c": pd.Categorical(["a"]), "t": pd.to_datetime(["2026-01-01"]).tz_localize("UTC")})
    with caplog.at_level("WARNING", logger="include.xcom_backends.codecs"):
        CSVCodec().encode(df)
    assert "c (category), t (datetime64[" in caplog.text and "n (" not in caplog.text
