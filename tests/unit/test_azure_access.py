"""How AzureBlobStore turns a ``wasb`` connection into an obstore client (no request is made here),
held to the Azure provider's own reading of the same connection (``WasbHook.get_conn``)."""

from __future__ import annotations

import json
import socket
import traceback
from collections.abc import Callable
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qsl

import pytest
from airflow.sdk import BaseHook

from include.xcom_backends.backend import StoreRuntime
from include.xcom_backends.settings import XComStorageSettings
from include.xcom_backends.stores.azure import AzureAccess, AzureBlobStore, account_url

CONN_ID = "wasb_access_test"
KEY = "a2V5LW9mLXRoZS10ZXN0LWFjY291bnQ="  # base64("key-of-the-test-account"), not a real key
SAS = "sv=2024-11-04&ss=b&srt=co&sp=racwdl&se=2030-01-01T00:00:00Z&sig=c2lnbmF0dXJl"
OTHER_SAS = "sv=2024-11-04&ss=b&srt=co&sp=r&se=2031-01-01T00:00:00Z&sig=b3RoZXI="
ACCOUNT_URL = "https://teamxcom.blob.core.windows.net"
SAS_URL = f"{ACCOUNT_URL}/?{SAS}"
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


# The connection strings too long for a line of CASES.
EMULATOR_STRING = (
    f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={KEY};"
    "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;"
)
CLOUD_STRING = f"DefaultEndpointsProtocol=https;AccountName=teamxcom;AccountKey={KEY};EndpointSuffix=core.windows.net"
KEY_AND_SAS_STRING = (
    f"AccountName=teamxcom;AccountKey={KEY};SharedAccessSignature={SAS};EndpointSuffix=core.windows.net"
)
CASES = {
    "connection string, emulator": ({"connection_string": EMULATOR_STRING}, {}),
    "connection string, cloud": ({"connection_string": CLOUD_STRING}, {}),
    "connection string, SAS": ({"connection_string": f"BlobEndpoint={ACCOUNT_URL}/;SharedAccessSignature={SAS}"}, {}),
    "account URL and key": ({}, {"host": f"{ACCOUNT_URL}/", "login": "teamxcom", "password": KEY}),
    "login and key": ({}, {"login": "teamxcom", "password": KEY}),
    "account_key extra": ({"account_key": KEY}, {"login": "teamxcom"}),
    "shared_access_key": ({"shared_access_key": KEY}, {"login": "teamxcom"}),
    "SAS token": ({"sas_token": SAS}, {"login": "teamxcom"}),
    "SAS URL": ({"sas_token": f"https://teamxcom.blob.core.windows.net/?{SAS}"}, {"login": "teamxcom"}),
    "prefixed extra": ({"extra__wasb__sas_token": SAS}, {"login": "teamxcom"}),
    "connection string, key and SAS": ({"connection_string": KEY_AND_SAS_STRING}, {}),
    # A SAS in the account URL (host, BlobEndpoint): the provider signs with it where no other credential is set.
    "host with SAS": ({}, {"host": SAS_URL, "login": "teamxcom"}),
    "host with SAS, and a key": ({}, {"host": SAS_URL, "login": "teamxcom", "password": KEY}),
    "host with SAS, and a shared_access_key": ({"shared_access_key": KEY}, {"host": SAS_URL}),
    "connection string, SAS in BlobEndpoint": ({"connection_string": f"BlobEndpoint={SAS_URL}"}, {}),
    "connection string, SAS in BlobEndpoint, and a key": (
        {"connection_string": f"AccountName=teamxcom;AccountKey={KEY};BlobEndpoint={SAS_URL}"},
        {},
    ),
    "connection string, SAS in BlobEndpoint, and a SharedAccessSignature": (
        {"connection_string": f"BlobEndpoint={SAS_URL};SharedAccessSignature={OTHER_SAS}"},
        {},
    ),
}


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
        # the provider keeps a SAS in the client's URL or in an AzureSasCredential (with a SAS in the
        # account URL and no other credential it also adds DefaultAzureCredential: obstore takes one)
        theirs_sas = getattr(credential, "signature", None) or theirs.url.partition("?")[2]
        assert dict(parse_qsl(ours.sas)) == dict(parse_qsl(theirs_sas.lstrip("?")))
    assert KEY not in repr(ours) and "sig=" not in repr(ours)


def test_a_service_principal(monkeypatch: pytest.MonkeyPatch) -> None:
    conn = connection(
        monkeypatch,
        {"tenant_id": "tenant-1"},
        host="https://teamxcom.blob.core.windows.net/",
        login="client-1",
        password="client-secret",
    )
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
    [
        ("https://acct.blob.core.windows.net/", None),
        ("acct.blob.core.windows.net", None),
        (None, "acct"),
        ("tenant-id-without-dots", "acct"),
        ("https://averyveryveryverylongaccountname0.blob.core.windows.net", None),
    ],
)
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


# --- a SAS never shows in an endpoint: the doctor prints it, messages carry it to logs and the UI ---


def sas_of(query: str | None) -> dict[str, str]:
    assert query is not None
    return dict(parse_qsl(query))


