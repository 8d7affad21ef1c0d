"""What an XCom holds, for people: location, size, format and the first rows, read with ranged GETs.

Used by the UI plugin (``plugins/xcom_storage_plugin.py``). A Parquet preview (pandas, polars or
pyarrow frames) reads the footer and the first pages of each column; a CSV preview the first 64 KiB;
a .npy preview its header and first values; a bytes preview its first 64 bytes, shown as hex; a JSON
preview (plain or typed) the whole object up to ``JSON_PRETTY_MAX`` bytes (to pretty-print it),
otherwise its first 64 KiB as text. Nothing here loads a large object whole, and nothing is sent to
the browser but the preview.

Whoever may push an XCom decides what a preview reads, so every preview is bounded, whatever the
value claims to be: rows, columns, characters of a cell, of a column name and of JSON text, the
bytes of the whole preview once escaped for HTML (the ``MAX_*`` constants below), and for Parquet
(where a few kB can hold a dictionary page that decompresses to gigabytes) the footer's size and
how many bytes the column chunks read decompress to, as the footer says, checked before any data
page is read (rows are then decoded one at a time, each value cut to a cell before the next, so
what is decoded adds at most as much again). Whatever is cut is said in ``Preview.note`` (and a cut
cell or name ends in "…"); a value that cannot be previewed within the bounds gets a one-line
``Preview.error``. The footer is the writer's word: pyarrow does not check its page headers against
it, so a hand-made file whose footer understates its pages is held by the other bounds only.
"""

from __future__ import annotations

import ast
import csv
import io
import itertools
import json
import math
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from markupsafe import escape

from include.xcom_backends import dbform
from include.xcom_backends.backend import ObjectStorageXCom
from include.xcom_backends.dbform import Reference
from include.xcom_backends.errors import XComObjectMissingError, XComReferenceError, XComStorageError
from include.xcom_backends.keys import XComRow
from include.xcom_backends.routing import DEFAULT
from include.xcom_backends.stores.base import ObjectStore, SeekableReader

MAX_ROWS = 20  # rows of a frame shown
MAX_COLUMNS = 50  # columns of a frame shown (besides its index)
MAX_CELL_CHARS = 200  # characters of a cell, or of one value of an array; a longer one is cut and ends in "…"
MAX_NAME_CHARS = 100  # characters of a column name or column type
MAX_TEXT = 20_000  # characters of JSON shown
MAX_LINE_CHARS = 2_000  # characters of a URI, format, error or note
MAX_PREVIEW_BYTES = 256 * 1024  # the whole preview (names, cells, text) as HTML-escaped UTF-8; rows beyond are cut
MAX_INLINE_BYTES = 16 * 1024 * 1024  # an inline value (codec bytes kept in the row) larger than this: no preview
MAX_PARQUET_FOOTER = 8 * 1024 * 1024  # a Parquet footer larger than this is not parsed
MAX_PARQUET_UNCOMPRESSED = 64 * 1024 * 1024  # what the column chunks read may decompress to; columns beyond: not read
MAX_ROW_GROUPS_SCANNED = 1000  # Parquet row groups looked at for the first rows (empty ones are skipped)
HEAD_BYTES = 64 * 1024
JSON_PRETTY_MAX = 1024 * 1024
WHOLE_OBJECT_MAX = 256 * 1024  # smaller objects are fetched in one GET instead of several ranges
MAX_VALUES = 20  # first values of a numpy array shown
NPY_HEAD_BYTES = 4096  # first GET of a .npy object: its header, and usually its first values too
HEX_BYTES = 64  # first bytes of a bytes value shown, as hex
PARQUET_TAIL_BYTES = 64 * 1024  # the first GET of a Parquet object: its end, which holds the footer

CUT = "…"


