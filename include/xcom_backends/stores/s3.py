"""Amazon S3 (and any S3-compatible endpoint) through obstore, from an Airflow ``aws`` connection.

The connection is read with the Amazon provider's rules (``AwsConnectionWrapper``): keys from
login/password, else from the ``aws_access_key_id``/``aws_secret_access_key`` extras, plus
``aws_session_token``, ``region_name``, ``endpoint_url``, ``verify`` and ``config_kwargs.s3.
addressing_style``. Such a connection (the common case, and the local one) is read here directly,
which keeps botocore out of the task process (0.14 s to import). Everything else (no keys in the
connection, so boto3's chain of environment, profile and instance role; ``profile_name``;
``role_arn``; a custom ``[aws] session_factory``; any other extra) goes through the provider's own
wrapper and session factory, exactly as ``S3Hook`` builds its session, and obstore takes that
session's refreshable credentials through ``Boto3CredentialProvider``.

``tests/unit/test_s3_session.py`` holds both paths to the provider's own reading of the connection.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from include.xcom_backends.settings import XComStorageSettings
from include.xcom_backends.stores.obstore_base import ObstoreStore

if TYPE_CHECKING:
    from airflow.sdk import Connection

# Extras the direct reading understands; any other extra sends the connection through the provider.
_DIRECT_EXTRAS = frozenset(
    {"endpoint_url", "region_name", "verify", "aws_access_key_id", "aws_secret_access_key", "aws_session_token"}
)


@dataclass(frozen=True)
class S3Access:
    """What obstore needs from an ``aws`` connection."""

    endpoint_url: str | None
    region: str | None
    verify: bool | str | None
    addressing_style: str | None
    keys: tuple[str, str, str | None] | None = field(repr=False)  # access key id, secret, session token
    session: Any = None  # a boto3 session when the keys come from the provider's session

    @classmethod
    def direct(cls, connection: Connection) -> S3Access | None:
        """The connection read here, or None when only the provider can read it."""
        extra = connection.extra_dejson
        config_kwargs = extra.get("config_kwargs")
        style = None
        if config_kwargs is not None:
            s3 = config_kwargs.get("s3") if isinstance(config_kwargs, dict) else None
            if set(config_kwargs) != {"s3"} or not isinstance(s3, dict) or set(s3) != {"addressing_style"}:
                return None
            style = s3["addressing_style"]
        if not set(extra) - {"config_kwargs"} <= _DIRECT_EXTRAS:
            return None
        if connection.login and connection.password:
            key_id, secret = connection.login, connection.password
        elif extra.get("aws_access_key_id") and extra.get("aws_secret_access_key"):
            key_id, secret = extra["aws_access_key_id"], extra["aws_secret_access_key"]
        else:
            return None  # boto3's credential chain decides
        return cls(
            endpoint_url=extra.get("endpoint_url"),
            region=extra.get("region_name"),
            verify=extra.get("verify"),
            addressing_style=style,
            keys=(key_id, secret, extra.get("aws_session_token") or None),
        )

    @classmethod
    def through_provider(cls, connection: Connection | None) -> S3Access:
        from airflow.providers.amazon.aws.utils.connection_wrapper import AwsConnectionWrapper
        from airflow.sdk import conf

        wrapper = AwsConnectionWrapper(conn=connection)
        if wrapper.role_arn or conf.get("aws", "session_factory", fallback=None):
            # Assumed roles (STS, SAML, web identity) and custom session factories.
            from airflow.providers.amazon.aws.hooks.base_aws import SessionFactory

            session = SessionFactory(conn=wrapper, config=wrapper.botocore_config).create_session()
        else:
            import boto3

            session = boto3.session.Session(**wrapper.session_kwargs)
        s3_config = (wrapper.botocore_config.s3 if wrapper.botocore_config else None) or {}
        return cls(
            endpoint_url=wrapper.get_service_endpoint_url("s3"),
            region=session.region_name,
            verify=wrapper.verify,
            addressing_style=s3_config.get("addressing_style"),
            keys=None,
            session=session,
        )


class S3Store(ObstoreStore):
    scheme = "s3"
    type_name = "s3"

    def _connect(self, settings: XComStorageSettings, connection: Connection | None) -> Any:
        access = (S3Access.direct(connection) if connection is not None else None) or S3Access.through_provider(
            connection
        )
        return self._build(settings, access)

    def encryption_config(self) -> dict[str, str]:
        """obstore's S3 settings for ``[xcom_storage] encryption``: the ``x-amz-server-side-encryption*``
        headers of every write, and for SSE-C of every read too."""
        enc = self.encryption
        if enc is None:
            return {}
        config = {"server_side_encryption": {"sse-s3": "AES256", "sse-kms": "aws:kms", "sse-c": "sse-c"}[enc.mode]}
        if enc.mode == "sse-kms" and enc.key_id:
            config["sse_kms_key_id"] = enc.key_id
        if self._customer_key is not None:
            config["sse_customer_key_base64"] = base64.b64encode(self._customer_key).decode("ascii")
        return config

    def _build(self, settings: XComStorageSettings, access: S3Access) -> Any:
        from obstore.store import S3Store as ObstoreS3

        region = access.region or "us-east-1"
        endpoint = access.endpoint_url
        # Path-style requests for custom endpoints (MinIO, SeaweedFS, ...), virtual-hosted ones for AWS,
        # as botocore's "auto" does; the connection's addressing_style wins.
        virtual = (
            (access.addressing_style == "virtual") if access.addressing_style in ("virtual", "path") else not endpoint
        )
        self.endpoint = endpoint or f"https://s3.{region}.amazonaws.com"
        options = self.client_options(settings, self.endpoint)
        options.update(tls_options(access.verify))
        config: dict[str, Any] = {"region": region, "virtual_hosted_style_request": virtual}
        if endpoint:
            config["endpoint"] = endpoint
        config.update(self.encryption_config())
        if access.keys is not None:
            # Through a provider rather than as config: obstore would otherwise add an
            # AWS_SESSION_TOKEN from the environment to the connection's keys.
            provider: Any = StaticCredentials(*access.keys)
        else:
            from obstore.auth.boto3 import Boto3CredentialProvider

            provider = Boto3CredentialProvider(access.session)
        return ObstoreS3(
            self.bucket,
            config=config,  # type: ignore[arg-type]
            client_options=options,  # type: ignore[arg-type]
            retry_config=self.retry_config(settings),  # type: ignore[arg-type]
            credential_provider=provider,
        )


@dataclass(frozen=True)
class StaticCredentials:
    """The connection's own keys, as an obstore credential provider (never expire)."""

    access_key_id: str
    secret_access_key: str
    token: str | None

    def __call__(self) -> dict[str, Any]:
        return {
            "access_key_id": self.access_key_id,
            "secret_access_key": self.secret_access_key,
            "token": self.token,
            "expires_at": None,
        }

    def __repr__(self) -> str:  # never show the secret in a log or traceback
        return f"StaticCredentials(access_key_id={self.access_key_id!r})"


def tls_options(verify: bool | str | None) -> dict[str, Any]:
    """``verify`` as botocore reads it: False trusts any certificate, a path adds that CA bundle."""
    if verify is False or (isinstance(verify, str) and verify.lower() == "false"):
        return {"allow_invalid_certificates": True}
    if isinstance(verify, str) and verify.lower() != "true":
        with open(verify, encoding="ascii") as f:
            return {"root_certificate": f.read()}
    return {}
