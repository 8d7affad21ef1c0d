"""Amazon S3 (and any S3-compatible endpoint) through boto3, with the Amazon provider's connection handling.

Timeouts and retries (standard mode, exponential backoff) come from botocore's own Config; values
from 128 MiB up go as a multipart upload, which S3 only makes visible once it is complete and which
boto3 aborts on failure.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from include.xcom_backends.settings import XComStorageSettings
from include.xcom_backends.stores.base import ByteView, Data, ObjectInfo, ObjectStore

if TYPE_CHECKING:
    from airflow.sdk import Connection

MULTIPART_THRESHOLD = 128 * 1024 * 1024
MULTIPART_CHUNK = 16 * 1024 * 1024
_NOT_FOUND = ("NoSuchKey", "404", "NotFound")


class S3Store(ObjectStore):
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

    def _connect(self, settings: XComStorageSettings, connection: Connection | None) -> Any:
        from airflow.providers.amazon.aws.utils.connection_wrapper import AwsConnectionWrapper
        from airflow.sdk import conf

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
        client = session.client(
            "s3",
            endpoint_url=wrapper.get_service_endpoint_url("s3"),
            config=config,
            verify=wrapper.verify,
        )
        self.endpoint = client.meta.endpoint_url
        return client

    def _transfer(self) -> Any:
        from boto3.s3.transfer import TransferConfig

        return TransferConfig(
            multipart_threshold=MULTIPART_THRESHOLD, multipart_chunksize=MULTIPART_CHUNK, max_concurrency=4
        )

    def _put(self, key: str, data: Data) -> None:
        if len(data) < MULTIPART_THRESHOLD:
            self._client.put_object(Bucket=self.bucket, Key=key, Body=ByteView(data))
        else:
            self._client.upload_fileobj(ByteView(data), self.bucket, key, Config=self._transfer())

    def _get(self, key: str, start: int, length: int | None) -> bytes:
        if start == 0 and length is None:
            response = self._client.get_object(Bucket=self.bucket, Key=key)
        else:
            end = "" if length is None else start + length - 1
            response = self._client.get_object(Bucket=self.bucket, Key=key, Range=f"bytes={start}-{end}")
        return response["Body"].read()

    def _delete(self, keys: Sequence[str]) -> None:
        for i in range(0, len(keys), 1000):
            batch = [{"Key": k} for k in keys[i : i + 1000]]
            response = self._client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
            if response.get("Errors"):
                raise RuntimeError(f"S3 refused to delete {len(response['Errors'])} objects: {response['Errors'][:3]}")

    def _list(self, prefix: str) -> Iterator[ObjectInfo]:
        for page in self._client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                yield ObjectInfo(obj["Key"], obj["Size"], obj["LastModified"])

    def _is_not_found(self, exc: Exception) -> bool:
        from botocore.exceptions import ClientError

        return isinstance(exc, ClientError) and exc.response.get("Error", {}).get("Code") in _NOT_FOUND