@dataclass
class Preview:
    """One XCom as the plugin shows it. ``where`` is "object storage" or "database (inline)";
    ``error`` says why no preview could be made. ``index_column``: whether ``columns`` starts with
    the frame's index (pandas) or not (polars, pyarrow). ``total_columns``: the frame's columns
    (besides the index) when not all are in ``columns``. ``shape`` and ``dtype``: a numpy array's.
    ``note``: what part of the value ``rows`` or ``text`` show, when it is not the whole (``cuts``:
    its sentences, one per kind of cut). ``rendered_bytes``: the preview's size on the page."""

    key: str
    where: str
    format: str
    size: int | None = None
    uri: str | None = None
    kind: str = "value"
    total_rows: int | None = None
    total_columns: int | None = None
    columns: list[tuple[str, str]] = field(default_factory=list)  # (name, dtype)
    rows: list[list[str]] = field(default_factory=list)
    index_column: bool = True
    shape: tuple[int, ...] | None = None
    dtype: str | None = None
    text: str | None = None
    note: str | None = None
    cuts: list[str] = field(default_factory=list)
    truncated: bool = False
    bytes_read: int = 0
    rendered_bytes: int = 0
    error: str | None = None

    def cut(self, sentence: str) -> None:
        """Record that part of the value is not shown, and what (one sentence, each said once)."""
        self.truncated = True
        if sentence not in self.cuts:
            self.cuts.append(sentence)


class PreviewBoundError(Exception):
    """The value cannot be previewed within the bounds; the message is the one line shown instead."""


def clip(text: str, limit: int) -> str:
    """``text``, or its first ``limit`` characters and "…"."""
    return text if len(text) <= limit else text[:limit] + CUT


def _size(n: int | float) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


class RangeReader(SeekableReader):
    """A read-only, seekable file over one stored object: every read is one ranged GET, except for
    objects up to ``WHOLE_OBJECT_MAX`` bytes, which are fetched whole by the first read, and reads
    inside the end fetched by ``tail``, which are served from it."""

    def __init__(self, store: ObjectStore, key: str, size: int) -> None:
        super().__init__(size)
        self._store, self._key = store, key
        self._whole: bytes | None = None
        self._tail = b""
        self.bytes_read = 0

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        length = min(len(view), self._size - self._pos)
        if length <= 0:
            return 0
        tail_start = self._size - len(self._tail)
        if self._size <= WHOLE_OBJECT_MAX:
            if self._whole is None:
                self._whole = self._fetch(0, self._size)
            data = self._whole[self._pos : self._pos + length]
        elif self._tail and self._pos >= tail_start:
            data = self._tail[self._pos - tail_start : self._pos - tail_start + length]
        else:
            data = self._fetch(self._pos, length)
        view[: len(data)] = data
        self._pos += len(data)
        return len(data)

    def _fetch(self, start: int, length: int) -> bytes:
        try:
            data = self._store.get_range(self._key, start, length)
        except FileNotFoundError as exc:
            raise XComObjectMissingError(str(exc)) from None
        self.bytes_read += len(data)
        return data

    def read_all_capped(self, limit: int) -> bytes:
        self.seek(0)
        return self.read(min(limit, self._size)) or b""

    def head(self, limit: int) -> bytes:
        """The first ``limit`` bytes in one ranged GET of at most ``limit`` bytes, whatever the size."""
        length = min(limit, self._size)
        return self._fetch(0, length) if length > 0 else b""

    def tail(self, limit: int) -> bytes:
        """The last ``limit`` bytes (one GET, or none for a small object), kept for later reads."""
        length = min(limit, self._size)
        if self._size <= WHOLE_OBJECT_MAX:
            self.seek(self._size - length)
            return self.read(length) or b""
        if len(self._tail) < length:
            self._tail = self._fetch(self._size - length, length)
        return self._tail[len(self._tail) - length :]


def _tail(source: Any, limit: int) -> bytes:
    if isinstance(source, RangeReader):
        return source.tail(limit)
    end = source.seek(0, io.SEEK_END)
    source.seek(max(0, end - limit))
    data: bytes = source.read(limit)
    source.seek(0)
    return data


# Cells


def _cell(preview: Preview, value: Any) -> str:
    import pandas as pd

    try:
        if pd.isna(value):
            return "<NA>" if value is pd.NA else str(value)
    except (TypeError, ValueError):
        pass
    return _clip_cell(preview, str(value))


def _clip_cell(preview: Preview, text: str) -> str:
    if len(text) > MAX_CELL_CHARS:
        preview.cut(f"Values longer than {MAX_CELL_CHARS} characters truncated (they end in {CUT}).")
        return text[:MAX_CELL_CHARS] + CUT
    return text


