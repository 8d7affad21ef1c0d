"""How S3Store and MinIOStore turn an Airflow connection into an obstore client (no request is made
here), held to the Amazon provider's own reading of the same connection (``AwsConnectionWrapper``)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import timedelta
from typing import Any

import pytest
from airflow.providers.amazon.aws.utils.connection_wrapper import AwsConnectionWrapper
from airflow.sdk import BaseHook

from include.xcom_backends.settings import XComStorageSettings
from include.xcom_backends.stores.minio import MinIOStore
from include.xcom_backends.stores.s3 import S3Access, S3Store, StaticCredentials

CONN_ID = "s3_session_test"
SETTINGS = XComStorageSettings(
    bucket="b", prefix="x", conn_id=CONN_ID, threshold_bytes=0, compression="snappy", dataframe_format="parquet"
)


def connection(monkeypatch: pytest.MonkeyPatch, extra: dict[str, object], conn_type: str = "aws", **fields: Any) -> Any:
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps({"conn_type": conn_type, "extra": extra, **fields})
    )
    return BaseHook.get_connection(CONN_ID)


# Connections the store reads itself: every field must agree with the provider's reading.
DIRECT = [
    ({"endpoint_url": "http://127.0.0.1:9", "region_name": "eu-west-3"}, {"login": "AKIA1", "password": "secret-1"}),
    ({"aws_access_key_id": "AKIA2", "aws_secret_access_key": "secret-2", "aws_session_token": "tok"}, {}),
    ({"aws_access_key_id": "AKIA2", "aws_secret_access_key": "secret-2"}, {"login": "AKIA3", "password": "secret-3"}),
    ({"verify": False, "config_kwargs": {"s3": {"addressing_style": "virtual"}}}, {"login": "A", "password": "s-4"}),
]


@pytest.mark.parametrize(("extra", "fields"), DIRECT)
def test_a_plain_connection_is_read_as_the_provider_reads_it(
    monkeypatch: pytest.MonkeyPatch, extra: dict[str, Any], fields: dict[str, str]
) -> None:
    conn = connection(monkeypatch, extra, **fields)
    ours = S3Access.direct(conn)
    theirs = AwsConnectionWrapper(conn=conn)
    assert ours is not None
    assert ours.keys == (theirs.aws_access_key_id, theirs.aws_secret_access_key, theirs.aws_session_token)
    assert ours.endpoint_url == theirs.get_service_endpoint_url("s3")
    assert ours.region == theirs.region_name and ours.verify == theirs.verify
    style = (theirs.botocore_config.s3 or {}).get("addressing_style") if theirs.botocore_config else None
    assert ours.addressing_style == style
    assert "secret" not in repr(ours)


@pytest.mark.parametrize(
    ("extra", "fields"),
    [
        ({"role_arn": "arn:aws:iam::123456789012:role/xcom"}, {"login": "AKIA", "password": "secret"}),
        ({"profile_name": "team"}, {}),
        ({"endpoint_url": "http://127.0.0.1:9"}, {}),  # no keys: boto3's credential chain
        ({"config_kwargs": {"s3": {"addressing_style": "path"}, "retries": {"total_max_attempts": 9}}}, {"login": "A"}),
        ({"service_config": {"s3": {"endpoint_url": "http://127.0.0.1:9"}}}, {"login": "AKIA", "password": "secret"}),
    ],
)
def test_anything_else_goes_through_the_provider(
    monkeypatch: pytest.MonkeyPatch, extra: dict[str, Any], fields: dict[str, str]
) -> None:
    assert S3Access.direct(connection(monkeypatch, extra, **fields)) is None


def test_the_client_gets_keys_endpoint_region_and_our_timeouts(monkeypatch: pytest.MonkeyPatch) -> None:
    conn = connection(
        monkeypatch,
        {"endpoint_url": "http://127.0.0.1:9", "region_name": "eu-west-3"},
        login="AKIAEXAMPLE",
        password="secret-example",
    )
    s3 = S3Store(SETTINGS, conn)
    client = s3._client
    assert s3.endpoint == "http://127.0.0.1:9"
    assert client.config["endpoint"] == "http://127.0.0.1:9" and client.config["region"] == "eu-west-3"
    assert client.config["virtual_hosted_style_request"] in ("false", False)  # a custom endpoint: path-style
    assert client.credential_provider == StaticCredentials("AKIAEXAMPLE", "secret-example", None)
    assert "secret" not in repr(client.credential_provider)
    assert client.retry_config["max_retries"] == SETTINGS.max_attempts - 1
    assert client.client_options["allow_http"] in ("true", True)
    assert "read_timeout" in client.client_options and "connect_timeout" in client.client_options


def test_aws_itself_gets_virtual_hosted_requests_over_https(monkeypatch: pytest.MonkeyPatch) -> None:
    s3 = S3Store(SETTINGS, connection(monkeypatch, {"region_name": "eu-west-3"}, login="AKIA", password="secret"))
    assert s3.endpoint == "https://s3.eu-west-3.amazonaws.com"
    assert s3._client.config["virtual_hosted_style_request"] in ("true", True)
    assert s3._client.client_options.get("allow_http") in ("false", False)


def test_a_session_token_in_the_environment_does_not_join_the_connections_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SESSION_TOKEN", "token-of-someone-else")
    s3 = S3Store(SETTINGS, connection(monkeypatch, {}, login="AKIA", password="secret"))
    assert s3._client.credential_provider()["token"] is None


def test_a_plain_connection_imports_neither_botocore_nor_the_provider() -> None:
    code = f"""
