"""Encryption at rest against the local servers that implement it: SeaweedFS enforces SSE-C (an
object written with a customer key cannot be read without it) and records SSE-S3. The other modes
are checked as the exact requests each SDK sends (tests/unit/test_encryption.py); docs/encryption.md
says which is which.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from include.xcom_backends.settings import XComStorageSettings
from include.xcom_backends.stores import S3Store
from localdev import config
from localdev.inprocess import Result, push
from localdev.settings_loader import connection_env

pytestmark = pytest.mark.integration
KEY = bytes(range(32))
IDS = {"key": "return_value", "task_id": "t", "dag_id": "d_encrypted", "run_id": "r", "map_index": -1}


@pytest.fixture
def s3_env(local_stores: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The session's S3 connection, with a customer key in its extras."""
    env = connection_env(local_stores.ports)
    conn = json.loads(env["AIRFLOW_CONN_S3_XCOM_BACKEND_CONN"])
    conn.setdefault("extra", {})["encryption_key"] = base64.b64encode(KEY).decode()
    monkeypatch.setenv("AIRFLOW_CONN_S3_XCOM_BACKEND_CONN", json.dumps(conn))
    return conn


def store(encryption: Any) -> S3Store:
    from airflow.sdk import BaseHook

    settings = XComStorageSettings.parse(
        bucket=config.BUCKET,
        prefix="it-encryption",
        conn_id="s3_xcom_backend_conn",
        threshold_bytes=0,
        compression="snappy",
        dataframe_format="parquet",
        timeout_seconds=10,
        max_attempts=1,
        encryption=encryption,
    )
    return S3Store(settings, BaseHook.get_connection("s3_xcom_backend_conn"))


def test_sse_c_object_cannot_be_read_without_the_key(s3_env: Any, s3_client: Any) -> None:
    encrypted = store({"mode": "sse-c"})
    encrypted.put("it-encryption/c.json", b'{"secret": 1}')
    assert bytes(encrypted.get("it-encryption/c.json")) == b'{"secret": 1}'
    with pytest.raises(ClientError):  # no key
        s3_client.get_object(Bucket=config.BUCKET, Key="it-encryption/c.json")
    with pytest.raises(ClientError):  # another key
        s3_client.get_object(
            Bucket=config.BUCKET, Key="it-encryption/c.json", SSECustomerAlgorithm="AES256", SSECustomerKey=bytes(32)
        )
    got = s3_client.get_object(
        Bucket=config.BUCKET, Key="it-encryption/c.json", SSECustomerAlgorithm="AES256", SSECustomerKey=KEY
    )
    assert got["Body"].read() == b'{"secret": 1}' and got["SSECustomerAlgorithm"] == "AES256"
    with pytest.raises(Exception, match=r"c\.json"):  # our store without the key cannot read it either
        store(None).get("it-encryption/c.json")


def test_sse_s3_is_recorded_on_the_object(s3_env: Any, s3_client: Any) -> None:
    store({"mode": "sse-s3"}).put("it-encryption/s.json", b"{}")
    assert s3_client.head_object(Bucket=config.BUCKET, Key="it-encryption/s.json")["ServerSideEncryption"] == "AES256"


def test_backend_with_a_customer_key_round_trips_and_keeps_the_key_out_of_the_row(
    s3_env: Any, s3_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from include.xcom_backends import S3JSONXComBackend

    monkeypatch.setenv("AIRFLOW__XCOM_STORAGE__ENCRYPTION", '{"mode": "sse-c"}')
    monkeypatch.setenv("AIRFLOW__XCOM_STORAGE__PREFIX", "it-encryption")
    S3JSONXComBackend.reset()
    try:
        ref = push(S3JSONXComBackend, {"rows": [1, 2, 3]}, IDS)
        assert s3_env["extra"]["encryption_key"] not in json.dumps(ref)
        assert S3JSONXComBackend.deserialize_value(Result(ref)) == {"rows": [1, 2, 3]}
        key = ref["uri"].removeprefix(f"s3://{config.BUCKET}/")
        with pytest.raises(ClientError):
            s3_client.get_object(Bucket=config.BUCKET, Key=key)
    finally:
        S3JSONXComBackend.reset()


def test_azure_encryption_scope_upload_is_accepted_and_reads_back(
    local_stores: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Azurite accepts the signed upload with a scope (it does not record scopes: the header itself is
    checked in tests/unit/test_encryption.py); obstore reads the blob back (a scope needs nothing on reads)."""
    from airflow.sdk import BaseHook

    from include.xcom_backends.stores import AzureBlobStore

    for key, value in connection_env(local_stores.ports).items():
        monkeypatch.setenv(key, value)
    conn_id = "azure_xcom_backend_conn"
    settings = XComStorageSettings.parse(
        bucket=config.BUCKET,
        prefix="it-encryption",
        conn_id=conn_id,
        threshold_bytes=0,
        compression="snappy",
        dataframe_format="parquet",
        timeout_seconds=10,
        max_attempts=1,
        encryption={"mode": "scope", "encryption_scope": "team-b-scope"},
    )
    store = AzureBlobStore(settings, BaseHook.get_connection(conn_id))
    store.put("it-encryption/scoped.json", b'{"scoped": true}')
    assert bytes(store.get("it-encryption/scoped.json")) == b'{"scoped": true}'