def _name(preview: Preview, name: Any) -> str:
    text = str(name)
    if len(text) > MAX_NAME_CHARS:
        preview.cut(f"Column names and types longer than {MAX_NAME_CHARS} characters truncated.")
        return text[:MAX_NAME_CHARS] + CUT
    return text


def _columns_cut(preview: Preview, shown: int, total: int) -> None:
    preview.total_columns = total
    preview.cut(f"Columns truncated: the first {shown:,} of {total:,} columns shown.")


def _fill_frame(preview: Preview, frame: Any) -> None:
    """Columns (index first, marked with its name or "(index)") and the first rows as strings."""
    head = frame.head(MAX_ROWS)
    if hasattr(head, "to_frame"):  # a Series
        head = head.to_frame()
    if head.shape[1] > MAX_COLUMNS:
        _columns_cut(preview, MAX_COLUMNS, head.shape[1])
        head = head.iloc[:, :MAX_COLUMNS]
    index_name = ", ".join(str(n) for n in head.index.names if n is not None) or "(index)"
    preview.columns = [(_name(preview, index_name), _name(preview, head.index.dtype))] + [
        (_name(preview, c), _name(preview, t)) for c, t in head.dtypes.items()
    ]
    preview.rows = [
        [_cell(preview, i)] + [_cell(preview, v) for v in row]
        for i, row in zip(head.index, head.itertuples(index=False), strict=True)
    ]


def _fill_arrow(preview: Preview, table: Any, types: list[tuple[str, Any]]) -> None:
    """Columns with their Arrow types (``types``: as in the file; no index) and the first rows as
    strings (nulls as <NA>)."""
    import pandas as pd

    preview.index_column = False
    preview.columns = [(_name(preview, name), _name(preview, t)) for name, t in types]
    frame = table.to_pandas(types_mapper=pd.ArrowDtype, ignore_metadata=True)
    preview.rows = [[_cell(preview, v) for v in row] for row in frame.itertuples(index=False, name=None)]


def _set_text(preview: Preview, text: str, whole: str | None = None) -> None:
    """``text`` up to ``MAX_TEXT`` characters; ``whole``: what ``text`` is the beginning of, when it
    is not the whole value (for the note)."""
    if len(text) > MAX_TEXT:
        whole = whole or f"{len(text):,} characters"
        text = text[:MAX_TEXT] + CUT
    preview.text = text
    if whole is not None:
        preview.cut(f"Truncated: the first {MAX_TEXT:,} characters of {whole} shown.")


def _fill_json(preview: Preview, value: Any) -> None:
    _set_text(preview, json.dumps(value, indent=2, ensure_ascii=False, default=str))


def _json_head(preview: Preview, head: bytes, size: int) -> None:
    """The beginning of a JSON value too large to pretty-print, as it is stored."""
    _set_text(preview, head.decode("utf-8", errors="replace"), f"{_size(size)} of JSON")


# Parquet


def _leaves(arrow_type: Any) -> int:
    """How many Parquet leaf columns hold a column of ``arrow_type``."""
    import pyarrow as pa

    t = arrow_type
    if isinstance(t, pa.ExtensionType):
        return _leaves(t.storage_type)
    if pa.types.is_dictionary(t):
        return _leaves(t.value_type)
    if pa.types.is_struct(t):
        return sum(_leaves(t.field(i).type) for i in range(t.num_fields))
    if pa.types.is_map(t):
        return _leaves(t.key_type) + _leaves(t.item_type)
    if hasattr(t, "value_type") and pa.types.is_nested(t):  # lists of every kind
        return _leaves(t.value_type)
    return 1


@dataclass
class _ParquetPlan:
    row_groups: list[int]
    fields: list[int]  # top-level fields to read, in file order
    leaves: list[int]  # their leaf columns
    skipped: list[tuple[str, int]]  # (name, bytes it would decompress to) of fields over the bound
    data_fields: int  # fields that are not a pandas index
    shown: int  # of those, how many are read


def _pandas_index_names(schema: Any) -> set[str]:
    try:
        meta = schema.pandas_metadata or {}
    except ValueError:  # not JSON
        return set()
    return {c for c in meta.get("index_columns", []) if isinstance(c, str)}


