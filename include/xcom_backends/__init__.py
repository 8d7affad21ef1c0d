"""XCom backends that keep a small reference in Airflow's database and the value in object storage.

Set one of these in ``.env``, e.g. ``AIRFLOW__CORE__XCOM_BACKEND=include.xcom_backends.S3JSONXComBackend``.

The classes are loaded on first access (PEP 562). Airflow resolves ``[core] xcom_backend`` when its
``airflow.sdk.execution_time.xcom`` module is first imported; keeping this package free of Airflow
imports lets ``python -m include.xcom_backends`` trigger that resolution without finding this
package half-initialized.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AzureJSONXComBackend",
    "AzurePandasXComBackend",
    "GCSJSONXComBackend",
    "GCSPandasXComBackend",
    "MinIOJSONXComBackend",
    "MinIOPandasXComBackend",
    "ObjectStorageXCom",
    "S3JSONXComBackend",
    "S3PandasXComBackend",
]


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from include.xcom_backends import classes

    return getattr(classes, name)
