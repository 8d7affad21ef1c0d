"""An in-memory object store and backends over it, for unit tests (real servers: tests/integration)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

import pytest

from include.xcom_backends.backend import ObjectStorageXCom
from include.xcom_backends.keys import XComRow
from include.xcom_backends.stores.base import Data, ObjectInfo, ObjectStore


class MemoryStore(ObjectStore):
    """A store over a dict (the class-wide ``objects``: bytes by (bucket, key)), keeping the same
    contract as the real ones (tests/integration/test_store_contract.py). ``calls`` records the
    primitives used."""

    scheme = "mem"
    objects: ClassVar[dict[tuple[str, str], bytes]] = {}
    modified: ClassVar[dict[tuple[str, str], datetime]] = {}
    calls: ClassVar[list[str]] = []

    def _connect(self, settings: Any, connection: Any) -> Any:
        self.endpoint = "memory://"
        return MemoryStore.objects

    def _put(self, key: str, data: Data) -> None:
        self.calls.append("put")
        self._client[(self.bucket, key)] = bytes(data)
        self.modified[(self.bucket, key)] = datetime.now(UTC)

    def _get(self, key: str, start: int, length: int | None) -> bytes:
        self.calls.append("get" if (start, length) == (0, None) else "get_range")
        data: bytes = self._client[(self.bucket, key)]
        return data[start:] if length is None else data[start : start + length]

    def _delete(self, keys: list[str]) -> None:
        self.calls.append("delete")
        for k in keys:
            self._client.pop((self.bucket, k), None)

    def _list(self, prefix: str) -> Iterator[ObjectInfo]:
        found = sorted(k for (b, k) in self._client if b == self.bucket and k.startswith(prefix))
        epoch = datetime.fromtimestamp(0, UTC)
        return iter([ObjectInfo(k, len(self._client[(self.bucket, k)]),
                                self.modified.get((self.bucket, k), epoch)) for k in found])  # fmt: skip

    def _is_not_found(self, exc: Exception) -> bool:
        return isinstance(exc, KeyError)


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
