"""Google Cloud Storage through google-cloud-storage, with credentials from the Google provider's GCSHook.

A connection extra ``{"api_endpoint": "http://host:port"}`` points the client at a GCS-compatible
emulator (fake-gcs-server) with anonymous credentials; without it GCSHook's credentials are used.
Every call has a (connect, read) timeout and google-api-core's retry with exponential backoff,
bounded by ``timeout_seconds * max_attempts``. Values above 16 MiB go as a resumable upload, which
only becomes an object once finalized.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from include.xcom_backends.settings import XComStorageSettings
from include.xcom_backends.stores.base import Data, ObjectInfo, ObjectStore, as_bytes, hook_on

if TYPE_CHECKING:
    from airflow.sdk import Connection

CHUNK_SIZE = 16 * 1024 * 1024  # a multiple of 256 KiB, as resumable uploads require


class GCSStore(ObjectStore):
    scheme = "gs"
    type_name = "gcs"

    def _connect(self, settings: XComStorageSettings, connection: Connection | None) -> Any:
        from google.cloud.storage.retry import DEFAULT_RETRY

        self._call: dict[str, Any] = {
            "timeout": (settings.connect_timeout, settings.timeout_seconds),
            "retry": DEFAULT_RETRY.with_timeout(settings.timeout_seconds * settings.max_attempts)
            if settings.max_attempts > 1
            else None,
        }
        extra = connection.extra_dejson if connection is not None else {}
        endpoint = extra.get("api_endpoint")
        if endpoint:
            from google.auth.credentials import AnonymousCredentials
            from google.cloud import storage

            self.endpoint = endpoint
            return storage.Client(
                project=extra.get("project") or "local",
                credentials=AnonymousCredentials(),
                client_options={"api_endpoint": endpoint},
            )
        from airflow.providers.google.cloud.hooks.gcs import GCSHook

        self.endpoint = "https://storage.googleapis.com"
        hook = hook_on(GCSHook, connection) if connection is not None else GCSHook
        return hook(gcp_conn_id=settings.conn_id).get_conn()

    def _put(self, key: str, data: Data) -> None:
        data = as_bytes(data)
        chunk_size = CHUNK_SIZE if len(data) > CHUNK_SIZE else None
        blob = self._blob(key, chunk_size=chunk_size, writing=True)
        blob.upload_from_string(data, content_type="application/octet-stream", **self._call)

    def _blob(self, key: str, *, chunk_size: int | None = None, writing: bool = False) -> Any:
        """A blob handle with ``[xcom_storage] encryption``: a customer-supplied key (CSEK) goes with
        every request, a Cloud KMS key name (CMEK) with every write."""
        kms = (
            self.encryption.key_id
            if writing and self.encryption is not None and self.encryption.mode == "kms"
            else None
        )
        return self._client.bucket(self.bucket).blob(
            key, chunk_size=chunk_size, encryption_key=self._customer_key, kms_key_name=kms
        )

    def _get(self, key: str, start: int, length: int | None) -> bytes:
        end = None if length is None else start + length - 1
        return self._blob(key).download_as_bytes(start=start or None, end=end, **self._call)

    def _delete(self, keys: Sequence[str]) -> None:
        bucket = self._client.bucket(self.bucket)
        for key in keys:
            try:
                bucket.blob(key).delete(**self._call)
            except Exception as exc:
                if not self._is_not_found(exc):
                    raise

    def _list(self, prefix: str) -> Iterator[ObjectInfo]:
        for blob in self._client.list_blobs(self.bucket, prefix=prefix, **self._call):
            yield ObjectInfo(blob.name, blob.size or 0, blob.updated)

    def _is_not_found(self, exc: Exception) -> bool:
        from google.api_core.exceptions import NotFound

        return isinstance(exc, NotFound)
