"""Azure Blob Storage through obstore, from an Airflow ``wasb`` connection read as ``WasbHook`` reads it.

The same fields in the same order of precedence as ``WasbHook.get_conn``: a ``connection_string``
(account key or SAS, ``BlobEndpoint`` or the account's default endpoint); else the account URL from
host or login, with a service principal (``tenant_id`` + login/password), a ``shared_access_key``,
a ``sas_token`` (a token, or a full URL with it), the password or an ``account_key`` extra as
account key. Those are read here, without importing the Azure provider (0.5 s, and 1 s with its
hook). A connection with none of them (managed identity, workload identity, environment, Azure
CLI) gets the provider's own ``DefaultAzureCredential``, whose tokens obstore fetches through
``AzureCredentialProvider``. ``tests/unit/test_azure_access.py`` holds this to the provider's
reading of the same connections.

A SAS may also come as the query of the account URL (``?sv=...&sig=...`` in the host, or in a
connection string's ``BlobEndpoint``). The endpoint never keeps it: the doctor prints the endpoint and
every message of the backend names it (task logs, the UI). The query (and any fragment or user info)
is cut from the URL; when it is a SAS and the connection sets no other credential, it is the
credential, where ``WasbHook.get_conn`` would sign with it (the provider then also adds its
``DefaultAzureCredential``; obstore takes one credential: the SAS). Where another credential is set,
the query is dropped.

Blobs from ``multipart_threshold`` up go as blocks committed in one final call, so a failed upload
leaves no blob.

With ``[xcom_storage] encryption`` mode ``scope``, writes go through azure-storage-blob (the client of
``WasbHook.get_conn()`` on the same connection), which signs the ``x-ms-encryption-scope`` header:
object_store has no setting for it, and a header added to its requests is not part of its shared-key
signature (Azurite answers 403). Reads stay on obstore: a scope needs nothing on reads. Only a store
configured with a scope imports azure-storage-blob and the provider (about 1 s, once per process).
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlparse, urlunparse

from include.xcom_backends.settings import XComStorageSettings
from include.xcom_backends.stores.base import Data, as_bytes, hook_on
from include.xcom_backends.stores.obstore_base import ObstoreStore

if TYPE_CHECKING:
    from airflow.sdk import Connection

# Azurite's WELL-KNOWN LOCAL DEVELOPMENT key (public, the same in every install), which a
# connection string with UseDevelopmentStorage=true means, as in azure-storage-blob.
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def _field(extra: dict[str, Any], name: str) -> Any:
    """A ``wasb`` extra, with or without the old ``extra__wasb__`` prefix (``WasbHook._get_field``)."""
    if name in extra:
        return extra[name] or None
    return extra.get(f"extra__wasb__{name}") or None


def account_url(host: str | None, login: str | None) -> str:
    """The provider's ``parse_blob_account_url``: host, else ``https://<login>.blob.core.windows.net/``."""
    url = host if host else f"https://{login}.blob.core.windows.net/"
    parsed = urlparse(url)
    if parsed.scheme == "":
        url = "https://" + url
        parsed = urlparse(url)
    netloc = parsed.netloc
    if "." not in netloc:
        netloc = f"{login}.blob.core.windows.net/"
    parts = netloc.split(".")
    parts[0] = parts[0][:24]
    netloc = ".".join(parts)
    return urlunparse((parsed.scheme, netloc, parsed.path, parsed.params, parsed.query, parsed.fragment))


def without_secrets(url: str) -> tuple[str, str]:
    """``url`` with no query, fragment, parameters or user info (what may be printed), and its query."""
    parsed = urlparse(url)
    netloc = parsed.netloc.rpartition("@")[2]
    return urlunparse((parsed.scheme, netloc, parsed.path, "", "", "")), parsed.query


def is_sas(query: str) -> bool:
    """Whether a URL's query string is a shared access signature (it has a ``sig``)."""
    return "sig" in parse_qs(query)


