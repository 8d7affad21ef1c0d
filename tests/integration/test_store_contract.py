"""The contract of a store (``include/xcom_backends/stores/base.py``), one suite for every store: the
in-memory one of the unit tests, and S3, MinIO, GCS and Azure against their real local servers.

What a store does: whole and ranged reads (a range past the end gives what is there), prefixes
that list exactly the keys starting with them, overwrite, empty objects, deleting a missing key is
not an error, and a missing object is ``FileNotFoundError`` naming its URI.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from include.xcom_backends.settings import XComStorageSettings
from include.xcom_backends.stores import AzureBlobStore, GCSStore, MinIOStore, ObjectStore, S3Store
from localdev import config
from localdev.settings_loader import connection_env
from tests.unit.memory import MemoryStore

STORES: dict[str, tuple[type[ObjectStore], str | None]] = {
    "memory": (MemoryStore, None),
    "s3": (S3Store, "s3_xcom_backend_conn"),
    "minio": (MinIOStore, "minio_xcom_backend_conn"),
    "gcs": (GCSStore, "gcs_xcom_backend_conn"),
    "azure": (AzureBlobStore, "azure_xcom_backend_conn"),
}


@pytest.fixture(params=list(STORES))
def store(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> ObjectStore:
    cls, conn_id = STORES[request.param]
    settings = XComStorageSettings.parse(
        bucket=config.BUCKET,
        prefix="contract",
        conn_id=conn_id or "mem",
        threshold_bytes=0,
        compression="snappy",
        dataframe_format="parquet",
        timeout_seconds=10,
        max_attempts=2,
    )
    if conn_id is None:
        return cls(settings, None)
    request.applymarker(pytest.mark.integration)
    stores = request.getfixturevalue("local_stores")
    for key, value in connection_env(stores.ports).items():
        monkeypatch.setenv(key, value)
    from airflow.sdk import BaseHook

    return cls(settings, BaseHook.get_connection(conn_id))


@pytest.fixture
def prefix() -> str:
    return f"contract/{uuid.uuid4().hex[:10]}/"


def test_put_then_get_whole_and_ranges(store: ObjectStore, prefix: str) -> None:
    data = bytes(range(256)) * 1000
    store.put(prefix + "a.bin", memoryview(data))  # an encoder's buffer, as the backend hands it on
    assert store.get(prefix + "a.bin") == data
    assert store.get_range(prefix + "a.bin", 0, 1) == data[:1]
    assert store.get_range(prefix + "a.bin", 1000, 5000) == data[1000:6000]
    assert store.get_range(prefix + "a.bin", len(data) - 10, 100) == data[-10:]  # past the end: what is there
    whole = store.get(prefix + "a.bin")  # bytes, or a read-only view of the client's buffer (no copy)
    assert isinstance(whole, bytes | memoryview) and memoryview(whole).readonly


def test_overwrite_and_empty_objects(store: ObjectStore, prefix: str) -> None:
    store.put(prefix + "k", b"first")
    store.put(prefix + "k", b"second")
    assert store.get(prefix + "k") == b"second"
    store.put(prefix + "empty", b"")
    assert store.get(prefix + "empty") == b""


def test_missing_object_is_file_not_found_naming_the_uri(store: ObjectStore, prefix: str) -> None:
    for read in (lambda: store.get(prefix + "nope"), lambda: store.get_range(prefix + "nope", 0, 10)):
        with pytest.raises(FileNotFoundError, match=f"{store.scheme}://{config.BUCKET}/{prefix}nope"):
            read()


def test_bad_ranges_are_refused_before_any_request(store: ObjectStore, prefix: str) -> None:
    for start, length in ((0, 0), (-1, 5), (3, -2)):
        with pytest.raises(ValueError, match="start >= 0 and length >= 1"):
            store.get_range(prefix + "k", start, length)


def test_delete_many_and_missing_keys(store: ObjectStore, prefix: str) -> None:
    keys = [f"{prefix}d/{i}" for i in range(3)]
    for k in keys:
        store.put(k, b"x")
    store.delete([keys[0], keys[1], prefix + "never-existed"])
    store.delete([])
    assert [o.key for o in store.list(prefix)] == [keys[2]]
    store.delete([keys[2]])
    store.delete([keys[2]])  # again: not an error
    assert list(store.list(prefix)) == []


def test_list_is_exactly_the_keys_under_the_prefix(store: ObjectStore, prefix: str) -> None:
    keys = [prefix + "x/1", prefix + "x/2/deep", prefix + "xy/3", prefix + "y/4"]
    for i, k in enumerate(keys):
        store.put(k, b"v" * (i + 1))
    infos = {o.key: o for o in store.list(prefix + "x/")}
    assert set(infos) == {prefix + "x/1", prefix + "x/2/deep"}
    assert infos[prefix + "x/2/deep"].size == 2
    now = datetime.now(UTC)
    assert all(now - timedelta(minutes=10) < o.modified < now + timedelta(minutes=10) for o in infos.values())
    assert {o.key for o in store.list(prefix + "x")} == set(keys[:3])  # a plain string prefix
    assert list(store.list(prefix + "nothing/")) == []
    store.delete(keys)


def test_uri_names_scheme_bucket_and_key(store: ObjectStore) -> None:
    assert store.uri("a/b.json") == f"{store.scheme}://{config.BUCKET}/a/b.json"
    assert store.bucket == config.BUCKET and store.endpoint


def test_a_client_can_be_injected() -> None:
    settings = XComStorageSettings.parse(
        bucket="b", prefix="p", conn_id="c", threshold_bytes=0, compression="snappy", dataframe_format="parquet"
    )
    client: dict[Any, bytes] = {}
    store = MemoryStore(settings, None, client=client)
    store.put("k", b"v")
    assert client == {("b", "k"): b"v"} and store.endpoint == "(injected client)"
