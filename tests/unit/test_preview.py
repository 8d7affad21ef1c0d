"""Previews for the UI plugin: the first rows or the pretty JSON, read with as few bytes as possible."""

from __future__ import annotations

import gc
import json
import sys
import tracemalloc
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from include.xcom_backends import dbform
from include.xcom_backends.codecs import Encoded
from include.xcom_backends.ui import preview
from include.xcom_backends.ui.preview import preview_xcom
from tests.frames import mixed_frame
from tests.unit import hostile
from tests.unit.memory import MemJSON, MemoryStore, MemPandas, push, row

pytestmark = pytest.mark.usefixtures("mem_backend")


def test_large_parquet_preview_reads_a_fraction_of_the_object() -> None:
    df = mixed_frame(1_000_000)
    ref = push(MemPandas, df)
    MemoryStore.calls.clear()
    p = preview_xcom(MemPandas, row(), ref)
    assert p.error is None and p.where == "object storage" and p.uri == ref["uri"] and p.size == ref["size"]
    assert p.total_rows == 1_000_000 and p.truncated
    assert [name for name, _ in p.columns] == ["row_id", "int", "float", "bool", "string", "ts", "cat", "nullable"]
    assert dict(p.columns)["ts"] == "datetime64[us, Europe/Berlin]" and dict(p.columns)["cat"] == "category"
    assert len(p.rows) == preview.MAX_ROWS
    assert p.rows[1] == ["10", "1", "nan", "False", "ü", "2024-03-31 01:58:00+01:00", "y", "1"]
    assert p.rows[5][-1] == "<NA>" and p.rows[2][4] == "<NA>"
    assert 0 < p.bytes_read < ref["size"] / 4, (p.bytes_read, ref["size"])
    assert set(MemoryStore.calls) == {"get_range"}


def test_small_object_is_fetched_in_one_request() -> None:
    ref = push(MemPandas, pd.DataFrame({"pokemon": ["pikachu", "vulpix"], "xp": [28.0, 10.0]}))
    MemoryStore.calls.clear()
    p = preview_xcom(MemPandas, row(), ref)
    assert p.rows == [["0", "pikachu", "28.0"], ["1", "vulpix", "10.0"]] and not p.truncated
    assert MemoryStore.calls == ["get_range"] and p.bytes_read == ref["size"]


def test_series_and_named_index() -> None:
    s = pd.Series([1.5, 2.5], index=pd.Index(["a", "b"], name="letter"), name="value")
    p = preview_xcom(MemPandas, row(), push(MemPandas, s))
    assert p.kind == "series" and p.columns == [("letter", "str"), ("value", "float64")]
    assert p.rows == [["a", "1.5"], ["b", "2.5"]]


def test_csv_preview_reads_the_head_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__XCOM_STORAGE__DATAFRAME_FORMAT", "csv")
    MemPandas.reset()
    ref = push(MemPandas, pd.DataFrame({"a": range(200_000), "b": ["x"] * 200_000}))
    p = preview_xcom(MemPandas, row(), ref)
    assert p.format == "csv" and p.rows[:2] == [["0", "0", "x"], ["1", "1", "x"]] and p.truncated
    assert p.bytes_read == preview.HEAD_BYTES < ref["size"]


def test_json_is_pretty_printed() -> None:
    value = {"pokemon": ["pikachu", "vulpix"], "base_experience": [112, 60]}
    p = preview_xcom(MemJSON, row(), push(MemJSON, value))
    assert p.format == "json" and p.text == json.dumps(value, indent=2) and not p.truncated


def test_large_json_shows_its_beginning_as_text() -> None:
    value = [{"n": i, "text": "x" * 50} for i in range(40_000)]  # ~2.5 MB
    ref = push(MemJSON, value)
    p = preview_xcom(MemJSON, row(), ref)
    assert p.truncated and p.text is not None and p.text.startswith('[{"n":0,')
    assert p.bytes_read == preview.HEAD_BYTES


def test_inline_values_are_shown_without_storage_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__XCOM_STORAGE__THRESHOLD_BYTES", "100000")
    MemPandas.reset()
    frame = push(MemPandas, pd.DataFrame({"a": [1, 2]}))
    plain = push(MemPandas, {"small": [1, 2]})
    MemoryStore.calls.clear()
    p = preview_xcom(MemPandas, row(), frame)
    assert p.where == "database (inline)" and p.format == "parquet" and p.rows == [["0", "1"], ["1", "2"]]
    q = preview_xcom(MemPandas, row(), plain)
    assert q.where == "database (inline)" and q.text is not None and '"small"' in q.text
    assert MemoryStore.calls == []


