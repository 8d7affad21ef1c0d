"""The named backends: each one a short composition of a store, a default connection and a codec choice."""

from __future__ import annotations

from include.xcom_backends.backend import ObjectStorageXCom
from include.xcom_backends.stores import AzureBlobStore, GCSStore, MinIOStore, S3Store


class S3JSONXComBackend(ObjectStorageXCom):
    store_class = S3Store
    default_conn_id = "s3_xcom_backend_conn"


class S3PandasXComBackend(S3JSONXComBackend):
    encodes_pandas = True


class GCSJSONXComBackend(ObjectStorageXCom):
    store_class = GCSStore
    default_conn_id = "gcs_xcom_backend_conn"


class GCSPandasXComBackend(GCSJSONXComBackend):
    encodes_pandas = True


class AzureJSONXComBackend(ObjectStorageXCom):
    store_class = AzureBlobStore
    default_conn_id = "azure_xcom_backend_conn"


class AzurePandasXComBackend(AzureJSONXComBackend):
    encodes_pandas = True


class MinIOJSONXComBackend(ObjectStorageXCom):
    store_class = MinIOStore
    default_conn_id = "minio_xcom_backend_conn"


class MinIOPandasXComBackend(MinIOJSONXComBackend):
    encodes_pandas = True