def strings_of(store: AzureBlobStore) -> list[str]:
    """Every text the store shows: its endpoint, reprs, URIs, the hints of the backend's messages."""
    runtime = StoreRuntime("default", SETTINGS, store)
    config = store._client.config
    return [
        store.endpoint,
        repr(store),
        str(store),
        store.uri("x/k"),
        repr(store._client),
        config["endpoint"],
        runtime.location,
        runtime.hint("read"),
        runtime.hint("write"),
        *(value for value in vars(store).values() if isinstance(value, str)),
    ]


# (extra, fields, the credential expected: "sas" is the SAS of the URL)
SAS_IN_A_URL = {
    "host": ({}, {"host": SAS_URL, "login": "teamxcom"}, "sas"),
    "host with user info and a fragment": (
        {},
        {"host": f"https://user:userinfo-password@teamxcom.blob.core.windows.net/?{SAS}#sig=x"},
        "sas",
    ),
    "BlobEndpoint": ({"connection_string": f"BlobEndpoint={SAS_URL}"}, {}, "sas"),
    "BlobEndpoint with an AccountName": (
        {"connection_string": f"AccountName=teamxcom;BlobEndpoint={SAS_URL};"},
        {},
        "sas",
    ),
    "sas_token as a URL": ({"sas_token": SAS_URL}, {"login": "teamxcom"}, "sas"),
    "sas_token as a URL with a fragment": ({"sas_token": f"{SAS_URL}#sig=x"}, {"login": "teamxcom"}, "sas"),
    "host, and a password": ({}, {"host": SAS_URL, "login": "teamxcom", "password": KEY}, "key"),
    "host, and an account_key": ({"account_key": KEY}, {"host": SAS_URL}, "key"),
    "host, and a shared_access_key": ({"shared_access_key": KEY}, {"host": SAS_URL}, "key"),
    "host, and a sas_token": ({"sas_token": OTHER_SAS}, {"host": SAS_URL}, "other"),
    "host, and a service principal": (
        {"tenant_id": "tenant-1"},
        {"host": SAS_URL, "login": "client-1", "password": "pw"},
        "principal",
    ),
    "BlobEndpoint, and an AccountKey": (
        {"connection_string": f"AccountName=teamxcom;AccountKey={KEY};BlobEndpoint={SAS_URL}"},
        {},
        "key",
    ),
    "BlobEndpoint, and a SharedAccessSignature": (
        {"connection_string": f"BlobEndpoint={SAS_URL};SharedAccessSignature={OTHER_SAS}"},
        {},
        "other",
    ),
}


@pytest.mark.parametrize("case", list(SAS_IN_A_URL))
def test_a_sas_in_an_account_url_is_a_credential_never_part_of_the_endpoint(
    monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    extra, fields, expected = SAS_IN_A_URL[case]
    conn = connection(monkeypatch, extra, **fields)
    access = AzureAccess.of(conn)
    store = AzureBlobStore(SETTINGS, conn)
    assert access.endpoint == store.endpoint == store._client.config["endpoint"] == ACCOUNT_URL
    assert access.account == store._client.config["account_name"] == "teamxcom"
    for text in [repr(access), str(access), *strings_of(store)]:
        assert "sig=" not in text and "userinfo-password" not in text, text
    config = store._client.config
    if expected == "sas":
        assert sas_of(access.sas) == sas_of(config["sas_key"]) == sas_of(SAS)
        assert access.account_key is None and "account_key" not in config
    elif expected == "other":
        assert sas_of(access.sas) == sas_of(config["sas_key"]) == sas_of(OTHER_SAS)
    elif expected == "key":
        assert access.account_key == config["account_key"] == KEY and "sas_key" not in config
    else:
        assert access.client_secret == ("tenant-1", "client-1", "pw") and "sas_key" not in config


def test_a_sas_token_url_without_a_sas_is_refused_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    conn = connection(monkeypatch, {"sas_token": f"{ACCOUNT_URL}/"}, login="teamxcom")
    with pytest.raises(ValueError, match=r"sas_token .* URL without a SAS") as info:
        AzureAccess.of(conn)
    assert ACCOUNT_URL not in str(info.value)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("where", ["host", "BlobEndpoint"])
def test_the_errors_of_a_store_with_a_sas_in_its_url_do_not_carry_it(
    monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    url = f"http://127.0.0.1:{closed_port()}/devstoreaccount1?{SAS}"  # nothing listens there
    extra, fields = ({}, {"host": url}) if where == "host" else ({"connection_string": f"BlobEndpoint={url}"}, {})
    settings = replace(SETTINGS, timeout_seconds=2, max_attempts=1)
    store = AzureBlobStore(settings, connection(monkeypatch, extra, **fields))
    assert sas_of(store._client.config["sas_key"]) == sas_of(SAS)
    runtime = StoreRuntime("default", settings, store)
    calls: list[Callable[[], object]] = [
        lambda: store.get("x/k"),
        lambda: store.get_range("x/k", 0, 1),
        lambda: store.put("x/k", b"v"),
        lambda: list(store.list("x/")),
        lambda: store.delete(["x/k"]),
    ]
    for call in calls:
        with pytest.raises(Exception) as info:
            call()
        # what the backend logs: the error, and its hint naming the endpoint
        message = "".join(traceback.format_exception(info.value)) + runtime.hint("read")
        assert "127.0.0.1" in message and "sig=" not in message, message
