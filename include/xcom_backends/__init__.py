"""XCom backends that keep a small reference in Airflow's database and the value in object storage.

Set one of these in ``.env``, e.g. ``AIRFLOW__CORE__XCOM_BACKEND=include.xcom_backends.S3JSONXComBackend``.

One job per package, each run by its own process:

- this package and ``stores/``: the worker's backend (Airflow glue in ``backend.py``, the database
  form in ``dbform.py``, codecs, object keys, settings; one store per cloud);
- ``ui/``: the API server's plugin app (previews);
- ``ops/``: the operator's command line (``doctor``, ``gc``).

This ``__init__`` imports nothing, and the classes are loaded on first access (PEP 562): importing
``ui`` or ``ops`` costs only what they use, and Airflow can resolve ``[core] xcom_backend`` (when its
``airflow.sdk.execution_time.xcom`` module is first imported) while ``python -m`` runs this package.
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
