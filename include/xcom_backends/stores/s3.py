"""Amazon S3 (and any S3-compatible endpoint) through the Amazon provider's S3Hook/boto3 client."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from include.xcom_backends.stores.base import ObjectInfo


class S3Store:
    scheme = "s3"

    def __init__(self, conn_id: str) -> None:
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        self._client = S3Hook(aws_conn_id=conn_id).get_conn()
        self.endpoint = self._client.meta.endpoint_url

    def put(self, bucket: str, key: str, data: bytes) -> None:
        self._client.put_object(Bucket=bucket, Key=key, Body=data)

    def get(self, bucket: str, key: str) -> bytes:
        try:
            return self._client.get_object(Bucket=bucket, Key=key)["Body"].read()
        except self._client.exceptions.NoSuchKey as exc:
            raise KeyError(key) from exc

    def delete(self, bucket: str, keys: Iterable[str]) -> None:
        batch = [{"Key": k} for k in keys]
        for i in range(0, len(batch), 1000):
            self._client.delete_objects(Bucket=bucket, Delete={"Objects": batch[i : i + 1000], "Quiet": True})

    def list(self, bucket: str, prefix: str) -> Iterator[ObjectInfo]:
        pages = self._client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for page in pages:
            for obj in page.get("Contents", []):
                yield ObjectInfo(obj["Key"], obj["Size"])

    def ensure_bucket(self, bucket: str) -> None:
        try:
            self._client.head_bucket(Bucket=bucket)
        except self._client.exceptions.ClientError:
            self._client.create_bucket(Bucket=bucket)