import json, os, sys
os.environ["AIRFLOW_CONN_{CONN_ID.upper()}"] = json.dumps(
    {{"conn_type": "aws", "login": "AKIA", "password": "secret", "extra": {{"endpoint_url": "http://127.0.0.1:9"}}}})
import airflow.sdk
from include.xcom_backends.settings import XComStorageSettings
from include.xcom_backends.stores.s3 import S3Store
settings = XComStorageSettings(bucket="b", prefix="x", conn_id="{CONN_ID}", threshold_bytes=0,
                               compression="snappy", dataframe_format="parquet")
S3Store(settings, airflow.sdk.BaseHook.get_connection("{CONN_ID}"))
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in ("botocore", "boto3")
                        or m.startswith("airflow.providers.amazon.aws"))))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_a_connection_without_keys_takes_boto3s_credential_chain(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAFROMENV")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret-from-env")
    s3 = S3Store(SETTINGS, connection(monkeypatch, {"endpoint_url": "http://127.0.0.1:9", "region_name": "eu-west-3"}))
    creds = s3._client.credential_provider()
    assert (creds["access_key_id"], creds["secret_access_key"]) == ("AKIAFROMENV", "secret-from-env")
    assert s3._client.config["region"] == "eu-west-3"


def test_a_role_goes_through_the_providers_session_factory(monkeypatch: pytest.MonkeyPatch) -> None:
    from botocore.exceptions import EndpointConnectionError

    # The provider assumes the role with STS; STS points at a closed local port, so the attempt shows up
    # as a connection error there instead of a client signing with the connection's own keys.
    sts = "http://127.0.0.1:9"
    conn = connection(
        monkeypatch,
        {
            "role_arn": "arn:aws:iam::123456789012:role/xcom",
            "region_name": "us-east-1",
            "service_config": {"sts": {"endpoint_url": sts}},
        },
        login="AKIAEXAMPLE",
        password="secret-example",
    )
    with pytest.raises(EndpointConnectionError, match=re.escape(sts)):
        s3 = S3Store(SETTINGS, conn)
        s3._client.credential_provider()  # the first request asks for credentials
    assert "airflow.providers.amazon.aws.hooks.base_aws" in sys.modules


def test_minio_reads_host_keys_and_region(monkeypatch: pytest.MonkeyPatch) -> None:
    conn = connection(
        monkeypatch,
        {"region": "eu-central-1"},
        conn_type="generic",
        host="http://127.0.0.1:9",
        login="minio-key",
        password="minio-secret",
    )
    store = MinIOStore(SETTINGS, conn)
    assert store.endpoint == "http://127.0.0.1:9"
    assert store._client.config["region"] == "eu-central-1"
    assert store._client.config["virtual_hosted_style_request"] in ("false", False)
    assert store._client.credential_provider()["access_key_id"] == "minio-key"
    tls_conn = connection(
        monkeypatch, {}, conn_type="generic", host="minio.example.com", port=9443, login="k", password="secret"
    )
    tls = MinIOStore(SETTINGS, tls_conn)
    assert tls.endpoint == "https://minio.example.com:9443"


def test_timeouts_and_attempts_come_from_the_settings() -> None:
    settings = XComStorageSettings.parse(
        bucket="b",
        prefix="x",
        conn_id="c",
        threshold_bytes=0,
        compression="snappy",
        dataframe_format="parquet",
        timeout_seconds=7,
        max_attempts=4,
    )
    options = S3Store.client_options(settings, "https://s3.eu-west-3.amazonaws.com")
    assert options["read_timeout"] == timedelta(seconds=7) and options["connect_timeout"] == timedelta(seconds=7)
    retry = S3Store.retry_config(settings)
    assert retry["max_retries"] == 3 and retry["retry_timeout"] == timedelta(seconds=28)
