"""Create the bucket (container) on each local server with the cloud SDKs, idempotently."""

from __future__ import annotations

from typing import Any

from localdev import config


def create_buckets(endpoints: dict[str, str], bucket: str = config.BUCKET) -> None:
    from azure.core.exceptions import ResourceExistsError
    from azure.storage.blob import BlobServiceClient
    from botocore.exceptions import ClientError
    from google.api_core.exceptions import Conflict
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    s3 = s3_client(endpoints["s3"])
    try:
        s3.create_bucket(Bucket=bucket)
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise
    gcs = storage.Client(
        project="local-dev", credentials=AnonymousCredentials(), client_options={"api_endpoint": endpoints["gcs"]}
    )
    try:
        gcs.create_bucket(bucket)
    except Conflict:
        pass
    azure = BlobServiceClient.from_connection_string(azure_connection_string(endpoints["azure"]))
    try:
        azure.create_container(bucket)
    except ResourceExistsError:
        pass


def s3_client(endpoint: str) -> Any:
    """A plain boto3 client on the local S3 server, with the local development credentials."""
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=config.DEV_S3_ACCESS_KEY,
        aws_secret_access_key=config.DEV_S3_SECRET_KEY,
    )


def azure_connection_string(blob_endpoint: str) -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName={config.AZURITE_ACCOUNT};"
        f"AccountKey={config.AZURITE_KEY};BlobEndpoint={blob_endpoint};"
    )
