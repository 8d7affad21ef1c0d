"""MinIO through the official ``minio`` client; endpoint and keys come from an Airflow connection.

Connection: host ``http://minio:9000`` (plain HTTP) or ``https://host:port`` (TLS; also the default
without a scheme), login = access key, password = secret key, optional extra ``{"region": "..."}``.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator

from include.xcom_backends.stores.base import ObjectInfo


class MinIOStore:
    scheme = "s3"

    def __init__(self, conn_id: str) -> None:
        from airflow.sdk import BaseHook
        from minio import Minio

        conn = BaseHook.get_connection(conn_id)
        host = conn.host or ""
        secure = not host.startswith("http://")
        host = host.removeprefix("https://").removeprefix("http://").rstrip("/")
        if conn.port:
            host = f"{host}:{conn.port}"
        self.endpoint = f"{'https' if secure else 'http'}://{host}"
        self._client = Minio(
            host,
            access_key=conn.login,
            secret_key=conn.password,
            secure=secure,
            region=conn.extra_dejson.get("region"),
        )

    def put(self, bucket: str, key: str, data: bytes) -> None:
        self._client.put_object(bucket, key, io.BytesIO(data), len(data))

    def get(self, bucket: str, key: str) -> bytes:
        from minio.error import S3Error

        try:
            response = self._client.get_object(bucket, key)
        except S3Error as exc:
            if exc.code == "NoSuchKey":
                raise KeyError(key) from exc
            raise
        try:
            return response.read()
        finally:
            response.close()
            response.release_conn()

    def delete(self, bucket: str, keys: Iterable[str]) -> None:
        from minio.deleteobjects import DeleteObject

        errors = list(self._client.remove_objects(bucket, [DeleteObject(k) for k in keys]))
        if errors:
            raise RuntimeError(f"MinIO could not delete {len(errors)} objects: {errors[:3]}")

    def list(self, bucket: str, prefix: str) -> Iterator[ObjectInfo]:
        for obj in self._client.list_objects(bucket, prefix=prefix, recursive=True):
            yield ObjectInfo(obj.object_name, obj.size or 0)

    def ensure_bucket(self, bucket: str) -> None:
        if not self._client.bucket_exists(bucket):
            self._client.make_bucket(bucket)