def _plan_parquet(pf: Any, with_index: bool) -> _ParquetPlan:
    """Which row groups and columns to read for the first ``MAX_ROWS`` rows of the first
    ``MAX_COLUMNS`` columns (and a pandas index), from the footer alone: a column is read only if
    what its chunks decompress to (the footer's ``total_uncompressed_size``, plus, for a nested
    column, one row's worth of values at most ``num_values``) fits in what is left of
    ``MAX_PARQUET_UNCOMPRESSED``."""
    md, schema = pf.metadata, pf.schema_arrow
    counts = [_leaves(f.type) for f in schema]
    if sum(counts) != md.num_columns:
        raise PreviewBoundError(
            f"The Parquet schema's {len(schema):,} columns do not match its {md.num_columns:,} stored "
            "columns, so it was not read."
        )
    first_leaf = [0, *itertools.accumulate(counts)]
    row_groups, rows = [], 0
    for g in range(min(md.num_row_groups, MAX_ROW_GROUPS_SCANNED)):
        if rows >= MAX_ROWS:
            break
        n = md.row_group(g).num_rows
        if n > 0:
            row_groups.append(g)
            rows += n
    index = _pandas_index_names(schema) if with_index else set()
    index_fields = [i for i, f in enumerate(schema) if f.name in index]
    data_fields = [i for i, f in enumerate(schema) if f.name not in index]
    fields, skipped, spent = [], [], 0
    for i in index_fields + data_fields[:MAX_COLUMNS]:
        cost = sum(
            _chunk_cost(pf, g, leaf) for g in row_groups for leaf in range(first_leaf[i], first_leaf[i] + counts[i])
        )
        if spent + cost <= MAX_PARQUET_UNCOMPRESSED:
            fields.append(i)
            spent += cost
        else:
            skipped.append((schema[i].name, cost))
    fields.sort()
    leaves = [leaf for i in fields for leaf in range(first_leaf[i], first_leaf[i] + counts[i])]
    shown = sum(1 for i in fields if schema[i].name not in index)
    return _ParquetPlan(row_groups, fields, leaves, skipped, len(data_fields), shown)


def _chunk_cost(pf: Any, group: int, leaf: int) -> int:
    """What reading rows of leaf column ``leaf`` in row group ``group`` may decompress to, per the
    footer: its pages, and for a nested column also its values decoded (one row may hold them all).
    A flat column decodes one row at a time (``preview_parquet``), each value at most its pages."""
    chunk = pf.metadata.row_group(group).column(leaf)
    size = chunk.total_uncompressed_size
    if size is None or size < 0 or chunk.num_values < 0:
        return MAX_PARQUET_UNCOMPRESSED + 1
    column = pf.schema.column(leaf)
    if column.max_repetition_level == 0:
        return int(size)
    width = {"BYTE_ARRAY": size, "FIXED_LEN_BYTE_ARRAY": column.length or 0, "INT96": 12, "BOOLEAN": 1}
    return int(size) + int(chunk.num_values) * max(8, int(width.get(column.physical_type, 8)))


def _shrink(array: Any) -> Any:
    """``array`` (a few rows) with every value bounded for a cell: strings and binaries cut to
    ``MAX_CELL_CHARS`` + 1 (so a cut shows), nested values (lists, structs, maps) as bounded text,
    a dictionary decoded to the values it uses. Types may change; the preview shows the file's."""
    import pyarrow as pa
    import pyarrow.compute as pc

    t = array.type
    if isinstance(t, pa.ExtensionType):
        return _shrink(array.storage)
    if pa.types.is_dictionary(t):
        dense = _shrink(array.dictionary_decode())
        return dense.dictionary_encode().cast(t) if dense.type == t.value_type else dense
    if pa.types.is_nested(t):
        return pa.array([_nested_text(v) if v.is_valid else None for v in array], pa.string())
    if pa.types.is_fixed_size_binary(t) and t.byte_width > MAX_CELL_CHARS:
        return _shrink(array.cast(pa.binary()))
    try:
        if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
            return pc.utf8_slice_codeunits(array, 0, MAX_CELL_CHARS + 1)
        if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_binary_view(t):
            return pc.binary_slice(array, 0, MAX_CELL_CHARS + 1)
    except pa.ArrowNotImplementedError:  # a view type this pyarrow cannot slice: cut in Python
        return pa.array([None if v is None else v[: MAX_CELL_CHARS + 1] for v in array.to_pylist()], t)
    return array


