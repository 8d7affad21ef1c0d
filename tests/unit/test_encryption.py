"""Encryption at rest (``[xcom_storage] encryption``): the settings, and the exact requests each SDK
sends for each mode, recorded by a local HTTP server that answers like a store would.

The modes the local servers implement are also run against them (tests/integration/test_encryption.py).
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest
from airflow.sdk import Connection

from include.xcom_backends.encryption import Encryption
from include.xcom_backends.errors import XComStorageConfigError
from include.xcom_backends.settings import XComStorageSettings

KEY = bytes(range(32))
KEY_B64 = base64.b64encode(KEY).decode()


class Recorder(BaseHTTPRequestHandler):
    """Answers every request with success (and a small body for GETs), keeping method, path and headers."""

    requests: ClassVar[list[tuple[str, str, dict[str, str]]]] = []

    def _answer(self, body: bytes = b"", status: int = 200) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        Recorder.requests.append((self.command, self.path, {k.lower(): v for k, v in self.headers.items()}))
        self.send_response(status)
        self.send_header("ETag", '"etag"')
        self.send_header("Last-Modified", "Mon, 23 Nov 2026 10:00:00 GMT")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def do_PUT(self) -> None:
        self._answer(status=201)  # Created, as Azure answers a Put Blob (S3 and obstore take any 2xx)

    def do_POST(self) -> None:
        # GCS's JSON API answers an upload with the object's resource
        self._answer(json.dumps({"name": "k", "bucket": "b", "size": "2", "generation": "1"}).encode())

    def do_GET(self) -> None:
        self._answer(b"{}")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[str]:
    Recorder.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def settings(encryption: Any) -> XComStorageSettings:
    return XComStorageSettings.parse(
        bucket="b",
        prefix="p",
        conn_id="c",
        threshold_bytes=0,
        compression="snappy",
        dataframe_format="parquet",
        max_attempts=1,
        encryption=encryption,
    )


def headers_of(method: str, path_has: str = "") -> dict[str, str]:
    return next(h for m, p, h in Recorder.requests if m == method and path_has in p)


# --- S3 and MinIO (obstore) ------------------------------------------------------------------------
def s3_store(endpoint: str, encryption: Any, extra: dict[str, Any] | None = None) -> Any:
    from include.xcom_backends.stores import S3Store

    conn = Connection(
        conn_id="c",
        conn_type="aws",
        login="AK",
        password="SK",
        extra=json.dumps({"endpoint_url": endpoint, **(extra or {})}),
    )
    return S3Store(settings(encryption), conn)


def test_s3_sse_kms_sends_the_key_id_on_writes(recorder: str) -> None:
    store = s3_store(recorder, {"mode": "sse-kms", "kms_key_id": "arn:aws:kms:eu-west-1:111122223333:key/abc"})
    store.put("p/k.json", b"{}")
    put = headers_of("PUT")
    assert put["x-amz-server-side-encryption"] == "aws:kms"
    assert put["x-amz-server-side-encryption-aws-kms-key-id"] == "arn:aws:kms:eu-west-1:111122223333:key/abc"


def test_s3_sse_s3(recorder: str) -> None:
    s3_store(recorder, {"mode": "sse-s3"}).put("p/k.json", b"{}")
    assert headers_of("PUT")["x-amz-server-side-encryption"] == "AES256"


def test_s3_sse_c_sends_the_customer_key_on_writes_and_reads(recorder: str) -> None:
    store = s3_store(recorder, {"mode": "sse-c"}, {"encryption_key": KEY_B64})
    store.put("p/k.json", b"{}")
    store.get("p/k.json")
    md5 = base64.b64encode(hashlib.md5(KEY).digest()).decode()
    for method in ("PUT", "GET"):
        sent = headers_of(method)
        assert sent["x-amz-server-side-encryption-customer-algorithm"] == "AES256"
        assert sent["x-amz-server-side-encryption-customer-key"] == KEY_B64
        assert sent["x-amz-server-side-encryption-customer-key-md5"] == md5


def test_minio_takes_the_same_modes(recorder: str) -> None:
    from include.xcom_backends.stores import MinIOStore

    conn = Connection(conn_id="c", conn_type="generic", host=recorder, login="AK", password="SK")
    MinIOStore(settings({"mode": "sse-kms", "kms_key_id": "my-key"}), conn).put("p/k.json", b"{}")
    assert headers_of("PUT")["x-amz-server-side-encryption-aws-kms-key-id"] == "my-key"


def test_no_encryption_sends_no_encryption_header(recorder: str) -> None:
    s3_store(recorder, None).put("p/k.json", b"{}")
    assert not [h for h in headers_of("PUT") if "encryption" in h]


# --- Azure (obstore) ----------------------------------------------------------------------------
def azure_store(endpoint: str, encryption: Any, extra: dict[str, Any] | None = None) -> Any:
    from include.xcom_backends.stores import AzureBlobStore

    account_key = base64.b64encode(b"k" * 64).decode()
    conn_str = f"DefaultEndpointsProtocol=http;AccountName=dev;AccountKey={account_key};BlobEndpoint={endpoint}/dev;"
    conn = Connection(conn_id="c", conn_type="wasb", extra=json.dumps({"connection_string": conn_str, **(extra or {})}))
    return AzureBlobStore(settings(encryption), conn)


def test_azure_customer_provided_key_goes_with_writes_and_reads(recorder: str) -> None:
    store = azure_store(recorder, {"mode": "cpk"}, {"encryption_key": KEY_B64})
    store.put("p/k.json", b"{}")
    store.get("p/k.json")
    for method in ("PUT", "GET"):
        sent = headers_of(method)
        assert sent["x-ms-encryption-key"] == KEY_B64
        assert sent["x-ms-encryption-key-sha256"] == base64.b64encode(hashlib.sha256(KEY).digest()).decode()
        assert sent["x-ms-encryption-algorithm"] == "AES256"


def test_azure_encryption_scope_goes_with_writes_signed(recorder: str) -> None:
    """Through azure-storage-blob, which signs the header (object_store cannot)."""
    store = azure_store(recorder, {"mode": "scope", "encryption_scope": "team-b-scope"})
    store.put("p/k.json", b"{}")
    store.get("p/k.json")
    put = headers_of("PUT")
    assert put["x-ms-encryption-scope"] == "team-b-scope" and put["authorization"].startswith("SharedKey dev:")
    assert "x-ms-encryption-scope" not in headers_of("GET")


# --- GCS (google-cloud-storage) -------------------------------------------------------------------
def gcs_store(endpoint: str, encryption: Any, extra: dict[str, Any] | None = None) -> Any:
    from include.xcom_backends.stores import GCSStore

    conn = Connection(
        conn_id="c", conn_type="google_cloud_platform", extra=json.dumps({"api_endpoint": endpoint, **(extra or {})})
    )
    return GCSStore(settings(encryption), conn)


def test_gcs_customer_supplied_key_goes_with_writes_and_reads(recorder: str) -> None:
    store = gcs_store(recorder, {"mode": "csek"}, {"encryption_key": KEY_B64})
    store.put("p/k.json", b"{}")
    store.get("p/k.json")
    for method, path in (("POST", "/upload/"), ("GET", "alt=media")):
        sent = headers_of(method, path)
        assert sent["x-goog-encryption-algorithm"] == "AES256"
        assert sent["x-goog-encryption-key"] == KEY_B64
        assert sent["x-goog-encryption-key-sha256"] == base64.b64encode(hashlib.sha256(KEY).digest()).decode()


def test_gcs_kms_key_name_goes_with_writes(recorder: str) -> None:
    name = "projects/p/locations/eu/keyRings/r/cryptoKeys/xcom"
    gcs_store(recorder, {"mode": "kms", "kms_key_name": name}).put("p/k.json", b"{}")
    (path,) = [p for m, p, _ in Recorder.requests if m == "POST"]
    assert "kmsKeyName=projects%2Fp%2Flocations%2Feu%2FkeyRings%2Fr%2FcryptoKeys%2Fxcom" in path


# --- settings and keys ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('{"mode": "aes"}', "mode one of"),
        ("{", "not valid JSON"),
        ('{"mode": "kms"}', "mode 'kms' needs kms_key_name"),
        ('{"mode": "sse-c", "key": "x"}', r"takes no other field, not \['key'\]"),
        ('{"mode": "sse-kms", "kms_key_id": 5}', "kms_key_id must be a non-empty string"),
    ],
)
def test_invalid_encryption_settings_name_the_setting(value: str, message: str) -> None:
    with pytest.raises(XComStorageConfigError, match=r"\[xcom_storage\] encryption.*" + message):
        settings(value)


def test_a_mode_of_another_cloud_is_refused(recorder: str) -> None:
    with pytest.raises(XComStorageConfigError, match="mode 'csek' is not one a s3 store supports"):
        s3_store(recorder, {"mode": "csek"})


@pytest.mark.parametrize("extra", [{}, {"encryption_key": "not base64!"}, {"encryption_key": KEY_B64[:-8]}])
def test_a_missing_or_bad_customer_key_names_the_connection_and_not_the_value(recorder: str, extra: Any) -> None:
    with pytest.raises(XComStorageConfigError, match="'encryption_key' extra of Airflow connection 'c'") as info:
        s3_store(recorder, {"mode": "sse-c"}, extra)
    assert not extra or extra["encryption_key"] not in str(info.value)
    assert Recorder.requests == []


def test_the_customer_key_is_not_in_the_reference_or_the_log(
    recorder: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from include.xcom_backends import S3JSONXComBackend
    from localdev.inprocess import push

    conn = {
        "conn_type": "aws",
        "login": "AK",
        "password": "SK",
        "extra": {"endpoint_url": recorder, "encryption_key": KEY_B64},
    }
    monkeypatch.setenv("AIRFLOW_CONN_S3_XCOM_BACKEND_CONN", json.dumps(conn))
    monkeypatch.setenv("AIRFLOW__XCOM_STORAGE__ENCRYPTION", '{"mode": "sse-c"}')
    ids = {"key": "k", "task_id": "t", "dag_id": "d", "run_id": "r", "map_index": -1}
    S3JSONXComBackend.reset()
    try:
        with caplog.at_level("DEBUG"):
            ref = push(S3JSONXComBackend, {"a": 1}, ids)
    finally:
        S3JSONXComBackend.reset()
    assert headers_of("PUT")["x-amz-server-side-encryption-customer-key"] == KEY_B64
    assert KEY_B64 not in json.dumps(ref) and KEY_B64 not in caplog.text
    assert Encryption.parse('{"mode": "sse-c"}', where="x") == Encryption("sse-c")