@dataclass(frozen=True)
class AzureAccess:
    """What obstore needs from a ``wasb`` connection."""

    endpoint: str  # the account URL, without a trailing slash
    account: str
    account_key: str | None = field(default=None, repr=False)
    sas: str | None = field(default=None, repr=False)  # query string, without "?"
    client_secret: tuple[str, str, str] | None = field(default=None, repr=False)  # tenant, client id, secret
    credential: Any = field(default=None, repr=False)  # an azure.identity credential

    @classmethod
    def of(cls, connection: Connection) -> AzureAccess:
        extra = dict(connection.extra_dejson or {})
        secret_config = extra.pop("client_secret_auth_config", {})
        conn_str = _field(extra, "connection_string")
        if conn_str:
            return cls.from_connection_string(conn_str)
        host, query = connection.host, ""
        if host and urlparse(host).netloc:  # before the provider's cut of the account name to 24 characters
            host, query = without_secrets(host)
        url = without_secrets(account_url(host, connection.login))[0]
        tenant = _field(extra, "tenant_id")
        if tenant:
            if secret_config:  # options only ClientSecretCredential itself understands
                return cls.at(url, credential=_provider_client_secret(tenant, connection, secret_config))
            return cls.at(url, client_secret=(tenant, connection.login or "", connection.password or ""))
        shared_key = _field(extra, "shared_access_key")
        if shared_key:
            return cls.at(url, account_key=shared_key)
        sas = _field(extra, "sas_token")
        if sas:
            if sas.startswith("https"):  # a SAS URL: the provider uses it as the account URL, host unused
                sas_url, sas_query = without_secrets(sas)
                if not sas_query:
                    raise ValueError(
                        "the sas_token extra of the Azure connection is a URL without a SAS query "
                        "(expected https://<account>.blob.core.windows.net/?<SAS token>): give the SAS token "
                        "itself, or the whole SAS URL"
                    )
                return cls.at(sas_url, sas=sas_query)
            return cls.at(url, sas=sas.lstrip("?"))
        key = connection.password or _field(extra, "account_key")
        if key:
            return cls.at(url, account_key=key)
        if is_sas(query):  # the SAS of the account URL, which the provider signs with
            return cls.at(url, sas=query)
        from airflow.providers.microsoft.azure.utils import get_sync_default_azure_credential

        credential = get_sync_default_azure_credential(
            managed_identity_client_id=_field(extra, "managed_identity_client_id"),
            workload_identity_tenant_id=_field(extra, "workload_identity_tenant_id"),
        )
        return cls.at(url, credential=credential)

    @classmethod
    def at(cls, url: str, **credentials: Any) -> AzureAccess:
        """The access to the account at ``url``, whose query (a SAS, say) is never kept in the endpoint."""
        url = without_secrets(url)[0]
        parsed = urlparse(url)
        host_account = parsed.netloc.split(".")[0] if "." in parsed.netloc else ""
        # An emulator or a custom domain names the account in the path (http://127.0.0.1:10000/devstoreaccount1).
        path_account = parsed.path.strip("/").split("/")[0]
        account = path_account if (path_account and not host_account) else host_account
        return cls(endpoint=url.rstrip("/"), account=account, **credentials)

    @classmethod
    def from_connection_string(cls, conn_str: str) -> AzureAccess:
        """Fields as azure-storage-blob reads them (``BlobServiceClient.from_connection_string``)."""
        settings = {}
        for part in conn_str.strip().rstrip(";").split(";"):
            name, sep, value = part.partition("=")
            if not sep:
                raise ValueError("the Azure connection_string is malformed (expected Name=value pairs joined by ';')")
            settings[name.strip().upper()] = value.strip()
        if settings.get("USEDEVELOPMENTSTORAGE", "").lower() == "true":
            settings = {
                "ACCOUNTNAME": "devstoreaccount1",
                "ACCOUNTKEY": AZURITE_KEY,
                "BLOBENDPOINT": "http://127.0.0.1:10000/devstoreaccount1",
                **settings,
            }
        account = settings.get("ACCOUNTNAME", "")
        endpoint = settings.get("BLOBENDPOINT")
        if not endpoint:
            if not account:
                raise ValueError("the Azure connection_string names neither BlobEndpoint nor AccountName")
            protocol = settings.get("DEFAULTENDPOINTSPROTOCOL", "https")
            endpoint = f"{protocol}://{account}.blob.{settings.get('ENDPOINTSUFFIX', 'core.windows.net')}"
        endpoint, query = without_secrets(endpoint)
        # azure-storage-blob's order: AccountName with AccountKey, else SharedAccessSignature, else the
        # SAS of BlobEndpoint (a lone AccountKey is taken too, with the account of the endpoint).
        if account and settings.get("ACCOUNTKEY"):
            access = cls.at(endpoint, account_key=settings["ACCOUNTKEY"])
        elif settings.get("SHAREDACCESSSIGNATURE"):
            access = cls.at(endpoint, sas=settings["SHAREDACCESSSIGNATURE"].lstrip("?"))
        elif is_sas(query):
            access = cls.at(endpoint, sas=query)
        elif settings.get("ACCOUNTKEY"):
            access = cls.at(endpoint, account_key=settings["ACCOUNTKEY"])
        else:
            raise ValueError(
                "the Azure connection_string has neither AccountKey nor SharedAccessSignature (nor a SAS "
                "in its BlobEndpoint): add AccountName and AccountKey, or SharedAccessSignature"
            )
        return replace(access, account=account or access.account)


