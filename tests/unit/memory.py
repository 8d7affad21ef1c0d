"""An in-memory object store and backends over it, for unit tests (real servers: tests/integration)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

import pytest

from include.xcom_backends.backend import ObjectStorageXCom
from include.xcom_backends.keys import XComRow
from include.xcom_backends.stores.base import Data, ObjectInfo, ObjectStore
from localdev import inprocess
from localdev.inprocess import Row


class MemoryStore(ObjectStore):
    """A store over a dict (the class-wide ``objects``: bytes by (bucket, key)), keeping the same
    contract as the real ones (tests/integration/test_store_contract.py). ``calls`` records the
    primitives used."""

    scheme = "mem"
    type_name = "mem"
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

    def _delete(self, keys: Sequence[str]) -> None:
        self.calls.append("delete")
        for k in keys:
            self._client.pop((self.bucket, k), None)

    def _list(self, prefix: str) -> Iterator[ObjectInfo]:
        found = sorted(k for (b, k) in self._client if b == self.bucket and k.startswith(prefix))
        epoch = datetime.fromtimestamp(0, UTC)
        bucket = self.bucket
        infos = [ObjectInfo(k, len(self._client[(bucket, k)]), self.modified.get((bucket, k), epoch)) for k in found]
        return iter(infos)

    def _is_not_found(self, exc: Exception) -> bool:
        return isinstance(exc, KeyError)


class MemJSON(ObjectStorageXCom):
    store_class = MemoryStore
    default_conn_id = "mem_conn"


class MemPandas(MemJSON):
    encodes_pandas = True


@pytest.fixture
def mem_backend(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("AIRFLOW_CONN_MEM_CONN", "generic://")
    for name in ("BUCKET", "PREFIX", "THRESHOLD_BYTES", "DATAFRAME_FORMAT", "CONN_ID"):
        monkeypatch.delenv(f"AIRFLOW__XCOM_STORAGE__{name}", raising=False)
    MemoryStore.objects.clear()
    MemoryStore.modified.clear()
    MemoryStore.calls.clear()
    ObjectStorageXCom.reset()
    yield
    ObjectStorageXCom.reset()


IDS: dict[str, Any] = {"key": "return_value", "task_id": "t", "dag_id": "d", "run_id": "r", "map_index": -1}


def push(backend: type[ObjectStorageXCom], value: Any, **kw: Any) -> Any:
    return inprocess.push(backend, value, {**IDS, **kw})


def row(**kw: Any) -> XComRow:
    """The identity of the row ``push(..., **kw)`` writes."""
    return XComRow.of(**{**IDS, **kw})


def stored_row(value: Any, **kw: Any) -> Row:
    """The XCom row ``push(..., **kw)`` writes, holding ``value``."""
    return Row(value, **{**IDS, **kw})