def _nested_text(scalar: Any) -> str:
    """A list, struct or map value as Python would print it (``str`` of its ``as_py()``), built
    only up to ``MAX_CELL_CHARS`` + 1 characters however many values it holds."""
    import pyarrow as pa
    import pyarrow.compute as pc

    parts: list[str] = []
    length = 0

    def emit(text: str) -> bool:  # True: enough
        nonlocal length
        parts.append(text)
        length += len(text)
        return length > MAX_CELL_CHARS

    def sequence(count: int, open_: str, close: str, item: Callable[[int], bool]) -> bool:
        """``count`` items between ``open_`` and ``close``, ``item(i)`` emitting the i-th."""
        if emit(open_):
            return True
        for i in range(count):
            if (i and emit(", ")) or item(i):
                return True
        return emit(close)

    def walk(s: Any) -> bool:
        t = s.type
        if not s.is_valid:
            return emit("None")
        if isinstance(t, pa.ExtensionType):
            return walk(s.value)
        if pa.types.is_dictionary(t):
            return walk(s.value)
        if pa.types.is_map(t):  # as Python prints a list of (key, value) tuples
            entries = s.values
            return sequence(len(entries), "[", "]", lambda i: sequence(2, "(", ")", lambda j: walk(entries[i][j])))
        if pa.types.is_struct(t):
            return sequence(t.num_fields, "{", "}", lambda i: emit(f"{t.field(i).name!r}: ") or walk(s[i]))
        if pa.types.is_nested(t):  # lists of every kind
            values = s.values
            return sequence(len(values), "[", "]", lambda i: walk(values[i]))
        if pa.types.is_string(t) or pa.types.is_large_string(t):
            s = pc.utf8_slice_codeunits(s, 0, MAX_CELL_CHARS + 1)
        elif pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
            s = pc.binary_slice(s.cast(pa.binary()), 0, MAX_CELL_CHARS + 1)
        return emit(repr(s.as_py()))

    walk(scalar)
    return "".join(parts)


def _parquet_footer_check(source: Any) -> None:
    tail = _tail(source, PARQUET_TAIL_BYTES)
    if len(tail) < 12 or tail[-4:] != b"PAR1":
        raise PreviewBoundError("The value is not a Parquet file (no PAR1 footer), so it was not read.")
    (length,) = struct.unpack("<I", tail[-8:-4])
    if length > MAX_PARQUET_FOOTER:
        raise PreviewBoundError(
            f"The Parquet footer (its schema and metadata) is {_size(length)}, over the "
            f"{_size(MAX_PARQUET_FOOTER)} a preview parses, so it was not read."
        )


