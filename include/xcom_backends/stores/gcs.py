"""Google Cloud Storage through google-cloud-storage, with credentials from the Google provider's GCSHook.

A connection extra ``{"api_endpoint": "http://host:port"}`` points the client at a GCS-compatible
emulator (fake-gcs-server) with anonymous credentials; without it GCSHook's credentials are used.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from include.xcom_backends.stores.base import ObjectInfo


class GCSStore:
    scheme = "gs"

    def __init__(self, conn_id: str) -> None:
        from airflow.sdk import BaseHook

        conn = BaseHook.get_connection(conn_id)
        extra = conn.extra_dejson
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

            self._client = GCSHook(gcp_conn_id=conn_id).get_conn()
            self.endpoint = "https://storage.googleapis.com"

    def put(self, bucket: str, key: str, data: bytes) -> None:
        self._client.bucket(bucket).blob(key).upload_from_string(data)

    def get(self, bucket: str, key: str) -> bytes:
        from google.api_core.exceptions import NotFound

        try:
            return self._client.bucket(bucket).blob(key).download_as_bytes()
        except NotFound as exc:
            raise KeyError(key) from exc

    def delete(self, bucket: str, keys: Iterable[str]) -> None:
        from google.api_core.exceptions import NotFound

        b = self._client.bucket(bucket)
        for key in keys:
            try:
                b.blob(key).delete()
            except NotFound:
                pass

    def list(self, bucket: str, prefix: str) -> Iterator[ObjectInfo]:
        for blob in self._client.list_blobs(bucket, prefix=prefix):
            yield ObjectInfo(blob.name, blob.size or 0)

    def ensure_bucket(self, bucket: str) -> None:
        from google.api_core.exceptions import Conflict

        if self._client.lookup_bucket(bucket) is None:
            try:
                self._client.create_bucket(bucket)
            except Conflict:
                pass
