"""What an XCom holds, for people: location, size, format and the first rows, read with ranged GETs.

Used by the UI plugin (``plugins/xcom_storage_plugin.py``). A Parquet preview (pandas, polars or
pyarrow frames) reads the footer and the first pages of each column; a CSV preview the first 64 KiB;
a .npy preview its header and first values; a bytes preview its first 64 bytes, shown as hex; a JSON
preview (plain or typed) the whole object up to ``JSON_PRETTY_MAX`` bytes (to pretty-print it),
otherwise its first 64 KiB as text. Nothing here loads a large object whole, and nothing is sent to
the browser but the preview.
"""

from __future__ import annotations

import ast
import io
import json
import struct
from dataclasses import dataclass, field
from typing import Any

from include.xcom_backends import dbform
from include.xcom_backends.backend import ObjectStorageXCom
from include.xcom_backends.dbform import Reference
from include.xcom_backends.errors import XComObjectMissingError, XComReferenceError, XComStorageError
from include.xcom_backends.keys import XComRow
from include.xcom_backends.routing import DEFAULT
from include.xcom_backends.stores.base import ObjectStore, SeekableReader

MAX_ROWS = 20
MAX_TEXT = 20_000  # characters of JSON shown
HEAD_BYTES = 64 * 1024
JSON_PRETTY_MAX = 1024 * 1024
WHOLE_OBJECT_MAX = 256 * 1024  # smaller objects are fetched in one GET instead of several ranges
MAX_VALUES = 20  # first values of a numpy array shown
NPY_HEAD_BYTES = 4096  # first GET of a .npy object: its header, and usually its first values too
HEX_BYTES = 64  # first bytes of a bytes value shown, as hex


@dataclass
class Preview:
    """One XCom as the plugin shows it. ``where`` is "object storage" or "database (inline)";
    ``error`` says why no preview could be made. ``index_column``: whether ``columns`` starts with
    the frame's index (pandas) or not (polars, pyarrow). ``shape`` and ``dtype``: a numpy array's.
    ``note``: what part of the value ``rows`` or ``text`` show, when it is not the whole."""

    key: str
    where: str
    format: str
    size: int | None = None
    uri: str | None = None
    sha256: str | None = None
    kind: str = "value"
    total_rows: int | None = None
    columns: list[tuple[str, str]] = field(default_factory=list)  # (name, dtype)
    rows: list[list[str]] = field(default_factory=list)
    index_column: bool = True
    shape: tuple[int, ...] | None = None
    dtype: str | None = None
    text: str | None = None
    note: str | None = None
    truncated: bool = False
    bytes_read: int = 0
    error: str | None = None


class RangeReader(SeekableReader):
    """A read-only, seekable file over one stored object: every read is one ranged GET, except for
    objects up to ``WHOLE_OBJECT_MAX`` bytes, which are fetched whole by the first read."""

    def __init__(self, store: ObjectStore, key: str, size: int) -> None:
        super().__init__(size)
        self._store, self._key = store, key
        self._whole: bytes | None = None
        self.bytes_read = 0

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        length = min(len(view), self._size - self._pos)
        if length <= 0:
            return 0
        if self._size <= WHOLE_OBJECT_MAX:
            if self._whole is None:
                self._whole = self._fetch(0, self._size)
            data = self._whole[self._pos : self._pos + length]
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


def _cell(value: Any) -> str:
    import pandas as pd

    try:
        if pd.isna(value):
            return "<NA>" if value is pd.NA else str(value)
    except (TypeError, ValueError):
        pass
    return str(value)


def _fill_frame(preview: Preview, frame: Any) -> None:
    """Columns (index first, marked with its name or "(index)") and the first rows as strings."""
    head = frame.head(MAX_ROWS)
    if hasattr(head, "to_frame"):  # a Series
        head = head.to_frame()
    index_name = ", ".join(str(n) for n in head.index.names if n is not None) or "(index)"
    preview.columns = [(index_name, str(head.index.dtype))] + [(str(c), str(t)) for c, t in head.dtypes.items()]
    preview.rows = [
        [_cell(i)] + [_cell(v) for v in row] for i, row in zip(head.index, head.itertuples(index=False), strict=True)
    ]


def _fill_arrow(preview: Preview, table: Any) -> None:
    """Columns with their Arrow types (no index) and the first rows as strings (nulls as <NA>)."""
    import pandas as pd

    preview.index_column = False
    preview.columns = [(f.name, str(f.type)) for f in table.schema]
    frame = table.to_pandas(types_mapper=pd.ArrowDtype, ignore_metadata=True)
    preview.rows = [[_cell(v) for v in row] for row in frame.itertuples(index=False, name=None)]


def _fill_json(preview: Preview, value: Any) -> None:
    text = json.dumps(value, indent=2, ensure_ascii=False, default=str)
    preview.truncated = len(text) > MAX_TEXT
    preview.text = text[:MAX_TEXT]


