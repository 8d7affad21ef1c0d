"""Azure Blob Storage through the Azure provider's WasbHook (azure-storage-blob BlobServiceClient)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from include.xcom_backends.stores.base import ObjectInfo


class AzureBlobStore:
    scheme = "az"

    def __init__(self, conn_id: str) -> None:
        from airflow.providers.microsoft.azure.hooks.wasb import WasbHook

        self._client = WasbHook(wasb_conn_id=conn_id).get_conn()
        self.endpoint = self._client.url

    def put(self, bucket: str, key: str, data: bytes) -> None:
        self._client.get_blob_client(bucket, key).upload_blob(data, overwrite=True)

    def get(self, bucket: str, key: str) -> bytes:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return self._client.get_blob_client(bucket, key).download_blob().readall()
        except ResourceNotFoundError as exc:
            raise KeyError(key) from exc

    def delete(self, bucket: str, keys: Iterable[str]) -> None:
        from azure.core.exceptions import ResourceNotFoundError

        container = self._client.get_container_client(bucket)
        for key in keys:
            try:
                container.delete_blob(key)
            except ResourceNotFoundError:
                pass

    def list(self, bucket: str, prefix: str) -> Iterator[ObjectInfo]:
        for blob in self._client.get_container_client(bucket).list_blobs(name_starts_with=prefix):
            yield ObjectInfo(blob.name, blob.size or 0)

    def ensure_bucket(self, bucket: str) -> None:
        from azure.core.exceptions import ResourceExistsError

        try:
            self._client.create_container(bucket)
        except ResourceExistsError:
            pass
