"""Azure Blob Storage through azure-storage-blob, with the account URL and credential the Azure
provider's WasbHook resolves from the connection.

Timeouts and retries with exponential backoff are azure-core's, passed on every call. Blobs above
the SDK's single-put size go as blocks committed in one final call, so a failed upload leaves no blob.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from include.xcom_backends.settings import XComStorageSettings
from include.xcom_backends.stores.base import Data, ObjectInfo, ObjectStore, as_bytes, hook_on

if TYPE_CHECKING:
    from airflow.sdk import Connection

MAX_SINGLE_PUT = 64 * 1024 * 1024  # larger blobs go as 16 MiB blocks, committed in one final call
BLOCK_SIZE = 16 * 1024 * 1024


class AzureBlobStore(ObjectStore):
    scheme = "az"

    def _connect(self, settings: XComStorageSettings, connection: Connection | None) -> Any:
        # The hook resolves the account URL and credential from the connection (connection string,
        # account key, SAS token, service principal, managed identity).
        from airflow.providers.microsoft.azure.hooks.wasb import WasbHook
        from azure.storage.blob import BlobServiceClient, ExponentialRetry

        self._call: dict[str, Any] = {
            "connection_timeout": settings.connect_timeout,
            "read_timeout": settings.timeout_seconds,
        }
        if connection is None:
            raise ValueError("AzureBlobStore needs an Airflow connection")
        hooked = hook_on(WasbHook, connection)(wasb_conn_id=settings.conn_id).get_conn()
        self.endpoint = hooked.primary_endpoint
        # Same account URL and credential as the hook resolved, with a bounded retry policy: the SDK's
        # default waits 15 s before its first retry.
        retry = ExponentialRetry(initial_backoff=1, increment_base=2, retry_total=settings.max_attempts - 1)
        return BlobServiceClient(
            account_url=hooked.url,
            credential=hooked.credential,
            retry_policy=retry,
            max_single_put_size=MAX_SINGLE_PUT,
            max_block_size=BLOCK_SIZE,
        )

    def _put(self, key: str, data: Data) -> None:
        self._client.get_blob_client(self.bucket, key).upload_blob(
            as_bytes(data), overwrite=True, max_concurrency=4, **self._call
        )

    def _get(self, key: str, start: int, length: int | None) -> bytes:
        blob = self._client.get_blob_client(self.bucket, key)
        if start == 0 and length is None:
            return blob.download_blob(max_concurrency=4, **self._call).readall()
        return blob.download_blob(offset=start, length=length, **self._call).readall()

    def _delete(self, keys: Sequence[str]) -> None:
        container = self._client.get_container_client(self.bucket)
        for key in keys:
            try:
                container.delete_blob(key, **self._call)
            except Exception as exc:
                if not self._is_not_found(exc):
                    raise

    def _list(self, prefix: str) -> Iterator[ObjectInfo]:
        container = self._client.get_container_client(self.bucket)
        for blob in container.list_blobs(name_starts_with=prefix, **self._call):
            yield ObjectInfo(blob.name, blob.size or 0, blob.last_modified)

    def _is_not_found(self, exc: Exception) -> bool:
        from azure.core.exceptions import ResourceNotFoundError

        return isinstance(exc, ResourceNotFoundError)
