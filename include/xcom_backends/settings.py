"""The ``[xcom_storage]`` Airflow config section (``AIRFLOW__XCOM_STORAGE__<NAME>`` env vars)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from include.xcom_backends.encryption import Encryption
from include.xcom_backends.errors import XComStorageConfigError

SECTION = "xcom_storage"
DATAFRAME_FORMATS = ("parquet", "csv")
COMPRESSIONS = ("none", "snappy", "gzip", "zstd")
MAX_READ_CONCURRENCY = 64


@dataclass(frozen=True)
class XComStorageSettings:
    bucket: str
    prefix: str
    conn_id: str
    threshold_bytes: int
    compression: str
    dataframe_format: str
    timeout_seconds: float = 30.0
    max_attempts: int = 3
    encryption: Encryption | None = None
    # How many objects a pull of every map index (get_all) fetches at a time; 1: one after another.
    read_concurrency: int = 8

    @property
    def connect_timeout(self) -> float:
        return min(10.0, self.timeout_seconds)

    @classmethod
    def from_airflow_config(cls, *, default_conn_id: str) -> XComStorageSettings:
        from airflow.sdk.configuration import conf

        def get(name: str, default: str) -> str:
            return str(conf.get(SECTION, name, fallback=default)).strip()

        return cls.parse(
            bucket=get("bucket", "airflow-xcom"),
            prefix=get("prefix", "xcom"),
            conn_id=get("conn_id", default_conn_id),
            threshold_bytes=get("threshold_bytes", "0"),
            compression=get("compression", "snappy"),
            dataframe_format=get("dataframe_format", "parquet"),
            timeout_seconds=get("timeout_seconds", "30"),
            max_attempts=get("max_attempts", "3"),
            encryption=get("encryption", ""),
            read_concurrency=get("read_concurrency", "8"),
        )

    @classmethod
    def parse(
        cls,
        *,
        bucket: str,
        prefix: str,
        conn_id: str,
        threshold_bytes: str | int,
        compression: str,
        dataframe_format: str,
        timeout_seconds: str | float = 30.0,
        max_attempts: str | int = 3,
        store: str | None = None,
        encryption: str | dict[str, Any] | Encryption | None = None,
        read_concurrency: str | int = 8,
    ) -> XComStorageSettings:
        """``store``: the name of a store of ``[xcom_storage] stores`` these settings come from (for the
        error message), or None for the plain ``[xcom_storage]`` settings."""

        def bad(name: str, value: object, expected: str) -> XComStorageConfigError:
            if store is not None:
                return XComStorageConfigError(
                    f"Invalid [{SECTION}] stores: store {store!r}: {name} = {value!r}: expected {expected}. "
                    f"Fix AIRFLOW__{SECTION.upper()}__STORES or the [{SECTION}] section of airflow.cfg "
                    "(docs/routing.md)."
                )
            return XComStorageConfigError(
                f"Invalid setting [{SECTION}] {name} = {value!r}: expected {expected}. "
                f"Fix AIRFLOW__{SECTION.upper()}__{name.upper()} or the [{SECTION}] section of airflow.cfg."
            )

        if not bucket or "/" in bucket:
            raise bad("bucket", bucket, "a bucket (container) name without '/'")
        if not conn_id:
            raise bad("conn_id", conn_id, "an Airflow connection id")
        prefix = prefix.strip("/")
        if any(part in ("", ".", "..") for part in prefix.split("/")) and prefix:
            raise bad("prefix", prefix, "a path of non-empty segments without '.' or '..'")
        try:
            threshold = int(threshold_bytes)
        except (TypeError, ValueError):
            raise bad("threshold_bytes", threshold_bytes, "a whole number of bytes >= 0") from None
        if threshold < 0:
            raise bad("threshold_bytes", threshold_bytes, "a whole number of bytes >= 0")
        compression = compression.lower()
        if compression not in COMPRESSIONS:
            raise bad("compression", compression, " or ".join(COMPRESSIONS))
        dataframe_format = dataframe_format.lower()
        if dataframe_format not in DATAFRAME_FORMATS:
            raise bad("dataframe_format", dataframe_format, " or ".join(DATAFRAME_FORMATS))
        try:
            timeout = float(timeout_seconds)
        except (TypeError, ValueError):
            raise bad("timeout_seconds", timeout_seconds, "a number of seconds > 0") from None
        if not 0 < timeout <= 3600:
            raise bad("timeout_seconds", timeout_seconds, "a number of seconds > 0 and <= 3600")
        try:
            attempts = int(max_attempts)
        except (TypeError, ValueError):
            raise bad("max_attempts", max_attempts, "a whole number from 1 to 20") from None
        if not 1 <= attempts <= 20:
            raise bad("max_attempts", max_attempts, "a whole number from 1 to 20")
        expected_concurrency = f"a whole number from 1 (one object after another) to {MAX_READ_CONCURRENCY}"
        try:
            concurrency = int(read_concurrency)
        except (TypeError, ValueError):
            raise bad("read_concurrency", read_concurrency, expected_concurrency) from None
        if not 1 <= concurrency <= MAX_READ_CONCURRENCY:
            raise bad("read_concurrency", read_concurrency, expected_concurrency)
        if not isinstance(encryption, Encryption):
            where = f"[{SECTION}] encryption" if store is None else f"[{SECTION}] stores: store {store!r}: encryption"
            encryption = Encryption.parse(encryption, where=where)
        return cls(
            bucket,
            prefix,
            conn_id,
            threshold,
            compression,
            dataframe_format,
            timeout,
            attempts,
            encryption,
            read_concurrency=concurrency,
        )
