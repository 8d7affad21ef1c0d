"""An in-memory object store and backends over it, for unit tests (real servers: tests/integration)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

import pytest

from include.xcom_backends.backend import ObjectStorageXCom
from include.xcom_backends.keys import XComRow
from include.xcom_backends.stores.base import ObjectInfo


class MemoryStore:
    scheme = "mem"
    endpoint = "memory://"
    objects: ClassVar[dict[tuple[str, str], bytes]] = {}
    calls: ClassVar[list[str]] = []

    def __init__(self, settings: Any, connection: Any) -> None:
        self.settings = settings

    def put(self, bucket: str, key: str, data: bytes) -> None:
        self.calls.append("put")
        self.objects[(bucket, key)] = bytes(data)

    def get(self, bucket: str, key: str) -> bytes:
        self.calls.append("get")
        return self.objects[(bucket, key)]

    def get_range(self, bucket: str, key: str, start: int, length: int) -> bytes:
        self.calls.append("get_range")
        return self.objects[(bucket, key)][start : start + length]

    def delete(self, bucket: str, keys: Iterable[str]) -> None:
        self.calls.append("delete")
        for k in keys:
            self.objects.pop((bucket, k), None)

    def list(self, bucket: str, prefix: str) -> Iterator[ObjectInfo]:
        return iter([ObjectInfo(k, len(v), datetime.now(UTC)) for (b, k), v in self.objects.items() if b == bucket])


class MemJSON(ObjectStorageXCom):
    store_class = MemoryStore
    default_conn_id = "mem_conn"


class MemPandas(MemJSON):
    encodes_pandas = True


@dataclass
class Result:
    value: Any


@pytest.fixture
def mem_backend(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("AIRFLOW_CONN_MEM_CONN", "generic://")
    for name in ("BUCKET", "PREFIX", "THRESHOLD_BYTES", "DATAFRAME_FORMAT", "CONN_ID"):
        monkeypatch.delenv(f"AIRFLOW__XCOM_STORAGE__{name}", raising=False)
    MemoryStore.objects.clear()
    MemoryStore.calls.clear()
    ObjectStorageXCom.reset()
    yield
    ObjectStorageXCom.reset()


IDS = {"key": "return_value", "task_id": "t", "dag_id": "d", "run_id": "r", "map_index": -1}


def push(backend: type[ObjectStorageXCom], value: Any, **kw: Any) -> Any:
    stored = backend.serialize_value(value, **{**IDS, **kw})
    return json.loads(json.dumps(stored))  # what the API server keeps (JSON column)


def row(**kw: Any) -> XComRow:
    """The identity of the row ``push(..., **kw)`` writes."""
    return XComRow.of(**{**IDS, **kw})


@dataclass
class Row:
    """An XCom row as Airflow's XCom model has it: identity and stored value."""

    value: Any
    dag_id: str = "d"
    run_id: str = "r"
    task_id: str = "t"
    map_index: int = -1
    key: str = "return_value"
