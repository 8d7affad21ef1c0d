"""Routing rules and named stores (``[xcom_storage] stores`` / ``rules``), with in-memory stores.

The same rule set against the real local servers, through real DAG runs: tests/integration/test_routing.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest

from include.xcom_backends.dbform import is_reference
from include.xcom_backends.errors import XComReferenceError, XComStorageConfigError
from include.xcom_backends.keys import XComRow
from include.xcom_backends.routing import DEFAULT, INLINE, Routing, kind_of
from include.xcom_backends.settings import XComStorageSettings
from localdev.inprocess import Result
from tests.unit.memory import IDS, MemJSON, MemoryStore, MemPandas, push, stored_row

pytestmark = pytest.mark.usefixtures("mem_backend")

STORES = {
    "frames": {"type": "mem", "conn_id": "mem_conn", "bucket": "frames-bucket", "compression": "zstd"},
    "team_b": {"type": "mem", "conn_id": "mem_conn", "bucket": "team-b", "prefix": "b"},
}
RULES = [
    {"name": "secrets stay in the database", "key": "secret_*", "to": "inline"},
    {"name": "frames elsewhere", "kind": "frame", "to": "frames"},
    {"name": "team b", "dag_id": "team_b_*", "to": "team_b"},
    {"name": "tiny json inline", "kind": "json", "max_bytes": 16, "to": "inline"},
]


@pytest.fixture(autouse=True)
def mem_type(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    from include.xcom_backends import stores

    monkeypatch.setitem(stores.STORE_CLASSES, "mem", MemoryStore)
    yield


def configure(monkeypatch: pytest.MonkeyPatch, stores: Any = STORES, rules: Any = RULES) -> None:
    monkeypatch.setenv("AIRFLOW__XCOM_STORAGE__STORES", stores if isinstance(stores, str) else json.dumps(stores))
    monkeypatch.setenv("AIRFLOW__XCOM_STORAGE__RULES", rules if isinstance(rules, str) else json.dumps(rules))
    MemJSON.reset()


def buckets() -> set[str]:
    return {bucket for bucket, _ in MemoryStore.objects}


def test_without_rules_nothing_changes() -> None:
    ref = push(MemJSON, {"a": 1})
    assert is_reference(ref) and "store" not in ref  # rows read as before routing existed
    assert buckets() == {"airflow-xcom"}


def test_each_value_goes_where_its_first_matching_rule_says(monkeypatch: pytest.MonkeyPatch) -> None:
    configure(monkeypatch)
    frame = pd.DataFrame({"a": [1, 2, 3]})
    secret = push(MemPandas, {"password": "hunter2" * 10}, key="secret_token")
    assert secret == {"password": "hunter2" * 10} and MemoryStore.objects == {}
    tiny = push(MemPandas, {"a": 1})
    assert tiny == {"a": 1}
    framed = push(MemPandas, frame, dag_id="team_b_daily")  # rule 2 comes before rule 3
    assert framed["store"] == "frames" and framed["uri"].startswith("mem://frames-bucket/xcom/team_b_daily/")
    team_b = push(MemPandas, {"rows": list(range(100))}, dag_id="team_b_daily")
    assert team_b["store"] == "team_b" and team_b["uri"].startswith("mem://team-b/b/team_b_daily/")
    other = push(MemPandas, np.arange(10))  # no rule: today's behaviour
    assert "store" not in other and other["uri"].startswith("mem://airflow-xcom/xcom/")
    assert buckets() == {"frames-bucket", "team-b", "airflow-xcom"}
    for ref, ids in ((framed, {"dag_id": "team_b_daily"}), (team_b, {"dag_id": "team_b_daily"}), (other, {})):
        value = read(MemPandas, ref, **ids)
        if isinstance(value, pd.DataFrame):
            pd.testing.assert_frame_equal(value, frame)
        elif isinstance(value, np.ndarray):
            np.testing.assert_array_equal(value, np.arange(10))
        else:
            assert value == {"rows": list(range(100))}


def read(backend: type[MemJSON], ref: dict[str, Any], **ids: Any) -> Any:
    from include.xcom_backends.backend import _row

    row = XComRow.of(**{**IDS, **ids})
    with _row(row):
        return backend.deserialize_value(Result(ref))


def test_the_store_uses_its_own_compression(monkeypatch: pytest.MonkeyPatch) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    configure(monkeypatch)
    push(MemPandas, pd.DataFrame({"a": list(range(1000))}))
    ((bucket, key),) = MemoryStore.objects
    meta = pq.ParquetFile(pa.BufferReader(MemoryStore.objects[(bucket, key)])).metadata
    assert bucket == "frames-bucket" and meta.row_group(0).column(0).compression == "ZSTD"


def test_size_is_measured_as_the_rules_store_would_hold_it(monkeypatch: pytest.MonkeyPatch) -> None:
    configure(monkeypatch, rules=[{"name": "big frames", "kind": "frame", "min_bytes": 10_000, "to": "frames"}])
    small = push(MemPandas, pd.DataFrame({"a": [1]}))
    big = push(MemPandas, pd.DataFrame({"a": np.random.default_rng(0).random(5000)}))
    assert "store" not in small and big["store"] == "frames" and big["size"] >= 10_000


def test_a_reference_to_a_store_no_longer_configured_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    configure(monkeypatch)
    ref = push(MemPandas, {"rows": list(range(100))}, dag_id="team_b_daily")
    configure(monkeypatch, stores={}, rules=[])
    with pytest.raises(XComReferenceError, match=r"names store 'team_b', which .* does not define"):
        read(MemPandas, ref, dag_id="team_b_daily")
    assert MemoryStore.calls == ["put"]


def test_a_reference_naming_a_store_cannot_leave_that_stores_bucket(monkeypatch: pytest.MonkeyPatch) -> None:
    """A row that says store 'frames' while its URI is in the default bucket is not followed."""
    configure(monkeypatch)
    ref = push(MemPandas, {"rows": list(range(100))})
    forged = {**ref, "store": "frames"}
    with pytest.raises(XComReferenceError, match="outside the configured location mem://frames-bucket/xcom/"):
        read(MemPandas, forged)
    assert MemoryStore.calls == ["put"]


def test_purge_follows_the_store_of_the_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    configure(monkeypatch)
    ref = push(MemPandas, {"rows": list(range(100))}, dag_id="team_b_daily")
    assert buckets() == {"team-b"}
    MemPandas.purge(stored_row(ref, dag_id="team_b_daily"))
    assert MemoryStore.objects == {}


@pytest.mark.parametrize(
    ("stores", "rules", "message"),
    [
        ("{", "[]", r"stores: the value: not valid JSON"),
        ("[]", "[]", r"stores: the value: expected a JSON object"),
        ({"x": {"type": "ftp", "conn_id": "c", "bucket": "b"}}, [], r"store 'x': type 'ftp': expected one of"),
        ({"x": {"type": "mem", "bucket": "b"}}, [], r"store 'x': conn_id is required"),
        ({"x": {"type": "mem", "conn_id": "c", "bucket": "b", "region": "eu"}}, [], r"unknown field\(s\) \['region'\]"),
        (
            {"x": {"type": "mem", "conn_id": "c", "bucket": "b", "compression": "lz4"}},
            [],
            r"stores: store 'x': compression = 'lz4'",
        ),
        ({"default": {"type": "mem", "conn_id": "c", "bucket": "b"}}, [], r"store 'default': the names"),
        (
            {"x": {"type": "gcs", "conn_id": "c", "bucket": "b", "encryption": {"mode": "sse-c"}}},
            [],
            r"stores: store 'x': encryption: mode 'sse-c' is not one a gcs store supports \(kms, csek\)",
        ),
        ({}, [{"name": "r", "to": "nowhere"}], r"rule 1 \('r'\): to = 'nowhere' names no store"),
        ({}, [{"to": "inline"}], r"rule 1: name is required"),
        ({}, [{"name": "r", "kind": "table", "to": "inline"}], r"rule 1 \('r'\): kind 'table'"),
        ({}, [{"name": "r", "min_bytes": 10, "max_bytes": 5, "to": "inline"}], r"max_bytes 5 must be above"),
        ({}, [{"name": "r", "min_bytes": "1MB", "to": "inline"}], r"min_bytes must be a whole number"),
        ({}, [{"name": "r", "key": "", "to": "inline"}], r"key must be a non-empty glob"),
        (
            {},
            [{"name": "ok", "to": "inline"}, {"name": "r", "dagid": "x", "to": "inline"}],
            r"rule 2 \('r'\): unknown field\(s\) \['dagid'\]",
        ),
    ],
)
def test_invalid_configuration_names_the_store_or_rule(
    monkeypatch: pytest.MonkeyPatch, stores: Any, rules: Any, message: str
) -> None:
    configure(monkeypatch, stores=stores, rules=rules)
    with pytest.raises(XComStorageConfigError, match=message):
        push(MemJSON, {"a": 1})
    assert MemoryStore.calls == []


def test_route_order_and_the_threshold() -> None:
    default = XComStorageSettings.parse(
        bucket="b", prefix="p", conn_id="c", threshold_bytes=100, compression="snappy", dataframe_format="parquet"
    )
    routing = Routing.parse(default, "", json.dumps([{"name": "k", "key": "a*", "to": "inline"}]))
    row = XComRow.of(dag_id="d", run_id="r", task_id="t", map_index=None, key="abc")
    assert routing.route(row, "json", lambda spec: 10**6)[0] == INLINE
    other = XComRow.of(dag_id="d", run_id="r", task_id="t", map_index=None, key="b")
    assert routing.route(other, "json", lambda spec: 99) == (INLINE, None)
    assert routing.route(other, "json", lambda spec: 100) == (DEFAULT, None)


@pytest.mark.parametrize(
    ("binary", "kind"),
    [
        (None, "json"),
        ("dataframe", "frame"),
        ("polars.series", "frame"),
        ("arrow.table", "frame"),
        ("ndarray", "array"),
        ("bytes", "bytes"),
        ("bytearray", "bytes"),
    ],
)
def test_kinds(binary: str | None, kind: str) -> None:
    assert kind_of(binary) == kind


def test_the_ui_plugin_shows_an_invalid_rule_set_instead_of_reading(monkeypatch: pytest.MonkeyPatch) -> None:
    from include.xcom_backends.ui.app import _active_backend

    monkeypatch.setenv("AIRFLOW__CORE__XCOM_BACKEND", "tests.unit.memory.MemJSON")
    configure(monkeypatch, rules=[{"name": "frames to GCS", "to": "gsc"}])
    shown, backend = _active_backend()
    assert backend is None and "rule 1 ('frames to GCS'): to = 'gsc' names no store" in shown
    configure(monkeypatch)
    assert _active_backend() == ("tests.unit.memory.MemJSON", MemJSON)