def _stored(ref: dict[str, Any]) -> bytes:
    ((data,),) = [[v for (_, k), v in MemoryStore.objects.items() if ref["uri"].endswith("/" + k)]]
    return data


@pytest.mark.parametrize(
    ("value", "kind", "columns", "rows"),
    [
        (
            pl.DataFrame({"a": [1, None, 3], "s": ["x", None, "z"]}),
            "polars.dataframe",
            [("a", "int64"), ("s", "large_string")],
            [["1", "x"], ["<NA>", "<NA>"], ["3", "z"]],
        ),
        (pl.Series("v", [1.5, 2.5]), "polars.series", [("v", "double")], [["1.5"], ["2.5"]]),
        (
            pa.table({"i": pa.array([1, None], pa.int32()), "ts": pa.array([datetime(2024, 1, 1)] * 2)}),
            "arrow.table",
            [("i", "int32"), ("ts", "timestamp[us]")],
            [["1", "2024-01-01 00:00:00"], ["<NA>", "2024-01-01 00:00:00"]],
        ),
        (
            pa.RecordBatch.from_pydict({"l": [[1, 2], []]}),
            "arrow.recordbatch",
            [("l", "list<item: int64>")],
            [["[1, 2]"], ["[]"]],
        ),
    ],
)
def test_polars_and_arrow_frames_show_their_arrow_types(
    monkeypatch: pytest.MonkeyPatch, value: Any, kind: str, columns: list[tuple[str, str]], rows: list[list[str]]
) -> None:
    ref = push(MemPandas, value)
    monkeypatch.setitem(sys.modules, "polars", None)  # a preview does not need polars
    p = preview_xcom(MemPandas, row(), ref)
    assert p.error is None and p.format == "parquet" and p.kind == kind and not p.index_column
    assert p.columns == columns and p.rows == rows and p.total_rows == len(rows) and not p.truncated


def test_large_arrow_table_preview_reads_a_fraction_of_the_object() -> None:
    n = 1_000_000
    ref = push(MemPandas, pa.table({"n": np.arange(n), "x": np.linspace(0, 1, n)}))
    MemoryStore.calls.clear()
    p = preview_xcom(MemPandas, row(), ref)
    assert p.error is None and p.total_rows == n and p.truncated and len(p.rows) == preview.MAX_ROWS
    assert p.columns == [("n", "int64"), ("x", "double")] and p.rows[1] == ["1", str(1 / (n - 1))]
    assert p.note == f"First {preview.MAX_ROWS} of 1,000,000 rows shown."
    assert 0 < p.bytes_read < ref["size"] / 4 and set(MemoryStore.calls) == {"get_range"}


def test_large_npy_preview_reads_the_header_and_first_values_in_one_request() -> None:
    ref = push(MemPandas, np.arange(1_000_000, dtype="float64").reshape(1000, 1000))
    MemoryStore.calls.clear()
    p = preview_xcom(MemPandas, row(), ref)
    assert p.error is None and p.format == "npy" and p.kind == "ndarray"
    assert p.shape == (1000, 1000) and p.dtype == "float64" and p.total_rows is None and p.columns == []
    first = ", ".join(f"{float(i)}" for i in range(preview.MAX_VALUES))
    assert p.text == f"[{first}, …]" and p.truncated
    assert p.note == "First 20 of 1,000,000 values shown, flattened in C (row-major) order."
    assert MemoryStore.calls == ["get_range"] and p.bytes_read == preview.NPY_HEAD_BYTES < ref["size"]


def test_npy_preview_of_other_dtypes_and_orders() -> None:
    fortran = preview_xcom(MemPandas, row(), push(MemPandas, np.asfortranarray(np.arange(6).reshape(2, 3))))
    assert fortran.text == "[0, 3, 1, 4, 2, 5]" and fortran.shape == (2, 3) and not fortran.truncated
    strings = preview_xcom(MemPandas, row(), push(MemPandas, np.array(["a, b", "ü"])))
    assert strings.text == "['a, b', 'ü']" and strings.dtype == "<U4"
    scalar = preview_xcom(MemPandas, row(), push(MemPandas, np.array(7, dtype="int8")))
    assert scalar.shape == () and scalar.text == "[7]"
    empty = preview_xcom(MemPandas, row(), push(MemPandas, np.zeros((0, 3))))
    assert empty.shape == (0, 3) and empty.text == "[]" and not empty.truncated
    with pytest.warns(UserWarning, match="format 3.0"):  # a field name beyond Latin-1: a UTF-8 header
        ref = push(MemPandas, np.array([(1.5, 2)], dtype=[("名", "f8"), ("n", "i4")]))
    structured = preview_xcom(MemPandas, row(), ref)
    assert structured.error is None and structured.dtype == "[('名', '<f8'), ('n', '<i4')]"
    assert structured.text == "[(1.5, 2)]"


