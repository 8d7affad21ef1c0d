"""The tutorial's class name, kept working: ``include.xcom_backend_pandas.CustomXComBackendPandas`` (S3)."""

from include.xcom_backends import S3PandasXComBackend


class CustomXComBackendPandas(S3PandasXComBackend):
    """S3 pandas backend under the name used in the Astronomer tutorial."""