def preview_parquet(preview: Preview, source: io.RawIOBase | io.BufferedIOBase) -> None:
    """Total rows from the footer, the first rows from the first row group(s). pandas frames as
    pandas shows them; polars and pyarrow frames (``preview.kind``) with their Arrow types."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(source, buffer_size=64 * 1024, pre_buffer=False)
    preview.total_rows = pf.metadata.num_rows
    batch = next(pf.iter_batches(batch_size=MAX_ROWS), None)
    table = pa.Table.from_batches([batch] if batch is not None else [], schema=pf.schema_arrow)
    if preview.kind.startswith(("polars.", "arrow.")):
        _fill_arrow(preview, table)
    else:
        _fill_frame(preview, table.to_pandas())
    preview.truncated = preview.total_rows > len(preview.rows)
    if preview.truncated:
        preview.note = f"First {len(preview.rows):,} of {preview.total_rows:,} rows shown."


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
    """dtype, shape and the first ``MAX_VALUES`` values (flattened in the order they are stored)."""
    import math

    import numpy as np

    shape, fortran_order, dtype = _npy_header(source)
    preview.shape, preview.dtype = shape, str(dtype)
    total = math.prod(shape)
    count = min(MAX_VALUES, total, HEAD_BYTES // dtype.itemsize if dtype.itemsize else total)
    data = source.read(count * dtype.itemsize) if dtype.itemsize else b""
    if len(data) < count * dtype.itemsize:
        raise ValueError(f"The .npy data ends after {len(data):,} bytes: the object is truncated")
    values = np.frombuffer(data, dtype=dtype, count=count) if dtype.itemsize else np.zeros(count, dtype)
    quote = dtype.kind in "SU"  # strings quoted, so that a comma inside one is not a separator
    shown = ", ".join(repr(v.item()) if quote else str(v) for v in values)
    preview.truncated = count < total
    preview.text = f"[{shown}{', …' if preview.truncated else ''}]"
    if preview.truncated:
        order = "Fortran (column-major)" if fortran_order and len(shape) > 1 else "C (row-major)"
        preview.note = f"First {count:,} of {total:,} values shown, flattened in {order} order."


def preview_bin(preview: Preview, head: bytes, size: int) -> None:
    """The first ``HEX_BYTES`` bytes as hex, 16 to a line."""
    head = head[:HEX_BYTES]
    preview.text = "\n".join(head[i : i + 16].hex(" ") for i in range(0, len(head), 16)) or "(empty)"
    preview.truncated = size > len(head)
    if preview.truncated:
        preview.note = f"First {len(head):,} of {size:,} bytes shown, as hex."


def preview_csv(preview: Preview, head: bytes, complete: bool) -> None:
    import pandas as pd

    if not complete:
        head = head[: head.rfind(b"\n") + 1]
    frame = pd.read_csv(io.BytesIO(head), index_col=0, nrows=MAX_ROWS)
    _fill_frame(preview, frame)
    preview.truncated = not complete or len(frame) == MAX_ROWS


def preview_stored(backend: type[ObjectStorageXCom], row: XComRow, ref: Reference) -> Preview:
    """The preview of the object ``ref`` names, read only if it lies under ``row``'s own location."""
    where = "object storage" if ref.store == DEFAULT else f"object storage (store {ref.store!r})"
    preview = Preview(key=row.key or "", where=where, format=ref.format, size=ref.size, uri=ref.uri,
                      sha256=ref.sha256, kind=ref.kind)  # fmt: skip
    try:
        rt, object_key = backend.object_key_for(ref, row)
        reader = RangeReader(rt.store, object_key, ref.size)
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
            preview.text = reader.read_all_capped(HEAD_BYTES).decode("utf-8", errors="replace")
            preview.truncated = True
        preview.bytes_read = reader.bytes_read
    except XComObjectMissingError:
        preview.error = f"The object {ref.uri} does not exist (deleted, or expired by a lifecycle rule)."
    except XComReferenceError as exc:  # refused: the one line, the page names the row
        preview.error = exc.reason
    except XComStorageError as exc:  # refused reference, storage unreachable: our message says it all
        preview.error = str(exc)
    except Exception as exc:
        preview.error = f"{type(exc).__name__}: {exc}"
    return preview


def preview_inline(preview: Preview, data: bytes) -> None:
    """The preview of a value kept in the row as its codec's bytes (``preview.format``, ``.kind``)."""
    if preview.format == "parquet":
        preview_parquet(preview, io.BytesIO(data))
    elif preview.format == "csv":
        preview_csv(preview, data, complete=True)
    elif preview.format == "npy":
        preview_npy(preview, io.BytesIO(data))
    elif preview.format == "json":  # typed JSON: its tree, as stored
        _fill_json(preview, json.loads(data))
    else:
        preview_bin(preview, data[:HEX_BYTES], len(data))


def preview_xcom(backend: type[Any] | None, row: XComRow, stored: Any) -> Preview:
    """The preview of one XCom row's stored ``value`` (what the metadata database holds). Never raises:
    whatever goes wrong for this row is the preview's ``error``, so one bad row cannot break a page."""
    key = row.key or ""
    try:
        return _preview_xcom(backend, row, stored)
    except Exception as exc:
        return Preview(key=key, where="unknown", format="?", error=f"{type(exc).__name__}: {exc}")


def _preview_xcom(backend: type[Any] | None, row: XComRow, stored: Any) -> Preview:
    key = row.key or ""
    form = dbform.read(stored)
    if isinstance(form, Reference):
        if backend is None or not issubclass(backend, ObjectStorageXCom):
            return Preview(key=key, where="object storage", format=form.format, size=form.size, uri=form.uri,
                           error="The active [core] xcom_backend is not an object-storage backend of this "
                           "project, so the object cannot be read here.")  # fmt: skip
        return preview_stored(backend, row, form)
    if isinstance(form, dbform.InlineBytes):
        preview = Preview(key=key, where="database (inline)", format=form.format, size=len(form.data),
                          kind=form.kind)  # fmt: skip
        try:
            preview_inline(preview, form.data)
        except Exception as exc:
            preview.error = f"{type(exc).__name__}: {exc}"
        return preview
    preview = Preview(key=key, where="database (inline)", format="json")
    preview.size = len(json.dumps(form.value, default=str).encode())
    _fill_json(preview, form.value)
    return preview
