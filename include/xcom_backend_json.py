"""The tutorial's class name, kept working: ``include.xcom_backend_json.CustomXComBackendJSON`` (S3)."""

from include.xcom_backends import S3JSONXComBackend


class CustomXComBackendJSON(S3JSONXComBackend):
    """S3 JSON backend under the name used in the Astronomer tutorial."""
