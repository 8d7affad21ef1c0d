"""How S3Store turns an Airflow connection into a boto3 client (no request is made here)."""

from __future__ import annotations

import json
import re
import sys

import pytest
from airflow.sdk import BaseHook
from botocore.credentials import Credentials
from botocore.exceptions import EndpointConnectionError

from include.xcom_backends.settings import XComStorageSettings
from include.xcom_backends.stores.s3 import S3Store

CONN_ID = "s3_session_test"
SETTINGS = XComStorageSettings(
    bucket="b", prefix="x", conn_id=CONN_ID, threshold_bytes=0, compression="snappy", dataframe_format="parquet"
)


def store(monkeypatch: pytest.MonkeyPatch, extra: dict[str, object], **fields: str) -> S3Store:
    conn = {"conn_type": "aws", "extra": extra, **fields}
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps(conn))
    return S3Store(SETTINGS, BaseHook.get_connection(CONN_ID))


def test_keys_endpoint_and_region_come_from_the_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    s3 = store(
        monkeypatch,
        {
            "endpoint_url": "http://127.0.0.1:9",
            "region_name": "eu-west-3",
            "config_kwargs": {"s3": {"addressing_style": "path"}, "retries": {"max_attempts": 9}},
        },
        login="AKIAEXAMPLE",
        password="secret-example",
    )
    creds = s3._client._request_signer._credentials
    assert type(creds) is Credentials and creds.access_key == "AKIAEXAMPLE" and creds.secret_key == "secret-example"
    assert s3.endpoint == "http://127.0.0.1:9" and s3._client.meta.region_name == "eu-west-3"
    config = s3._client.meta.config
    assert config.retries["total_max_attempts"] == SETTINGS.max_attempts
    assert config.request_checksum_calculation == "when_required"
    assert config.s3 == {"addressing_style": "path"}  # the connection's own botocore settings are kept


def test_a_plain_connection_does_not_import_the_hook_module(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "airflow.providers.amazon.aws.hooks.base_aws", raising=False)
    store(monkeypatch, {"endpoint_url": "http://127.0.0.1:9"}, login="a", password="b")
    assert "airflow.providers.amazon.aws.hooks.base_aws" not in sys.modules


def test_a_role_goes_through_the_providers_session_factory(monkeypatch: pytest.MonkeyPatch) -> None:
    # The provider assumes the role with STS when the client is built; STS points at a closed local port,
    # so the attempt shows up as a connection error there instead of a client signing with the keys.
    sts = "http://127.0.0.1:9"
    with pytest.raises(EndpointConnectionError, match=re.escape(sts)):
        store(
            monkeypatch,
            {
                "role_arn": "arn:aws:iam::123456789012:role/xcom",
                "region_name": "us-east-1",
                "service_config": {"sts": {"endpoint_url": sts}},
            },
            login="AKIAEXAMPLE",
            password="secret-example",
        )
    assert "airflow.providers.amazon.aws.hooks.base_aws" in sys.modules
