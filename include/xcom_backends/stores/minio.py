"""MinIO through the official ``minio`` client; endpoint and keys come from an Airflow connection.

Connection: host ``http://minio:9000`` (plain HTTP) or ``https://host:port`` (TLS; also the default
without a scheme), login = access key, password = secret key, optional extra ``{"region": "..."}``.
Timeouts and retries with backoff are urllib3's, on the client's own pool. Values above 16 MiB
(``PART_SIZE``) go as a multipart upload, which only becomes an object once complete.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from include.xcom_backends.settings import XComStorageSettings
from include.xcom_backends.stores.base import ByteView, Data, ObjectInfo, ObjectStore

if TYPE_CHECKING:
    from airflow.sdk import Connection

PART_SIZE = 16 * 1024 * 1024
_EPOCH = datetime.fromtimestamp(0, tz=UTC)


class MinIOStore(ObjectStore):
    scheme = "s3"

    def _connect(self, settings: XComStorageSettings, connection: Connection | None) -> Any:
        import certifi
        import urllib3
        from minio import Minio

        if connection is None:
            raise ValueError("MinIOStore needs an Airflow connection (host, login, password)")
        host = connection.host or ""
        secure = not host.startswith("http://")
        host = host.removeprefix("https://").removeprefix("http://").rstrip("/")
        if connection.port:
            host = f"{host}:{connection.port}"
        self.endpoint = f"{'https' if secure else 'http'}://{host}"
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=settings.connect_timeout, read=settings.timeout_seconds),
            retries=urllib3.Retry(
                total=settings.max_attempts - 1,
                backoff_factor=0.2,
                status_forcelist=(500, 502, 503, 504),
                allowed_methods=None,  # every method: a PUT of the same key is idempotent
            ),
            maxsize=16,
            cert_reqs="CERT_REQUIRED",
            ca_certs=certifi.where(),
        )
        return Minio(
            host,
            access_key=connection.login,
            secret_key=connection.password,
            secure=secure,
            region=connection.extra_dejson.get("region"),
            http_client=http,
        )

    def _put(self, key: str, data: Data) -> None:
        self._client.put_object(self.bucket, key, ByteView(data), len(data), part_size=PART_SIZE)

    def _get(self, key: str, start: int, length: int | None) -> bytes:
        # minio's own convention: length 0 means "to the end".
        response = self._client.get_object(self.bucket, key, offset=start, length=length or 0)
        try:
            return response.read()
        finally:
            response.close()
            response.release_conn()

    def _delete(self, keys: Sequence[str]) -> None:
        from minio.deleteobjects import DeleteObject

        errors = list(self._client.remove_objects(self.bucket, [DeleteObject(k) for k in keys]))
        if errors:
            raise RuntimeError(f"MinIO refused to delete {len(errors)} objects: {errors[:3]}")

    def _list(self, prefix: str) -> Iterator[ObjectInfo]:
        for obj in self._client.list_objects(self.bucket, prefix=prefix, recursive=True):
            yield ObjectInfo(obj.object_name or "", obj.size or 0, obj.last_modified or _EPOCH)

    def _is_not_found(self, exc: Exception) -> bool:
        from minio.error import S3Error

        return isinstance(exc, S3Error) and exc.code in ("NoSuchKey", "NoSuchObject")
