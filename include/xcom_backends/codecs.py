"""Codecs: how a value becomes bytes and back. No pickle: only formats we write are read."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import pandas as pd

_UNNAMED_SERIES = "__xcom_storage_unnamed_series__"


@dataclass(frozen=True)
class Encoded:
    data: bytes | memoryview  # a memoryview is the encoder's own buffer, handed on without a copy
    format: str
    kind: str = "value"

    @property
    def extension(self) -> str:
        """The object name's extension: the format's name."""
        return self.format


class Codec(Protocol):
    format: str

    def encode(self, value: Any) -> Encoded: ...

    def decode(self, data: bytes | memoryview, kind: str) -> Any: ...


def _check_json(value: Any, path: str = "value") -> None:
    """Reject what JSON would silently change (tuples, non-str keys, NaN) or cannot hold."""
    if value is None or isinstance(value, (str, bool, int)):
        return
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise TypeError(
                f"XCom {path} is the float {value!r}, which JSON cannot hold. Use None, or push a "
                "pandas DataFrame/Series through a Pandas XCom backend."
            )
        return
    if isinstance(value, list):
        for i, item in enumerate(value):
            _check_json(item, f"{path}[{i}]")
        return
    if isinstance(value, dict):
        for k, item in value.items():
            if not isinstance(k, str):
                raise TypeError(
                    f"XCom {path} has a key of type {type(k).__name__} ({k!r}); JSON object keys "
                    "must be str. Convert the keys to str before returning the value."
                )
            _check_json(item, f"{path}[{k!r}]")
        return
    hint = (
        " Use a Pandas XCom backend (e.g. include.xcom_backends.S3PandasXComBackend) for DataFrames and Series."
        if type(value).__module__.startswith("pandas")
        else " Supported: dict (str keys), list, str, int, float, bool and None."
    )
    raise TypeError(
        f"XCom {path} of type {type(value).__module__}.{type(value).__qualname__} cannot be stored as JSON "
        f"(tuples and sets are refused too, because they would come back as lists).{hint}"
    )


class JSONCodec:
    format = "json"

    def encode(self, value: Any) -> Encoded:
        # Strict but fast: what comes back from the JSON text must equal what went in (tuples, non-str
        # keys and NaN fail this); only then is the value walked, to name what JSON cannot hold.
        try:
            data = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
            exact = json.loads(data) == value
        except (TypeError, ValueError):
            exact = False
        if not exact:
            _check_json(value)
            raise TypeError(f"XCom value {value!r:.200} would not come back equal from JSON.")
        return Encoded(data.encode("utf-8"), self.format)

    def decode(self, data: bytes | memoryview, kind: str) -> Any:
        return json.loads(data if isinstance(data, bytes) else bytes(data))


def _as_frame(value: pd.DataFrame | pd.Series) -> tuple[pd.DataFrame, str]:
    import pandas as pd

    if isinstance(value, pd.Series):
        return value.to_frame(_UNNAMED_SERIES if value.name is None else value.name), "series"
    return value, "dataframe"


def _restore(frame: pd.DataFrame, kind: str) -> pd.DataFrame | pd.Series:
    if kind != "series":
        return frame
    series = frame.iloc[:, 0]
    if series.name == _UNNAMED_SERIES:
        series.name = None
    return series


class ParquetCodec:
    """DataFrames and Series as Parquet via pyarrow; pandas metadata restores dtypes and index."""

    format = "parquet"

    def __init__(self, compression: str = "snappy") -> None:
        self.compression = compression

    def encode(self, value: Any) -> Encoded:
        import pyarrow as pa
        import pyarrow.parquet as pq

        frame, kind = _as_frame(value)
        table = pa.Table.from_pandas(frame, preserve_index=None)
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, compression=self.compression)
        return Encoded(memoryview(sink.getvalue()), self.format, kind)

    def decode(self, data: bytes | memoryview, kind: str) -> Any:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pq.read_table(pa.BufferReader(data))
        return _restore(table.to_pandas(), kind)


class CSVCodec:
    """The tutorial's CSV: readable anywhere, but loses dtypes (see README)."""

    format = "csv"

    def encode(self, value: Any) -> Encoded:
        frame, kind = _as_frame(value)
        return Encoded(frame.to_csv().encode("utf-8"), self.format, kind)

    def decode(self, data: bytes | memoryview, kind: str) -> Any:
        import pandas as pd

        return _restore(pd.read_csv(io.BytesIO(data), index_col=0), kind)


def codec_for_format(fmt: str) -> Codec:
    """The decoder for a format recorded in a reference; unknown formats are refused."""
    if fmt == "json":
        return JSONCodec()
    if fmt == "parquet":
        return ParquetCodec()  # decoding reads the compression from the file
    if fmt == "csv":
        return CSVCodec()
    raise ValueError(f"Unknown XCom storage format {fmt!r}: this backend only reads json, parquet and csv")


def is_pandas_value(value: Any) -> bool:
    module = type(value).__module__
    if not module.startswith("pandas"):
        return False
    import pandas as pd

    return isinstance(value, (pd.DataFrame, pd.Series))
