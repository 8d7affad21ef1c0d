"""Azure Blob Storage through the Azure provider's WasbHook (azure-storage-blob BlobServiceClient).

Timeouts and retries with exponential backoff are azure-core's, passed on every call. Blobs above
the SDK's single-put size go as blocks committed in one final call, so a failed upload leaves no blob.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from include.xcom_backends.settings import XComStorageSettings
from include.xcom_backends.stores.base import Data, ObjectInfo, as_bytes

if TYPE_CHECKING:
    from airflow.sdk import Connection

MAX_SINGLE_PUT = 64 * 1024 * 1024  # larger blobs go as 16 MiB blocks, committed in one final call
BLOCK_SIZE = 16 * 1024 * 1024


class AzureBlobStore:
    scheme = "az"

    def __init__(self, settings: XComStorageSettings, connection: Connection) -> None:
        # The hook resolves the account URL and credential from the connection id itself.
        from airflow.providers.microsoft.azure.hooks.wasb import WasbHook
        from azure.storage.blob import BlobServiceClient, ExponentialRetry

        hooked = WasbHook(wasb_conn_id=settings.conn_id).get_conn()
        # Same account URL and credential as the hook resolved, with a bounded retry policy: the SDK's
        # default waits 15 s before its first retry.
        retry = ExponentialRetry(initial_backoff=1, increment_base=2, retry_total=settings.max_attempts - 1)
        self._client = BlobServiceClient(
            account_url=hooked.url,
            credential=hooked.credential,
            retry_policy=retry,
            max_single_put_size=MAX_SINGLE_PUT,
            max_block_size=BLOCK_SIZE,
        )
        self.endpoint = hooked.primary_endpoint
        self._call: dict[str, Any] = {
            "connection_timeout": settings.connect_timeout,
            "read_timeout": settings.timeout_seconds,
        }

    def put(self, bucket: str, key: str, data: Data) -> None:
        self._client.get_blob_client(bucket, key).upload_blob(
            as_bytes(data), overwrite=True, max_concurrency=4, **self._call
        )

    def get(self, bucket: str, key: str) -> bytes:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return self._client.get_blob_client(bucket, key).download_blob(max_concurrency=4, **self._call).readall()
        except ResourceNotFoundError as exc:
            raise KeyError(key) from exc

    def get_range(self, bucket: str, key: str, start: int, length: int) -> bytes:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            blob = self._client.get_blob_client(bucket, key)
            return blob.download_blob(offset=start, length=length, **self._call).readall()
        except ResourceNotFoundError as exc:
            raise KeyError(key) from exc

    def delete(self, bucket: str, keys: Iterable[str]) -> None:
        from azure.core.exceptions import ResourceNotFoundError

        container = self._client.get_container_client(bucket)
        for key in keys:
            try:
                container.delete_blob(key, **self._call)
            except ResourceNotFoundError:
                pass

    def list(self, bucket: str, prefix: str) -> Iterator[ObjectInfo]:
        container = self._client.get_container_client(bucket)
        for blob in container.list_blobs(name_starts_with=prefix, **self._call):
            yield ObjectInfo(blob.name, blob.size or 0, blob.last_modified)
