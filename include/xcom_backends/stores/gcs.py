"""Google Cloud Storage through google-cloud-storage, with credentials from the Google provider's GCSHook.

A connection extra ``{"api_endpoint": "http://host:port"}`` points the client at a GCS-compatible
emulator (fake-gcs-server) with anonymous credentials; without it GCSHook's credentials are used.
Every call has a (connect, read) timeout and google-api-core's retry with exponential backoff,
bounded by ``timeout_seconds * max_attempts``. Values above 16 MiB go as a resumable upload, which
only becomes an object once finalized.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from include.xcom_backends.settings import XComStorageSettings
from include.xcom_backends.stores.base import Data, ObjectInfo, as_bytes

if TYPE_CHECKING:
    from airflow.sdk import Connection

CHUNK_SIZE = 16 * 1024 * 1024  # a multiple of 256 KiB, as resumable uploads require


class GCSStore:
    scheme = "gs"

    def __init__(self, settings: XComStorageSettings, connection: Connection) -> None:
        from google.cloud.storage.retry import DEFAULT_RETRY

        extra = connection.extra_dejson
        endpoint = extra.get("api_endpoint")
        if endpoint:
            from google.auth.credentials import AnonymousCredentials
            from google.cloud import storage

            self._client = storage.Client(
                project=extra.get("project") or "local",
                credentials=AnonymousCredentials(),
                client_options={"api_endpoint": endpoint},
            )
            self.endpoint = endpoint
        else:
            from airflow.providers.google.cloud.hooks.gcs import GCSHook

            self._client = GCSHook(gcp_conn_id=settings.conn_id).get_conn()
            self.endpoint = "https://storage.googleapis.com"
        self._call: dict[str, Any] = {
            "timeout": (settings.connect_timeout, settings.timeout_seconds),
            "retry": DEFAULT_RETRY.with_timeout(settings.timeout_seconds * settings.max_attempts)
            if settings.max_attempts > 1
            else None,
        }

    def put(self, bucket: str, key: str, data: Data) -> None:
        data = as_bytes(data)
        blob = self._client.bucket(bucket).blob(key, chunk_size=CHUNK_SIZE if len(data) > CHUNK_SIZE else None)
        blob.upload_from_string(data, content_type="application/octet-stream", **self._call)

    def get(self, bucket: str, key: str) -> bytes:
        from google.api_core.exceptions import NotFound

        try:
            return self._client.bucket(bucket).blob(key).download_as_bytes(**self._call)
        except NotFound as exc:
            raise KeyError(key) from exc

    def get_range(self, bucket: str, key: str, start: int, length: int) -> bytes:
        from google.api_core.exceptions import NotFound

        try:
            blob = self._client.bucket(bucket).blob(key)
            return blob.download_as_bytes(start=start, end=start + length - 1, **self._call)
        except NotFound as exc:
            raise KeyError(key) from exc

    def delete(self, bucket: str, keys: Iterable[str]) -> None:
        from google.api_core.exceptions import NotFound

        b = self._client.bucket(bucket)
        for key in keys:
            try:
                b.blob(key).delete(**self._call)
            except NotFound:
                pass

    def list(self, bucket: str, prefix: str) -> Iterator[ObjectInfo]:
        for blob in self._client.list_blobs(bucket, prefix=prefix, **self._call):
            yield ObjectInfo(blob.name, blob.size or 0, blob.updated)