def test_bytes_preview_is_one_ranged_get_of_at_most_64_bytes() -> None:
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 400  # ~100 KB: below WHOLE_OBJECT_MAX, still not read
    ref = push(MemPandas, png)
    MemoryStore.calls.clear()
    p = preview_xcom(MemPandas, row(), ref)
    assert p.error is None and p.format == "bin" and p.kind == "bytes" and p.size == len(png)
    assert p.text is not None and p.text.startswith("89 50 4e 47 0d 0a 1a 0a 00 01 02 03 04 05 06 07\n08 09")
    assert p.text.splitlines() == [png[i : i + 16].hex(" ") for i in range(0, 64, 16)]
    assert p.truncated and p.note == f"First 64 of {len(png):,} bytes shown, as hex."
    assert MemoryStore.calls == ["get_range"] and p.bytes_read == preview.HEX_BYTES
    small = preview_xcom(MemPandas, row(), push(MemPandas, bytearray(b"\x00\xff")))
    assert small.kind == "bytearray" and small.text == "00 ff" and not small.truncated and small.bytes_read == 2
    assert preview_xcom(MemPandas, row(), push(MemPandas, b"")).text == "(empty)"


def test_typed_json_shows_its_tree() -> None:
    value = {"when": datetime(2024, 1, 1, tzinfo=UTC), "pair": (1, 2)}
    ref = push(MemJSON, value)
    p = preview_xcom(MemJSON, row(), ref)
    assert p.error is None and p.format == "json" and p.kind == "typed" and not p.truncated
    assert p.text == json.dumps(json.loads(_stored(ref)), indent=2) and '"__classname__": "builtins.tuple"' in p.text


def test_large_typed_json_shows_its_beginning_as_text() -> None:
    ref = push(MemJSON, [(i, "x" * 50) for i in range(40_000)])  # ~5 MB of typed JSON
    p = preview_xcom(MemJSON, row(), ref)
    assert p.kind == "typed" and p.truncated and p.text is not None
    assert p.text.startswith('[{"__classname__":"builtins.tuple"')
    assert p.bytes_read == preview.HEAD_BYTES


def test_inline_new_kinds_are_shown_without_storage_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__XCOM_STORAGE__THRESHOLD_BYTES", "100000")
    MemPandas.reset()
    stored = {
        "npy": push(MemPandas, np.arange(30, dtype="int16")),
        "bin": push(MemPandas, bytes(100)),
        "polars": push(MemPandas, pl.DataFrame({"a": ["x"]})),
        "arrow": push(MemPandas, pa.table({"b": [True]})),
        "typed": push(MemPandas, {"pair": (1, 2)}),
    }
    MemoryStore.calls.clear()
    p = {name: preview_xcom(MemPandas, row(), value) for name, value in stored.items()}
    assert MemoryStore.calls == [] and MemoryStore.objects == {}
    assert all(q.where == "database (inline)" and q.error is None and q.bytes_read == 0 for q in p.values())
    assert p["npy"].shape == (30,) and p["npy"].dtype == "int16" and p["npy"].truncated
    assert p["npy"].text == "[" + ", ".join(map(str, range(20))) + ", …]"
    assert p["bin"].size == 100 and p["bin"].text == "\n".join(["00" + " 00" * 15] * 4) and p["bin"].truncated
    assert p["polars"].kind == "polars.dataframe" and p["polars"].columns == [("a", "large_string")]
    assert p["polars"].rows == [["x"]] and p["polars"].total_rows == 1
    assert p["arrow"].columns == [("b", "bool")] and p["arrow"].rows == [["True"]] and not p["arrow"].index_column
    assert p["typed"].format == "json" and p["typed"].kind == "typed"
    assert p["typed"].text == json.dumps(stored["typed"]["json"], indent=2)


def test_unreadable_values_are_errors_on_their_own_card() -> None:
    inline = {"__xcom_storage__": "inline", "format": "npy", "kind": "ndarray", "base64": "bm90IG5weQ=="}
    p = preview_xcom(MemPandas, row(), inline)
    assert p.where == "database (inline)" and p.format == "npy" and p.error and "ValueError" in p.error
    ref = push(MemPandas, np.arange(100_000))
    ((bucket, key),) = MemoryStore.objects
    MemoryStore.objects[(bucket, key)] = MemoryStore.objects[(bucket, key)][:200]  # cut after the header
    q = preview_xcom(MemPandas, row(), {**ref, "size": 200})
    assert q.where == "object storage" and q.error and "truncated" in q.error


