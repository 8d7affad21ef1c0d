"""Codecs: how a value becomes bytes and back. No pickle: only formats we write are read."""

from __future__ import annotations

import base64
import io
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)
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


class JSONCodec:
    """JSON, typed where it must be (see typedjson): plain JSON values are written as they are, every
    other value serde carries in serde's envelope. ``refuse(value, path)`` may raise ``TypeError`` for
    values the backend keeps in another format."""

    format = "json"

    def __init__(self, refuse: Callable[[Any, str], None] | None = None) -> None:
        self.refuse = refuse

    def encode(self, value: Any) -> Encoded:
        from include.xcom_backends.typedjson import is_plain, to_tree

        if is_plain(value):
            return Encoded(_dumps(value), self.format)
        return Encoded(_dumps(to_tree(value, refuse=self.refuse)), self.format, "typed")

    def decode(self, data: bytes | memoryview, kind: str) -> Any:
        tree = json.loads(data if isinstance(data, bytes) else bytes(data))
        if kind != "typed":
            return tree
        from include.xcom_backends.typedjson import from_tree

        return from_tree(tree)


def _dumps(tree: Any) -> bytes:
    return json.dumps(tree, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8")


# --- tabular and binary values (the Pandas backends) ------------------------------------------
def binary_kind(value: Any) -> str | None:
    """The kind of a value the Pandas backends keep in a format of its own (None: JSON). Decided from
    the value's type alone: nothing is imported for a value that does not have such a type."""
    kind = type(value)
    if kind is bytes or kind is bytearray:
        return kind.__name__
    module = kind.__module__.partition(".")[0]
    if module == "pandas":
        import pandas as pd

        return {pd.DataFrame: "dataframe", pd.Series: "series"}.get(kind)
    if module == "polars":
        import polars as pl

        return {pl.DataFrame: "polars.dataframe", pl.Series: "polars.series", pl.LazyFrame: "polars.lazyframe"}.get(
            kind
        )
    if module == "pyarrow":
        import pyarrow as pa

        return {pa.Table: "arrow.table", pa.RecordBatch: "arrow.recordbatch"}.get(kind)
    if module == "numpy":
        import numpy as np

        return "ndarray" if kind is np.ndarray else None
    return None


LAZY_FRAME = (
    "A polars LazyFrame is a query, not data, so it was not pushed: call .collect() on it and push the "
    "DataFrame it returns (where the query runs, and how much memory it takes, stays your choice)."
)


def _refused(kind: str, reason: str) -> TypeError:
    return TypeError(f"This {kind} cannot be stored exactly, so it was not pushed: {reason}")


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


def _polars_frame(value: Any) -> Any:
    return value.to_frame() if type(value).__name__ == "Series" else value


_PANDAS_EXTRA = b"xcom_storage.pandas"  # what pyarrow's pandas metadata does not bring back


def _pandas_extra(frame: pd.DataFrame, table: Any) -> dict[str, Any]:
    """Categorical columns (their categories and order), the index's frequency, a RangeIndex of
    column labels, and the exact Arrow types of Arrow-backed columns and index levels (``arrow``):
    pandas' Parquet metadata loses these (for empty frames, integer categories, nested Arrow types...)."""
    import pandas as pd

    from include.xcom_backends.typedjson import is_plain

    extra: dict[str, Any] = {}
    categoricals = []
    for i, dtype in enumerate(frame.dtypes):
        if isinstance(dtype, pd.CategoricalDtype):
            cats = dtype.categories.tolist()
            if is_plain(cats):
                categoricals.append([i, cats, str(dtype.categories.dtype), bool(dtype.ordered)])
    if categoricals:
        extra["categoricals"] = categoricals
    freq = getattr(frame.index, "freqstr", None)
    if freq:
        extra["freq"] = freq
    if isinstance(frame.columns, pd.RangeIndex):
        extra["columns"] = [frame.columns.start, frame.columns.stop, frame.columns.step]
    arrow = _arrow_backed_fields(frame, table)
    if arrow:
        import pyarrow as pa

        extra["arrow"] = base64.b64encode(pa.schema(arrow).serialize().to_pybytes()).decode("ascii")
    return extra


def _arrow_backed_fields(frame: pd.DataFrame, table: Any) -> list[Any]:
    """The table's fields of the frame's ``pd.ArrowDtype`` columns and index levels. ``Table.from_pandas``
    puts the data columns first, in order, then the index levels that are stored as columns."""
    import pandas as pd

    fields = [table.schema.field(i) for i, dtype in enumerate(frame.dtypes) if isinstance(dtype, pd.ArrowDtype)]
    index_columns = (table.schema.pandas_metadata or {}).get("index_columns", [])
    levels = [frame.index.get_level_values(i).dtype for i in range(frame.index.nlevels)]
    for dtype, name in zip(levels, index_columns, strict=False):
        if isinstance(name, str) and isinstance(dtype, pd.ArrowDtype):
            fields.append(table.schema.field(name))
    return fields


def _set_arrow_aside(table: Any, extra: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """``table`` with its Arrow-backed columns replaced by null placeholders (pandas cannot rebuild a
    nested ``pd.ArrowDtype`` from its metadata, and would convert the rest through NumPy), and those
    columns as they were written, cast back to their exact type where Parquet stored a coarser one
    (date64, time32[s], timestamp[s])."""
    import pyarrow as pa

    if "arrow" not in extra:
        return table, {}
    wanted = pa.ipc.read_schema(pa.py_buffer(base64.b64decode(extra["arrow"])))
    meta = table.schema.pandas_metadata
    entries = {entry.get("field_name", entry["name"]): entry for entry in meta["columns"]}
    set_aside: dict[str, Any] = {}
    for field in wanted:
        column = table.column(field.name)
        # str(): type equality ignores the names of nested fields, which pandas' dtype shows.
        is_index = field.name in meta.get("index_columns", [])  # pyarrow rebuilds index levels through NumPy
        if (
            not is_index
            and str(column.type) == str(field.type)
            and _rebuilt_by_pyarrow(entries[field.name], field.type)
        ):
            continue
        set_aside[field.name] = column if str(column.type) == str(field.type) else column.cast(field.type)
        i = table.schema.get_field_index(field.name)
        table = table.set_column(i, pa.field(field.name, pa.null()), pa.nulls(len(table)))
        entries[field.name].update(pandas_type="empty", numpy_type="object", metadata=None)
    table = table.replace_schema_metadata({**table.schema.metadata, b"pandas": json.dumps(meta).encode()})
    return table, set_aside


def _rebuilt_by_pyarrow(entry: dict[str, Any], arrow_type: Any) -> bool:
    """Whether pyarrow rebuilds this data column's exact ``pd.ArrowDtype`` from pandas' metadata on its
    own, without a copy (simple types: ``int64[pyarrow]``, ``timestamp[us, tz=UTC][pyarrow]``...): its
    dtype name parses back to that dtype. Nested, dictionary and decimal types' names do not, nor ``string[pyarrow]``,
    which pandas reads as its own string dtype."""
    import pandas as pd

    try:
        dtype = pd.api.types.pandas_dtype(entry["numpy_type"])
    except (TypeError, ValueError, NotImplementedError):
        return False
    return isinstance(dtype, pd.ArrowDtype) and str(dtype.pyarrow_dtype) == str(arrow_type)


def _put_arrow_back(frame: pd.DataFrame, table: Any, set_aside: dict[str, Any]) -> pd.DataFrame:
    """The columns and index levels ``_set_arrow_aside`` took out, as ``pd.ArrowDtype`` arrays over the
    Arrow data itself (no copy)."""
    import pandas as pd

    if not set_aside:
        return frame
    names = table.schema.names
    for i in range(frame.shape[1]):
        if names[i] in set_aside:
            frame.isetitem(i, pd.arrays.ArrowExtensionArray(set_aside[names[i]]))
    index_columns = table.schema.pandas_metadata.get("index_columns", [])
    if any(isinstance(name, str) and name in set_aside for name in index_columns):
        levels = [
            pd.Index(pd.arrays.ArrowExtensionArray(set_aside[name]), name=frame.index.names[i])
            if isinstance(name, str) and name in set_aside
            else frame.index.get_level_values(i)
            for i, name in enumerate(index_columns)
        ]
        frame.index = levels[0] if len(levels) == 1 else pd.MultiIndex.from_arrays(levels, names=frame.index.names)
    return frame


def _apply_extra(frame: pd.DataFrame, extra: dict[str, Any]) -> pd.DataFrame:
    import pandas as pd

    for i, cats, cats_dtype, ordered in extra.get("categoricals", ()):
        dtype = pd.CategoricalDtype(pd.Index(cats, dtype=cats_dtype), ordered=ordered)
        if frame.dtypes.iloc[i] != dtype:
            frame.isetitem(i, frame.iloc[:, i].astype(dtype))
    if "freq" in extra:
        frame.index = type(frame.index)(frame.index, freq=extra["freq"])
    if "columns" in extra:
        frame.columns = pd.RangeIndex(*extra["columns"], name=frame.columns.name)
    return frame


_EXACT_NUMPY = frozenset(
    ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float32", "float64", "bool")
)
_EXACT_UNITS = ("ms", "us", "ns")  # Parquet has no seconds: datetime64[s] would come back as [ms]


def _exact_dtype(dtype: Any) -> bool:
    import pandas as pd

    if isinstance(dtype, pd.CategoricalDtype):  # categories restored from our metadata (_pandas_extra)
        return dtype.categories.dtype.kind in "iuf" or isinstance(dtype.categories.dtype, pd.StringDtype)
    if isinstance(dtype, pd.DatetimeTZDtype):
        return dtype.unit in _EXACT_UNITS
    nullable = (  # isinstance takes nested tuples
        (pd.StringDtype, pd.BooleanDtype),
        (pd.Int8Dtype, pd.Int16Dtype, pd.Int32Dtype, pd.Int64Dtype),
        (pd.UInt8Dtype, pd.UInt16Dtype, pd.UInt32Dtype, pd.UInt64Dtype),
        (pd.Float32Dtype, pd.Float64Dtype),
    )
    if isinstance(dtype, nullable):
        return True
    if getattr(dtype, "kind", "") == "M":
        return str(dtype).removeprefix("datetime64[").removesuffix("]") in _EXACT_UNITS
    return str(dtype) in _EXACT_NUMPY


def _known_exact(frame: pd.DataFrame) -> bool:
    """Whether ``frame`` is made only of what Parquet is known to bring back exactly: a RangeIndex,
    unique str column labels, and dtypes of the kinds above. Such a frame needs no probe; the
    property test (tests/unit/test_frames_property.py) holds this set to that promise."""
    import pandas as pd

    columns = frame.columns
    return (
        type(frame.index) is pd.RangeIndex
        and len(columns) > 0  # with no columns, Parquet keeps no rows
        and type(columns) is not pd.MultiIndex
        and columns.is_unique
        and all(type(label) is str for label in columns)
        and all(_exact_dtype(dtype) for dtype in frame.dtypes)
    )


def _same_in_arrow(left: pd.DataFrame, right: pd.DataFrame) -> bool:
    """Whether two frames are the same Arrow data with the same pandas metadata (dtypes, index, names)."""
    import pyarrow as pa

    return bool(pa.Table.from_pandas(left).equals(pa.Table.from_pandas(right), check_metadata=True))


def _which_columns(frame: pd.DataFrame, exc: Exception) -> str:
    """Why ``frame`` cannot go through Parquet, naming the Arrow-backed columns that cannot (each tried
    alone, two rows) and what to do; ``exc`` is the error of the whole frame."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    culprits = []
    for i, (label, dtype) in enumerate(frame.dtypes.items()):
        if not isinstance(dtype, pd.ArrowDtype):
            continue
        try:
            table = pa.Table.from_pandas(frame.iloc[:2, [i]], preserve_index=False)
            pq.read_table(pa.BufferReader(_write(table)))
        except Exception:
            culprits.append(f"column {label!r} has dtype {dtype}, which Parquet cannot hold")
    if culprits:
        return (
            "; ".join(culprits) + ". Cast such a column to a type Parquet holds (for example with "
            ".astype(pd.ArrowDtype(...)) to a list, struct, string or numeric type), or push it as a column of "
            "its own in another form."
        )
    return f"Parquet could not store it ({type(exc).__name__}: {' '.join(str(exc).split())[:300]})"


def _write(table: Any) -> Any:
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, use_compliant_nested_type=False)
    return sink.getvalue()


class ParquetCodec:
    """Frames as Parquet. pandas DataFrame/Series via pyarrow (pandas metadata plus what it loses),
    polars DataFrame/Series with polars' own writer, pyarrow Table/RecordBatch as they are. Before
    a push, the first two rows go through the same path and must come back identical: a frame that
    would come back different fails with a TypeError naming the column and what differs. (A pandas
    frame made only of what is known to come back exact skips this probe: ``_known_exact``.)"""

    format = "parquet"

    def __init__(self, compression: str = "snappy") -> None:
        self.compression = compression

    def encode(self, value: Any) -> Encoded:
        kind = binary_kind(value)
        if kind is None or kind in ("bytes", "bytearray", "ndarray"):
            raise TypeError(f"{type(value).__qualname__} is not a frame")
        if kind == "polars.lazyframe":
            raise TypeError(LAZY_FRAME)
        if kind.startswith("polars."):
            self._probe_polars(value, kind)
            return Encoded(self._polars(value), self.format, kind)
        if kind.startswith("arrow."):
            self._probe_arrow(value, kind)
            return Encoded(self._arrow(value), self.format, kind)
        frame, kind = _as_frame(value)
        if not _known_exact(frame):
            self._probe_pandas(value, frame, kind)
        return Encoded(self._pandas(frame, kind), self.format, kind)

    # pandas
    def _pandas(self, frame: pd.DataFrame, kind: str) -> memoryview:
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            table = pa.Table.from_pandas(frame, preserve_index=None)
        except (pa.ArrowException, ValueError, TypeError) as exc:  # mixed objects, complex, duplicates...
            raise _refused("pandas " + kind, f"{type(exc).__name__}: {exc}") from None
        extra = _pandas_extra(frame, table)
        if extra:
            table = table.replace_schema_metadata({**table.schema.metadata, _PANDAS_EXTRA: json.dumps(extra)})
        sink = pa.BufferOutputStream()
        try:
            # Non-compliant nested types keep list fields' own names ("item"), so Arrow types come back equal.
            pq.write_table(table, sink, compression=self.compression, use_compliant_nested_type=False)
        except (pa.ArrowException, ValueError, TypeError) as exc:  # an Arrow type Parquet cannot hold
            raise _refused("pandas " + kind, _which_columns(frame, exc)) from None
        return memoryview(sink.getvalue())

    def _probe_pandas(self, value: Any, frame: pd.DataFrame, kind: str) -> None:
        import pandas as pd

        head = frame.iloc[:2]
        try:
            back = self.decode(self._pandas(head, kind), kind)
        except TypeError:
            raise
        except Exception as exc:  # pandas or pyarrow could not read it back
            raise _refused("pandas " + kind, _which_columns(frame, exc)) from None
        try:
            if kind == "series":
                pd.testing.assert_series_equal(back, value.iloc[:2], check_exact=True)
            else:
                pd.testing.assert_frame_equal(back, head, check_exact=True)
        except AssertionError as exc:
            detail = " ".join(str(exc).split())
            raise _refused("pandas " + kind, f"it would come back different from Parquet: {detail}") from None
        except NotImplementedError:  # pandas cannot compare some Arrow types (string_view): compare in Arrow
            if not _same_in_arrow(_as_frame(back)[0], head):
                raise _refused("pandas " + kind, "it would come back different from Parquet") from None

    # polars
    def _polars(self, value: Any) -> memoryview:
        sink = io.BytesIO()
        compression = "uncompressed" if self.compression == "none" else self.compression
        try:
            _polars_frame(value).write_parquet(sink, compression=compression)
        except Exception as exc:
            raise _refused("polars frame", f"{type(exc).__name__}: {exc}") from None
        return sink.getbuffer()

    def _probe_polars(self, value: Any, kind: str) -> None:
        head = _polars_frame(value.head(2))
        back = _polars_frame(self.decode(self._polars(head), kind))
        if back.schema != head.schema or not back.equals(head):
            raise _refused(kind.replace(".", " "), f"it would come back as {back.schema} instead of {head.schema}")

    # pyarrow
    def _arrow(self, value: Any) -> memoryview:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_batches([value]) if isinstance(value, pa.RecordBatch) else value
        sink = pa.BufferOutputStream()
        try:
            # Non-compliant nested types keep list fields' own names ("item"), so the schema comes back equal.
            pq.write_table(table, sink, compression=self.compression, use_compliant_nested_type=False)
        except pa.ArrowException as exc:
            raise _refused("pyarrow table", f"{type(exc).__name__}: {exc}") from None
        return memoryview(sink.getvalue())

    def _probe_arrow(self, value: Any, kind: str) -> None:
        head = value.slice(0, 2)
        back = self.decode(self._arrow(head), kind)
        if not back.schema.equals(head.schema, check_metadata=True) or not back.equals(head):
            raise _refused(
                kind.replace(".", " "), f"it would come back with schema {back.schema} instead of {head.schema}"
            )

    def decode(self, data: bytes | memoryview, kind: str) -> Any:
        if kind.startswith("polars."):
            import polars as pl

            frame = pl.read_parquet(data if isinstance(data, bytes) else io.BytesIO(data))  # bytes: no copy
            return frame.to_series(0) if kind == "polars.series" else frame
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pq.read_table(pa.BufferReader(data))
        if kind == "arrow.table":
            return table
        if kind == "arrow.recordbatch":
            return pa.RecordBatch.from_arrays([c.combine_chunks() for c in table.columns], schema=table.schema)
        extra = json.loads((table.schema.metadata or {}).get(_PANDAS_EXTRA, b"{}"))
        placeheld, set_aside = _set_arrow_aside(table, extra)
        frame = _put_arrow_back(placeheld.to_pandas(), placeheld, set_aside)
        return _restore(_apply_extra(frame, extra), kind)


class CSVCodec:
    """The tutorial's CSV: readable anywhere, but loses dtypes (docs/value-types.md); the push logs which columns."""

    format = "csv"

    def encode(self, value: Any) -> Encoded:
        frame, kind = _as_frame(value)
        keeps = ("int64", "float64", "bool", "object")
        lossy = [f"{c} ({d})" for c, d in frame.dtypes.items() if d.name not in keeps]
        if lossy:
            log.warning(
                "CSV: column(s) %s will not come back with their dtype; use Parquet to keep them", ", ".join(lossy)
            )
        return Encoded(frame.to_csv().encode("utf-8"), self.format, kind)

    def decode(self, data: bytes | memoryview, kind: str) -> Any:
        import pandas as pd

        return _restore(pd.read_csv(io.BytesIO(data), index_col=0), kind)


class NpyCodec:
    """numpy arrays of any dtype and shape as .npy, without pickle (object arrays are refused)."""

    format = "npy"

    def encode(self, value: Any) -> Encoded:
        import numpy as np

        if value.dtype.hasobject:
            raise _refused(
                f"numpy array of dtype {value.dtype}",
                "object arrays would need pickle, which this backend never uses; "
                "convert it to a typed dtype (e.g. str, int, float)",
            )
        sink = io.BytesIO()
        np.save(sink, value, allow_pickle=False)
        return Encoded(sink.getbuffer(), self.format, "ndarray")

    def decode(self, data: bytes | memoryview, kind: str) -> Any:
        import numpy as np

        return np.load(io.BytesIO(data), allow_pickle=False)


class BytesCodec:
    """bytes and bytearray, stored as they are."""

    format = "bin"

    def encode(self, value: Any) -> Encoded:
        return Encoded(memoryview(value).toreadonly(), self.format, type(value).__name__)

    def decode(self, data: bytes | memoryview, kind: str) -> Any:
        return bytearray(data) if kind == "bytearray" else bytes(data)


_DECODERS: dict[str, Callable[[], Codec]] = {
    "json": JSONCodec,
    "parquet": ParquetCodec,  # decoding reads the compression from the file
    "csv": CSVCodec,
    "npy": NpyCodec,
    "bin": BytesCodec,
}


def codec_for_format(fmt: str) -> Codec:
    """The decoder for a format recorded in a reference; unknown formats are refused."""
    try:
        return _DECODERS[fmt]()
    except KeyError:
        raise ValueError(
            f"Unknown XCom storage format {fmt!r}: this backend only reads {', '.join(_DECODERS)}"
        ) from None