def preview_parquet(preview: Preview, source: io.RawIOBase | io.BufferedIOBase) -> None:
    """Total rows from the footer, the first rows from the first row group(s), within the bounds
    (``_plan_parquet``), one row at a time, each value cut to a cell's size before the next. pandas
    frames as pandas shows them; polars and pyarrow frames (``preview.kind``) with their Arrow types."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    _parquet_footer_check(source)
    pf = pq.ParquetFile(
        source,
        buffer_size=64 * 1024,
        pre_buffer=False,
        thrift_string_size_limit=MAX_PARQUET_FOOTER,
        thrift_container_size_limit=MAX_PARQUET_FOOTER,
    )
    arrow_kind = preview.kind.startswith(("polars.", "arrow."))
    plan = _plan_parquet(pf, with_index=not arrow_kind)
    schema = pf.schema_arrow
    preview.total_rows = pf.metadata.num_rows
    if plan.skipped:
        over = ", ".join(f"{clip(repr(name), MAX_NAME_CHARS)} ({_size(cost)})" for name, cost in plan.skipped[:10])
        more = f" and {len(plan.skipped) - 10:,} more" if len(plan.skipped) > 10 else ""
        bound = _size(MAX_PARQUET_UNCOMPRESSED)
        if not plan.fields:
            raise PreviewBoundError(
                f"No column read: {over}{more} would decompress to more than the {bound} a preview reads."
            )
        preview.cut(
            f"Columns not read, as they would decompress to more than the {bound} a preview reads: {over}{more}."
        )
    batches = []
    if plan.fields and plan.row_groups:
        reader = pf.reader.iter_batches(1, row_groups=plan.row_groups, column_indices=plan.leaves, use_threads=False)
        for batch in reader:
            if batch.num_rows:
                arrays = [_shrink(column) for column in batch.columns]
                batches.append(pa.RecordBatch.from_arrays(arrays, names=batch.schema.names, metadata=schema.metadata))
            if len(batches) == MAX_ROWS:
                break
        reader.close()
    if batches:
        table = pa.Table.from_batches(batches)
    else:
        selected = pa.schema([schema.field(i) for i in plan.fields], metadata=schema.metadata)
        table = selected.empty_table()
    if plan.data_fields > MAX_COLUMNS:
        _columns_cut(preview, plan.shown, plan.data_fields)
    if arrow_kind:
        _fill_arrow(preview, table, [(schema[i].name, schema[i].type) for i in plan.fields])
    else:
        try:
            frame = table.to_pandas()
        except (pa.ArrowException, ValueError, TypeError, KeyError):  # pandas metadata of other columns
            frame = table.to_pandas(ignore_metadata=True)
        _fill_frame(preview, frame)
    if preview.total_rows > len(preview.rows):
        preview.cut(f"First {len(preview.rows):,} of {preview.total_rows:,} rows shown.")


# numpy, bytes, CSV


def _npy_header(source: io.BufferedIOBase) -> tuple[tuple[int, ...], bool, Any]:
    """(shape, fortran_order, dtype) from a .npy header; ``source`` is left at the first value."""
    from numpy.lib import format as npy

    version = npy.read_magic(source)
    if version == (1, 0):
        return npy.read_array_header_1_0(source)
    if version == (2, 0):
        return npy.read_array_header_2_0(source)
    if version != (3, 0):
        raise ValueError(f"Unsupported .npy format version {version[0]}.{version[1]}")
    # 3.0 is 2.0 with a UTF-8 header (field names beyond Latin-1); numpy reads it the same way
    (length,) = struct.unpack("<I", source.read(4))
    if length > 10_000:
        raise ValueError(f"The .npy header is {length:,} bytes long: too long to read for a preview")
    header = ast.literal_eval(source.read(length).decode("utf-8"))
    return tuple(header["shape"]), bool(header["fortran_order"]), npy.descr_to_dtype(header["descr"])


def preview_npy(preview: Preview, source: io.BufferedIOBase) -> None:
    """dtype, shape and the first ``MAX_VALUES`` values (flattened in the order they are stored),
    read from the first ``HEAD_BYTES`` after the header."""
    import numpy as np

    shape, fortran_order, dtype = _npy_header(source)
    preview.shape, preview.dtype = shape, clip(str(dtype), MAX_CELL_CHARS)
    total = math.prod(shape)
    count = min(MAX_VALUES, total, HEAD_BYTES // dtype.itemsize if dtype.itemsize else total)
    data = source.read(count * dtype.itemsize) if dtype.itemsize else b""
    if len(data) < count * dtype.itemsize:
        raise ValueError(f"The .npy data ends after {len(data):,} bytes: the object is truncated")
    values = np.frombuffer(data, dtype=dtype, count=count) if dtype.itemsize else np.zeros(count, dtype)
    quote = dtype.kind in "SU"  # strings quoted, so that a comma inside one is not a separator
    shown = ", ".join(_clip_cell(preview, repr(v.item()) if quote else str(v)) for v in values)
    preview.text = f"[{shown}{', …' if count < total else ''}]"
    if count < total:
        order = "Fortran (column-major)" if fortran_order and len(shape) > 1 else "C (row-major)"
        preview.cut(f"First {count:,} of {total:,} values shown, flattened in {order} order.")


def preview_bin(preview: Preview, head: bytes, size: int) -> None:
    """The first ``HEX_BYTES`` bytes as hex, 16 to a line."""
    head = head[:HEX_BYTES]
    preview.text = "\n".join(head[i : i + 16].hex(" ") for i in range(0, len(head), 16)) or "(empty)"
    if size > len(head):
        preview.cut(f"First {len(head):,} of {size:,} bytes shown, as hex.")


def _trim_csv(preview: Preview, head: bytes) -> str:
    """The first ``MAX_ROWS`` records of ``head`` with their first ``MAX_COLUMNS`` columns (after
    the index), each field cut to a cell's size, as CSV again: pandas then reads only that."""
    records = csv.reader(io.StringIO(head.decode("utf-8", errors="replace"), newline=""))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for n, record in enumerate(records):
        if n > MAX_ROWS:
            break
        if n == 0 and len(record) - 1 > MAX_COLUMNS:
            _columns_cut(preview, MAX_COLUMNS, len(record) - 1)
        writer.writerow([_clip_cell(preview, f) for f in record[: MAX_COLUMNS + 1]])
    return out.getvalue()