def test_missing_object_and_foreign_reference_say_why() -> None:
    ref = push(MemJSON, [1, 2, 3])
    MemoryStore.objects.clear()
    assert "does not exist" in (preview_xcom(MemJSON, row(), ref).error or "")
    foreign = {**ref, "uri": "mem://other-bucket/xcom/x.json"}
    assert "outside the configured location" in (preview_xcom(MemJSON, row(), foreign).error or "")
    assert "not an object-storage backend" in (preview_xcom(None, row(), ref).error or "")


# Bounds: a value small in storage that expands hugely when read must give a small preview page, read
# with bounded memory, and say what it cut (tests/unit/hostile.py builds such values).


def _stored_as(data: bytes, fmt: str, kind: str) -> dict[str, Any]:
    """A reference (valid for ``row()``) to an object holding ``data``, as format ``fmt``."""
    ref = push(MemPandas, b"placeholder")
    ((bucket, key),) = [k for k in MemoryStore.objects if ref["uri"].endswith("/" + k[1])]
    MemoryStore.objects[(bucket, key)] = data
    return {**ref, "size": len(data), "format": fmt, "kind": kind}


def _inline_as(data: bytes, fmt: str, kind: str) -> dict[str, Any]:
    value: dict[str, Any] = dbform.inline(None, Encoded(data, fmt, kind))
    return value


def _rendered(p: preview.Preview) -> bytes:
    from include.xcom_backends.ui.app import templates

    html = templates.get_template("task_instance.html").render(
        dag_id="d", run_id="r", task_id="t", map_index=-1, previews=[p], backend_path="x", user="u"
    )
    return html.encode()


def _preview_measured(stored: Any) -> tuple[preview.Preview, int, int]:
    """The preview of ``stored`` with the peak bytes Python and Arrow allocated to make it."""
    gc.collect()
    with hostile.arrow_peak() as arrow_peak:
        tracemalloc.start()
        try:
            p = preview_xcom(MemPandas, row(), stored)
            _, python_peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        return p, python_peak, arrow_peak()


def _cells(p: preview.Preview) -> list[str]:
    return [cell for r in p.rows for cell in r]


@pytest.fixture(scope="module")
def hostile_parquet() -> dict[str, bytes]:
    return {name: build() for name, build in hostile.PARQUET.items()}


@pytest.mark.parametrize("kind", ["dataframe", "arrow.table"])
@pytest.mark.parametrize("where", ["inline", "stored"])
@pytest.mark.parametrize("case", list(hostile.PARQUET))
def test_expanding_parquet_gives_a_bounded_preview(
    hostile_parquet: dict[str, bytes], case: str, where: str, kind: str
) -> None:
    data = hostile_parquet[case]
    assert len(data) < 3_000_000  # small in storage...
    stored = (_inline_as if where == "inline" else _stored_as)(data, "parquet", kind)
    p, python_peak, arrow_peak = _preview_measured(stored)
    assert p.error is None, p.error
    html = _rendered(p)
    assert len(html) < 300_000, len(html)  # ...and small on the page
    assert python_peak < 32 * 2**20, f"Python peak {python_peak / 2**20:.0f} MiB"
    assert arrow_peak < 96 * 2**20, f"Arrow peak {arrow_peak / 2**20:.0f} MiB"
    assert max(len(c) for c in _cells(p)) <= 201 and max(len(name) for name, _ in p.columns) <= 101
    assert p.truncated and p.note and "truncated" in p.note
    if case == "long_cells":
        assert len(p.rows) == 20 and all(c.endswith("…") for c in _cells(p) if c.startswith("x"))
        assert "characters" in p.note
    elif case == "many_columns":
        assert len(p.columns) <= 51 and p.total_rows == 2 and len(p.rows) == 2
        assert "2,000 columns" in p.note and "2,000 columns" in html.decode()
    elif case == "long_names":
        assert [name[:3] for name, _ in p.columns if name.startswith("n")] == ["nnn"] * 3
        assert all(name.endswith("…") for name, _ in p.columns if name.startswith("n"))
    else:
        ((*_, cell),) = p.rows
        assert cell.startswith("['yyy") and cell.endswith("…")


