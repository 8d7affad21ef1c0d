"""Amazon S3 (and any S3-compatible endpoint) through boto3, with the Amazon provider's connection handling.

Timeouts and retries (standard mode, exponential backoff) come from botocore's own Config; values
from 128 MiB up go as a multipart upload, which S3 only makes visible once it is complete and which
boto3 aborts on failure.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from include.xcom_backends.settings import XComStorageSettings
from include.xcom_backends.stores.base import ByteView, Data, ObjectInfo

if TYPE_CHECKING:
    from airflow.sdk import Connection

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

    def __init__(self, settings: XComStorageSettings, connection: Connection) -> None:
        from airflow.providers.amazon.aws.utils.connection_wrapper import AwsConnectionWrapper
        from airflow.sdk import conf
        from boto3.s3.transfer import TransferConfig

        # The provider's connection wrapper reads keys, profile, region, endpoint, verify, role and
        # config_kwargs from the connection, exactly as S3Hook does; our timeouts and retries go on top.
        wrapper = AwsConnectionWrapper(conn=connection)
        ours = self.client_config(settings)
        config = wrapper.botocore_config.merge(ours) if wrapper.botocore_config else ours
        if wrapper.role_arn or conf.get("aws", "session_factory", fallback=None):
            # Assumed roles (STS, SAML, web identity) and custom session factories: the provider's own
            # session factory, with its refreshable credentials.
            from airflow.providers.amazon.aws.hooks.base_aws import SessionFactory

            session = SessionFactory(conn=wrapper, config=config).create_session()
        else:
            # What that factory does for a connection without a role. Not importing it saves ~0.1 s in
            # every task process (base_aws imports requests), as does not using S3Hook.get_conn(), whose
            # user-agent stack inspection costs as much again.
            import boto3

            session = boto3.session.Session(**wrapper.session_kwargs)
        self._client = session.client(
            "s3",
            endpoint_url=wrapper.get_service_endpoint_url("s3"),
            config=config,
            verify=wrapper.verify,
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