def preview_csv(preview: Preview, head: bytes, complete: bool) -> None:
    import pandas as pd

    if not complete:
        head = head[: head.rfind(b"\n") + 1]
    frame = pd.read_csv(io.StringIO(_trim_csv(preview, head)), index_col=0, nrows=MAX_ROWS)
    _fill_frame(preview, frame)
    if not complete or len(frame) == MAX_ROWS:
        preview.cut(f"First {len(preview.rows):,} rows shown.")


# One XCom


def preview_stored(backend: type[ObjectStorageXCom], row: XComRow, ref: Reference, preview: Preview) -> None:
    """Fill ``preview`` from the object ``ref`` names, read only if it lies under ``row``'s own location."""
    try:
        rt, object_key = backend.object_key_for(ref, row)
        reader = RangeReader(rt.store, object_key, ref.size)
        try:
            if ref.format == "parquet":
                preview_parquet(preview, reader)
            elif ref.format == "csv":
                preview_csv(preview, reader.read_all_capped(HEAD_BYTES), complete=ref.size <= HEAD_BYTES)
            elif ref.format == "npy":  # header and first values: usually in the buffer's one GET
                preview_npy(preview, io.BufferedReader(reader, buffer_size=NPY_HEAD_BYTES))
            elif ref.format != "json":  # bytes, or a format this version does not know: the first bytes
                preview_bin(preview, reader.head(HEX_BYTES), ref.size)
            elif ref.size <= JSON_PRETTY_MAX:  # plain or typed JSON (the typed tree shown as it is stored)
                _fill_json(preview, json.loads(reader.read_all_capped(ref.size)))
            else:
                _json_head(preview, reader.read_all_capped(HEAD_BYTES), ref.size)
        finally:
            preview.bytes_read = reader.bytes_read
    except XComObjectMissingError:
        preview.error = f"The object {ref.uri} does not exist (deleted, or expired by a lifecycle rule)."
    except XComReferenceError as exc:  # refused: the one line, the page names the row
        preview.error = exc.reason
    except XComStorageError as exc:  # refused reference, storage unreachable: our message says it all
        preview.error = str(exc)
    except PreviewBoundError as exc:
        preview.error = str(exc)
    except Exception as exc:
        preview.error = f"{type(exc).__name__}: {exc}"


def preview_inline(preview: Preview, data: bytes) -> None:
    """The preview of a value kept in the row as its codec's bytes (``preview.format``, ``.kind``)."""
    if len(data) > MAX_INLINE_BYTES:
        raise PreviewBoundError(
            f"The inline value is {_size(len(data))}, over the {_size(MAX_INLINE_BYTES)} a preview reads, so it "
            "was not read."
        )
    if preview.format == "parquet":
        preview_parquet(preview, io.BytesIO(data))
    elif preview.format == "csv":
        preview_csv(preview, data[:HEAD_BYTES], complete=len(data) <= HEAD_BYTES)
    elif preview.format == "npy":
        preview_npy(preview, io.BytesIO(data))
    elif preview.format == "json" and len(data) <= JSON_PRETTY_MAX:  # typed JSON: its tree, as stored
        _fill_json(preview, json.loads(data))
    elif preview.format == "json":
        _json_head(preview, data[:HEAD_BYTES], len(data))
    else:
        preview_bin(preview, data[:HEX_BYTES], len(data))