def _provider_client_secret(tenant: str, connection: Connection, options: dict[str, Any]) -> Any:
    from azure.identity import ClientSecretCredential

    return ClientSecretCredential(
        tenant_id=tenant, client_id=connection.login or "", client_secret=connection.password or "", **options
    )


@contextmanager
def readable_azure_errors() -> Iterator[None]:
    """azure-core's errors as the store's others: a missing container or blob is FileNotFoundError,
    anything else the SDK's own class with its first line."""
    from azure.core.exceptions import AzureError, ResourceNotFoundError

    try:
        yield
    except ResourceNotFoundError as exc:
        raise FileNotFoundError(str(exc).splitlines()[0] if str(exc) else "not found") from None
    except AzureError as exc:
        raise type(exc)(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from None


class AzureBlobStore(ObstoreStore):
    scheme = "az"
    type_name = "azure"
    multipart_threshold = 64 * 1024 * 1024

    def _connect(self, settings: XComStorageSettings, connection: Connection | None) -> Any:
        if connection is None:
            raise ValueError("AzureBlobStore needs an Airflow connection")
        self._connection, self._settings = connection, settings
        self._scoped: Any = None  # the container client of azure-storage-blob, for scope writes
        return self._build(settings, AzureAccess.of(connection))

    def _put(self, key: str, data: Data) -> None:
        if self.encryption is not None and self.encryption.mode == "scope":
            self._put_in_scope(key, data, str(self.encryption.key_id))
        else:
            super()._put(key, data)

    def _put_in_scope(self, key: str, data: Data, scope: str) -> None:
        """One upload with ``x-ms-encryption-scope`` through azure-storage-blob: a single Put Blob up to
        its 64 MiB, else blocks committed in one final call (no blob if it fails)."""
        if self._scoped is None:
            from airflow.providers.microsoft.azure.hooks.wasb import WasbHook

            service = hook_on(WasbHook, self._connection)(wasb_conn_id=self._connection.conn_id).get_conn()
            self._scoped = service.get_container_client(self.bucket)
        timeout = self._settings.timeout_seconds
        with readable_azure_errors():
            self._scoped.get_blob_client(key).upload_blob(
                as_bytes(data),
                overwrite=True,
                encryption_scope=scope,  # it takes no memoryview: a copy
                max_concurrency=self.max_concurrency,
                connection_timeout=self._settings.connect_timeout,
                read_timeout=timeout,
                timeout=int(timeout),
            )

    def _build(self, settings: XComStorageSettings, access: AzureAccess) -> Any:
        from obstore.store import AzureStore

        self.endpoint = access.endpoint
        config: dict[str, Any] = {"account_name": access.account, "endpoint": access.endpoint}
        provider = None
        if access.account_key:
            config["account_key"] = access.account_key
        elif access.sas:
            config["sas_key"] = access.sas
        elif access.client_secret:
            tenant, client_id, secret = access.client_secret
            config.update(tenant_id=tenant, client_id=client_id, client_secret=secret)
        else:
            from obstore.auth.azure import AzureCredentialProvider

            provider = AzureCredentialProvider(access.credential)
        options = self.client_options(settings, access.endpoint)
        if self._customer_key is not None:  # encryption mode cpk: the key goes with every request
            config["encryption_key"] = base64.b64encode(self._customer_key).decode("ascii")
        return AzureStore(
            self.bucket,
            config=config,  # type: ignore[arg-type]
            client_options=options,  # type: ignore[arg-type]
            retry_config=self.retry_config(settings),  # type: ignore[arg-type]
            credential_provider=provider,
        )
