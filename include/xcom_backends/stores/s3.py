"""Amazon S3 (and any S3-compatible endpoint) through the Amazon provider's S3Hook/boto3 client.

Timeouts and retries (standard mode, exponential backoff) come from botocore's own Config; values
from 128 MiB up go as a multipart upload, which S3 only makes visible once it is complete and which
boto3 aborts on failure.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from include.xcom_backends.settings import XComStorageSettings
from include.xcom_backends.stores.base import ByteView, Data, ObjectInfo

MULTIPART_THRESHOLD = 128 * 1024 * 1024
MULTIPART_CHUNK = 16 * 1024 * 1024


class S3Store:
    scheme = "s3"

    @staticmethod
    def client_config(settings: XComStorageSettings) -> Any:
        """The botocore ``Config`` of the client (the benchmark's floor uses the same)."""
        from botocore.config import Config

        return Config(
            connect_timeout=settings.connect_timeout,
            read_timeout=settings.timeout_seconds,
            retries={"total_max_attempts": settings.max_attempts, "mode": "standard"},
            max_pool_connections=16,
            # The backend checks a SHA-256 of every object end to end; the SDK's own CRC32 pass per
            # request would only repeat it.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )

    def __init__(self, settings: XComStorageSettings) -> None:
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook
        from boto3.s3.transfer import TransferConfig

        hook = S3Hook(aws_conn_id=settings.conn_id, config=self.client_config(settings))
        # The hook resolves credentials (keys, profile, assumed role, web identity) and the endpoint; the
        # client is built here because the hook's get_conn() inspects the call stack for its user agent,
        # which costs ~0.1 s in every task process.
        self._client = hook.get_session().client(
            "s3", endpoint_url=hook.conn_config.get_service_endpoint_url("s3"), config=hook.config, verify=hook.verify
        )
        self._transfer = TransferConfig(
            multipart_threshold=MULTIPART_THRESHOLD, multipart_chunksize=MULTIPART_CHUNK, max_concurrency=4
        )
        self.endpoint = self._client.meta.endpoint_url

    def put(self, bucket: str, key: str, data: Data) -> None:
        if len(data) < MULTIPART_THRESHOLD:
            self._client.put_object(Bucket=bucket, Key=key, Body=ByteView(data))
        else:
            self._client.upload_fileobj(ByteView(data), bucket, key, Config=self._transfer)

    def get(self, bucket: str, key: str) -> bytes:
        try:
            return self._client.get_object(Bucket=bucket, Key=key)["Body"].read()
        except self._client.exceptions.NoSuchKey as exc:
            raise KeyError(key) from exc

    def get_range(self, bucket: str, key: str, start: int, length: int) -> bytes:
        try:
            response = self._client.get_object(Bucket=bucket, Key=key, Range=f"bytes={start}-{start + length - 1}")
        except self._client.exceptions.NoSuchKey as exc:
            raise KeyError(key) from exc
        return response["Body"].read()

    def delete(self, bucket: str, keys: Iterable[str]) -> None:
        batch = [{"Key": k} for k in keys]
        for i in range(0, len(batch), 1000):
            response = self._client.delete_objects(
                Bucket=bucket, Delete={"Objects": batch[i : i + 1000], "Quiet": True}
            )
            if response.get("Errors"):
                raise RuntimeError(f"S3 refused to delete {len(response['Errors'])} objects: {response['Errors'][:3]}")

    def list(self, bucket: str, prefix: str) -> Iterator[ObjectInfo]:
        pages = self._client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for page in pages:
            for obj in page.get("Contents", []):
                yield ObjectInfo(obj["Key"], obj["Size"], obj["LastModified"])