def preview_xcom(backend: type[Any] | None, row: XComRow, stored: Any, skip: str | None = None) -> Preview:
    """The preview of one XCom row's stored ``value`` (what the metadata database holds). Never raises:
    whatever goes wrong for this row is the preview's ``error``, so one bad row cannot break a page.
    ``skip``: do not read the value, say this instead (where it is and its size are still shown)."""
    key = row.key or ""
    try:
        preview = _preview_xcom(backend, row, stored, skip)
    except Exception as exc:
        preview = Preview(key=key, where="unknown", format="?", error=f"{type(exc).__name__}: {exc}")
    _bound(preview)
    return preview


def _preview_xcom(backend: type[Any] | None, row: XComRow, stored: Any, skip: str | None) -> Preview:
    key = row.key or ""
    form = dbform.read(stored)
    if isinstance(form, Reference):
        where = "object storage" if form.store == DEFAULT else f"object storage (store {form.store!r})"
        preview = Preview(key=key, where=where, format=form.format, size=form.size, uri=form.uri, kind=form.kind)
        if skip:
            preview.error = skip
        elif backend is None or not issubclass(backend, ObjectStorageXCom):
            preview.error = (
                "The active [core] xcom_backend is not an object-storage backend of this project, so the "
                "object cannot be read here."
            )
        else:
            preview_stored(backend, row, form, preview)
        return preview
    if isinstance(form, dbform.InlineBytes):
        preview = Preview(key=key, where="database (inline)", format=form.format, size=len(form.data), kind=form.kind)
        if skip:
            preview.error = skip
            return preview
        try:
            preview_inline(preview, form.data)
        except PreviewBoundError as exc:
            preview.error = str(exc)
        except Exception as exc:
            preview.error = f"{type(exc).__name__}: {exc}"
        return preview
    preview = Preview(key=key, where="database (inline)", format="json")
    compact = json.dumps(form.value, default=str)
    preview.size = len(compact.encode())
    if skip:
        preview.error = skip
    elif preview.size <= JSON_PRETTY_MAX:
        _fill_json(preview, form.value)
    else:
        _set_text(preview, compact[: MAX_TEXT + 1], f"{_size(preview.size)} of JSON")
    return preview


def _escaped_size(text: str) -> int:
    return len(str(escape(text)).encode("utf-8", errors="replace"))


def _bound(preview: Preview) -> None:
    """The last word on a preview's size: every line clipped, rows cut until the whole fits in
    ``MAX_PREVIEW_BYTES``; the note said; ``rendered_bytes`` set."""
    for name in ("key", "where", "format", "kind", "uri", "dtype", "error"):
        value = getattr(preview, name)
        if isinstance(value, str):
            setattr(preview, name, clip(value, MAX_LINE_CHARS))
    if preview.error is not None:
        preview.error = " ".join(preview.error.split())  # one line
    fixed = sum(_escaped_size(s) for s in (preview.key, preview.where, preview.format, preview.kind))
    fixed += sum(_escaped_size(s) for s in (preview.uri, preview.dtype, preview.error, preview.text) if s)
    fixed += sum(_escaped_size(n) + _escaped_size(t) for n, t in preview.columns)
    fixed += _escaped_size(" ".join(preview.cuts)) + len(str(preview.shape or ""))
    sizes = [sum(_escaped_size(c) for c in r) for r in preview.rows]
    if fixed + sum(sizes) > MAX_PREVIEW_BYTES:
        while preview.rows and fixed + sum(sizes) > MAX_PREVIEW_BYTES:
            preview.rows.pop()
            sizes.pop()
        preview.cut(
            f"Rows truncated to keep the preview under {_size(MAX_PREVIEW_BYTES)}: {len(preview.rows):,} shown."
        )
    if preview.cuts:
        preview.note = clip(" ".join(preview.cuts), MAX_LINE_CHARS)
    preview.rendered_bytes = fixed + sum(sizes) + (_escaped_size(preview.note) if preview.note else 0)
