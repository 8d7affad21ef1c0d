"""Previews for the UI plugin: the first rows or the pretty JSON, read with as few bytes as possible."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from include.xcom_backends.ui import preview
from include.xcom_backends.ui.preview import preview_xcom
from tests.frames import mixed_frame
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


def test_missing_object_and_foreign_reference_say_why() -> None:
    ref = push(MemJSON, [1, 2, 3])
    MemoryStore.objects.clear()
    assert "does not exist" in (preview_xcom(MemJSON, row(), ref).error or "")
    foreign = {**ref, "uri": "mem://other-bucket/xcom/x.json"}
    assert "outside the configured location" in (preview_xcom(MemJSON, row(), foreign).error or "")
    assert "not an object-storage backend" in (preview_xcom(None, row(), ref).error or "")
