"""Encryption at rest with the user's keys: what ``[xcom_storage] encryption`` (or a store's
``encryption`` in ``[xcom_storage] stores``) asks of a store.

``{"mode": ...}`` with one of:

- S3 and MinIO: ``sse-s3`` (AES256, keys managed by the store), ``sse-kms`` (optional ``kms_key_id``;
  without it the bucket's or account's default KMS key), ``sse-c`` (a customer key);
- GCS: ``kms`` (``kms_key_name`` required: a Cloud KMS key the service agent may use), ``csek`` (a
  customer-supplied key);
- Azure: ``scope`` (``encryption_scope`` required), ``cpk`` (a customer-provided key).

A customer key (``sse-c``, ``csek``, ``cpk``) is never part of the configuration, the reference or
a log line: it is the ``encryption_key`` extra of the store's Airflow connection (base64 of 32
bytes), so it lives wherever the connection does (the metadata database encrypted with Fernet, or a
secrets backend). Every read of an object written with a customer key sends the same key.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any

from include.xcom_backends.errors import XComStorageConfigError

MODES: dict[str, dict[str, str | None]] = {
    # mode -> {field: None (optional) or "required"}, per store type below
    "sse-s3": {},
    "sse-kms": {"kms_key_id": None},
    "sse-c": {},
    "kms": {"kms_key_name": "required"},
    "csek": {},
    "scope": {"encryption_scope": "required"},
    "cpk": {},
}
FOR_TYPE = {
    "s3": ("sse-s3", "sse-kms", "sse-c"),
    "minio": ("sse-s3", "sse-kms", "sse-c"),
    "gcs": ("kms", "csek"),
    "azure": ("scope", "cpk"),
}
CUSTOMER_KEY_MODES = ("sse-c", "csek", "cpk")
KEY_EXTRA = "encryption_key"


@dataclass(frozen=True)
class Encryption:
    mode: str
    key_id: str | None = None  # the KMS key (S3: id or ARN; GCS: resource name) or the Azure scope
    where: str = field(default="[xcom_storage] encryption", compare=False)  # the setting, for messages

    @property
    def needs_customer_key(self) -> bool:
        return self.mode in CUSTOMER_KEY_MODES

    @classmethod
    def parse(cls, value: str | dict[str, Any] | None, *, where: str) -> Encryption | None:
        """``value``: the JSON text or object; ``where``: the setting, for the error message."""
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError as exc:
                raise XComStorageConfigError(f"Invalid {where}: not valid JSON ({exc}).") from None
        if not isinstance(value, dict) or value.get("mode") not in MODES:
            raise XComStorageConfigError(
                f'Invalid {where}: expected {{"mode": ...}} with mode one of {", ".join(MODES)} (docs/encryption.md).'
            )
        mode = value["mode"]
        fields = MODES[mode]
        unknown = set(value) - {"mode", *fields}
        if unknown:
            raise XComStorageConfigError(
                f"Invalid {where}: mode {mode!r} takes {sorted(fields) or 'no other field'}, not {sorted(unknown)}."
            )
        key_id = None
        for name, required in fields.items():
            got = value.get(name)
            if got is None and required:
                raise XComStorageConfigError(f"Invalid {where}: mode {mode!r} needs {name}.")
            if got is not None and (not isinstance(got, str) or not got):
                raise XComStorageConfigError(f"Invalid {where}: {name} must be a non-empty string.")
            key_id = got if got is not None else key_id
        return cls(mode, key_id, where)

    def check_type(self, store_type: str) -> None:
        allowed = FOR_TYPE.get(store_type, ())
        if self.mode not in allowed:
            raise XComStorageConfigError(
                f"Invalid {self.where}: mode {self.mode!r} is not one a {store_type} store supports "
                f"({', '.join(allowed) or 'none'})."
            )

    def customer_key(self, connection: Any, conn_id: str) -> bytes:
        """The 32-byte customer key from the connection's ``encryption_key`` extra. Errors name the
        connection and the extra, never the value."""
        extra = getattr(connection, "extra_dejson", None) or {}
        text = extra.get(KEY_EXTRA)
        if not text:
            raise XComStorageConfigError(
                f"Encryption mode {self.mode!r} needs a customer key: set the {KEY_EXTRA!r} extra of Airflow "
                f"connection {conn_id!r} to the base64 of a 32-byte key (docs/encryption.md)."
            )
        try:
            key = base64.b64decode(str(text), validate=True)
        except (binascii.Error, ValueError):
            key = b""
        if len(key) != 32:
            raise XComStorageConfigError(
                f"The {KEY_EXTRA!r} extra of Airflow connection {conn_id!r} is not the base64 of a 32-byte (AES-256) "
                f"key; encryption mode {self.mode!r} needs one (docs/encryption.md)."
            )
        return key
