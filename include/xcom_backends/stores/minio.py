"""MinIO (or any S3-compatible server) through obstore, from a plain Airflow connection.

Connection: host ``http://minio:9000`` (plain HTTP) or ``https://host:port`` (TLS; also the default
without a scheme), login = access key, password = secret key, optional extra ``{"region": "..."}``
and ``{"verify": false | "/path/to/ca.pem"}``. Requests are path-style, as MinIO expects. Values
from 16 MiB up go as a multipart upload, which only becomes an object once complete.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from include.xcom_backends.settings import XComStorageSettings
from include.xcom_backends.stores.s3 import S3Access, S3Store

if TYPE_CHECKING:
    from airflow.sdk import Connection


class MinIOStore(S3Store):
    multipart_threshold = 16 * 1024 * 1024
    type_name = "minio"

    def _connect(self, settings: XComStorageSettings, connection: Connection | None) -> Any:
        if connection is None or not connection.host or not connection.login or not connection.password:
            raise ValueError("MinIOStore needs an Airflow connection with host, login and password")
        host = connection.host
        scheme = "http" if host.startswith("http://") else "https"
        host = host.removeprefix("https://").removeprefix("http://").rstrip("/")
        if connection.port:
            host = f"{host}:{connection.port}"
        extra = connection.extra_dejson
        access = S3Access(
            endpoint_url=f"{scheme}://{host}",
            region=extra.get("region"),
            verify=extra.get("verify"),
            addressing_style="path",
            keys=(connection.login, connection.password, None),
        )
        return self._build(settings, access)
