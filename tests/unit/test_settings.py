from __future__ import annotations

import pytest

from include.xcom_backends.errors import XComStorageConfigError
from include.xcom_backends.settings import XComStorageSettings

GOOD = {
    "bucket": "b",
    "prefix": "xcom",
    "conn_id": "c",
    "threshold_bytes": "0",
    "compression": "snappy",
    "dataframe_format": "parquet",
}


def test_defaults_from_airflow_config(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in GOOD:
        monkeypatch.delenv(f"AIRFLOW__XCOM_STORAGE__{name.upper()}", raising=False)
    s = XComStorageSettings.from_airflow_config(default_conn_id="s3_xcom_backend_conn")
    assert (s.bucket, s.prefix, s.conn_id, s.threshold_bytes) == ("airflow-xcom", "xcom", "s3_xcom_backend_conn", 0)
    assert (s.compression, s.dataframe_format) == ("snappy", "parquet")


def test_env_vars_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__XCOM_STORAGE__BUCKET", "mine")
    monkeypatch.setenv("AIRFLOW__XCOM_STORAGE__THRESHOLD_BYTES", "65536")
    monkeypatch.setenv("AIRFLOW__XCOM_STORAGE__DATAFRAME_FORMAT", "CSV")
    s = XComStorageSettings.from_airflow_config(default_conn_id="x")
    assert (s.bucket, s.threshold_bytes, s.dataframe_format) == ("mine", 65536, "csv")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("threshold_bytes", "ten"),
        ("threshold_bytes", "-1"),
        ("dataframe_format", "xlsx"),
        ("compression", "lz5"),
        ("bucket", ""),
        ("bucket", "a/b"),
        ("prefix", "a/../b"),
        ("conn_id", ""),
    ],
)
def test_invalid_value_names_the_setting(name: str, value: str) -> None:
    with pytest.raises(
        XComStorageConfigError, match=rf"\[xcom_storage\] {name} .*AIRFLOW__XCOM_STORAGE__{name.upper()}"
    ):
        XComStorageSettings.parse(**{**GOOD, name: value})


@pytest.mark.parametrize(
    ("name", "value"),
    [("timeout_seconds", "0"), ("timeout_seconds", "soon"), ("max_attempts", "0"), ("max_attempts", "2.5")],
)
def test_invalid_transport_settings(name: str, value: str) -> None:
    with pytest.raises(XComStorageConfigError, match=rf"\[xcom_storage\] {name} "):
        XComStorageSettings.parse(**{**GOOD, name: value})


def test_transport_settings() -> None:
    s = XComStorageSettings.parse(**{**GOOD, "timeout_seconds": "2.5", "max_attempts": "5"})
    assert (s.timeout_seconds, s.connect_timeout, s.max_attempts) == (2.5, 2.5, 5)
    assert XComStorageSettings.parse(**GOOD).connect_timeout == 10.0
