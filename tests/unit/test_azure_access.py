"""How AzureBlobStore turns a ``wasb`` connection into an obstore client (no request is made here),
held to the Azure provider's own reading of the same connection (``WasbHook.get_conn``)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

import pytest
from airflow.sdk import BaseHook

from include.xcom_backends.settings import XComStorageSettings
from include.xcom_backends.stores.azure import AzureAccess, AzureBlobStore, account_url

CONN_ID = "wasb_access_test"
KEY = "a2V5LW9mLXRoZS10ZXN0LWFjY291bnQ="  # base64("key-of-the-test-account"), not a real key
SAS = "sv=2024-11-04&ss=b&srt=co&sp=racwdl&se=2030-01-01T00:00:00Z&sig=c2lnbmF0dXJl"
SETTINGS = XComStorageSettings(
    bucket="b", prefix="x", conn_id=CONN_ID, threshold_bytes=0, compression="snappy", dataframe_format="parquet"
)


def connection(monkeypatch: pytest.MonkeyPatch, extra: Any, **fields: Any) -> Any:
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps({"conn_type": "wasb", "extra": extra, **fields}))
    return BaseHook.get_connection(CONN_ID)


def providers_client(conn: Any) -> Any:
    from airflow.providers.microsoft.azure.hooks.wasb import WasbHook

    class OnConnection(WasbHook):
        @classmethod
        def get_connection(cls, conn_id: str) -> Any:
            return conn

    return OnConnection(wasb_conn_id=CONN_ID).get_conn()


CASES = {
    "connection string, emulator": (
        {"connection_string": f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={KEY};"
                              "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;"}, {}),
    "connection string, cloud": (
        {"connection_string": f"DefaultEndpointsProtocol=https;AccountName=teamxcom;AccountKey={KEY};"
                              "EndpointSuffix=core.windows.net"}, {}),
    "connection string, SAS": (
        {"connection_string": f"BlobEndpoint=https://teamxcom.blob.core.windows.net/;SharedAccessSignature={SAS}"},
        {}),
    "account URL and key": ({}, {"host": "https://teamxcom.blob.core.windows.net/", "login": "teamxcom",
                                 "password": KEY}),
    "login and key": ({}, {"login": "teamxcom", "password": KEY}),
    "account_key extra": ({"account_key": KEY}, {"login": "teamxcom"}),
    "shared_access_key": ({"shared_access_key": KEY}, {"login": "teamxcom"}),
    "SAS token": ({"sas_token": SAS}, {"login": "teamxcom"}),
    "SAS URL": ({"sas_token": f"https://teamxcom.blob.core.windows.net/?{SAS}"}, {"login": "teamxcom"}),
    "prefixed extra": ({"extra__wasb__sas_token": SAS}, {"login": "teamxcom"}),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CASES))
def test_a_connection_is_read_as_the_provider_reads_it(monkeypatch: pytest.MonkeyPatch, case: str) -> None:
    extra, fields = CASES[case]
    conn = connection(monkeypatch, extra, **fields)
    ours, theirs = AzureAccess.of(conn), providers_client(conn)
    assert ours.endpoint == theirs.primary_endpoint.partition("?")[0].rstrip("/")
    assert ours.account == theirs.account_name
    credential = theirs.credential
    if ours.account_key is not None:
        assert ours.account_key == credential.account_key
    else:
        assert ours.sas is not None
        # the provider keeps a SAS in the client's URL or in an AzureSasCredential
        theirs_sas = credential.signature if credential is not None else theirs.url.partition("?")[2]
        assert dict(parse_qsl(ours.sas)) == dict(parse_qsl(theirs_sas.lstrip("?")))
    assert KEY not in repr(ours) and "sig=" not in repr(ours)


def test_a_service_principal(monkeypatch: pytest.MonkeyPatch) -> None:
    conn = connection(monkeypatch, {"tenant_id": "tenant-1"}, host="https://teamxcom.blob.core.windows.net/",
                      login="client-1", password="client-secret")  # fmt: skip
    ours, theirs = AzureAccess.of(conn), providers_client(conn)
    assert type(theirs.credential).__name__ == "ClientSecretCredential"
    assert ours.client_secret == ("tenant-1", "client-1", "client-secret")
    assert ours.endpoint == theirs.primary_endpoint.rstrip("/")


def test_no_secret_at_all_means_the_providers_default_azure_credential(monkeypatch: pytest.MonkeyPatch) -> None:
    conn = connection(
        monkeypatch, {"managed_identity_client_id": "mi-1"}, host="https://teamxcom.blob.core.windows.net/"
    )
    ours, theirs = AzureAccess.of(conn), providers_client(conn)
    assert type(ours.credential).__name__ == type(theirs.credential).__name__ == "DefaultAzureCredential"
    store = AzureBlobStore(SETTINGS, conn)
    assert type(store._client.credential_provider).__name__ == "AzureCredentialProvider"


@pytest.mark.parametrize(
    ("host", "login"),
    [("https://acct.blob.core.windows.net/", None), ("acct.blob.core.windows.net", None), (None, "acct"),
     ("tenant-id-without-dots", "acct"), ("https://averyveryveryverylongaccountname0.blob.core.windows.net", None)],
)  # fmt: skip
def test_account_url_is_the_providers(host: str | None, login: str | None) -> None:
    from airflow.providers.microsoft.azure.utils import parse_blob_account_url

    assert account_url(host, login) == parse_blob_account_url(host, login)


def test_the_client_gets_account_endpoint_key_and_our_timeouts(monkeypatch: pytest.MonkeyPatch) -> None:
    extra, fields = CASES["connection string, emulator"]
    store = AzureBlobStore(SETTINGS, connection(monkeypatch, extra, **fields))
    config = store._client.config
    assert store.endpoint == "http://127.0.0.1:10000/devstoreaccount1"
    assert config["account_name"] == "devstoreaccount1" and config["endpoint"] == store.endpoint
    assert config["account_key"] == KEY
    assert store._client.retry_config["max_retries"] == SETTINGS.max_attempts - 1
    extra, fields = CASES["SAS token"]
    sas = AzureBlobStore(SETTINGS, connection(monkeypatch, extra, **fields))
    assert "account_key" not in sas._client.config


def test_a_malformed_connection_string_is_refused_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="connection_string is malformed"):
        AzureAccess.of(connection(monkeypatch, {"connection_string": "just-some-text"}))
    with pytest.raises(ValueError, match="neither AccountKey nor SharedAccessSignature"):
        AzureAccess.of(connection(monkeypatch, {"connection_string": "AccountName=a;EndpointSuffix=core.windows.net"}))