def test_parquet_columns_over_the_uncompressed_bound_are_not_read(
    monkeypatch: pytest.MonkeyPatch, hostile_parquet: dict[str, bytes]
) -> None:
    """The footer says how many bytes a column chunk decompresses to: a column over the bound is not
    read at all, the others are, and the note names the one left out."""
    monkeypatch.setattr(preview, "MAX_PARQUET_UNCOMPRESSED", 2 * 2**20)
    data = hostile_parquet["long_cells"]
    for stored in (_inline_as(data, "parquet", "dataframe"), _stored_as(data, "parquet", "arrow.table")):
        p, _, arrow_peak = _preview_measured(stored)
        assert p.error is None and [name for name, _ in p.columns if name != "(index)"] == ["n"]
        assert [r[-1] for r in p.rows] == [str(i) for i in range(20)]
        assert p.note and "'s'" in p.note and "9.5 MiB" in p.note and "not read" in p.note
        assert arrow_peak < 2 * 2**20, f"{arrow_peak / 2**20:.1f} MiB"  # s's pages were never decompressed
    only_long = hostile._parquet(pa.table({"s": pa.array(["x" * 3_000_000])}))
    p = preview_xcom(MemPandas, row(), _inline_as(only_long, "parquet", "dataframe"))
    assert p.error and "\n" not in p.error and "2.0 MiB" in p.error and "'s'" in p.error


def test_parquet_footer_over_its_bound_is_not_parsed(
    monkeypatch: pytest.MonkeyPatch, hostile_parquet: dict[str, bytes]
) -> None:
    monkeypatch.setattr(preview, "MAX_PARQUET_FOOTER", 100_000)
    data = hostile_parquet["long_names"]  # a 586 KiB footer (the names are kept there, uncompressed)
    stored = _stored_as(data, "parquet", "dataframe")
    for value, calls in ((_inline_as(data, "parquet", "dataframe"), []), (stored, ["get_range"])):
        MemoryStore.calls.clear()
        p = preview_xcom(MemPandas, row(), value)
        assert p.error and "footer" in p.error and "586.3 KiB" in p.error and "\n" not in p.error
        assert p.columns == [] and MemoryStore.calls == calls  # the object: one GET of its end, not the footer
        assert p.bytes_read <= preview.PARQUET_TAIL_BYTES


@pytest.mark.parametrize("where", ["inline", "stored"])
def test_wide_csv_gives_a_bounded_preview(monkeypatch: pytest.MonkeyPatch, where: str) -> None:
    data = hostile.wide_csv()
    stored = (_inline_as if where == "inline" else _stored_as)(data, "csv", "dataframe")
    p, python_peak, _ = _preview_measured(stored)
    assert p.error is None, p.error
    assert len(_rendered(p)) < 300_000 and python_peak < 32 * 2**20
    assert len(p.columns) <= 51 and p.rows[0][1].startswith("zzz") and p.rows[0][1].endswith("…")
    assert max(len(c) for c in _cells(p)) <= 201
    assert p.truncated and p.note and "columns" in p.note and "characters" in p.note


@pytest.mark.parametrize("where", ["inline", "stored"])
def test_long_strings_in_an_array_give_a_bounded_preview(where: str) -> None:
    stored = (_inline_as if where == "inline" else _stored_as)(hostile.long_strings_npy(), "npy", "ndarray")
    p = preview_xcom(MemPandas, row(), stored)
    assert p.error is None and p.shape == (50,) and p.text is not None
    assert len(p.text) < 5_000 and "qqq…" in p.text and p.truncated and p.note and "characters" in p.note


def test_json_text_cut_says_so() -> None:
    value = {"text": "j" * 100_000}
    for stored in (value, push(MemJSON, value)):  # inline plain JSON, and an object
        p = preview_xcom(MemJSON, row(), stored)
        assert p.text is not None and len(p.text) <= preview.MAX_TEXT + 1 and p.text.endswith("…")
        assert p.truncated and p.note and "characters" in p.note


def test_large_inline_json_is_not_pretty_printed_whole() -> None:
    value = [{"n": i, "text": "x" * 50} for i in range(200_000)]  # ~13 MB of JSON, in the row
    p, python_peak, _ = _preview_measured(value)
    assert p.text is not None and p.text.startswith('[{"n": 0,') and p.truncated
    assert len(p.text) <= preview.MAX_TEXT + 1 and python_peak < 40 * 2**20, f"{python_peak / 2**20:.0f} MiB"


def test_inline_value_over_its_bound_is_not_previewed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(preview, "MAX_INLINE_BYTES", 1000)
    p = preview_xcom(MemPandas, row(), _inline_as(bytes(3000), "bin", "bytes"))
    assert p.error and "\n" not in p.error and "inline" in p.error and p.text is None
    assert p.where == "database (inline)" and p.format == "bin"
