from include.xcom_backends.stores.azure import AzureBlobStore
from include.xcom_backends.stores.base import ObjectInfo, ObjectStore
from include.xcom_backends.stores.gcs import GCSStore
from include.xcom_backends.stores.minio import MinIOStore
from include.xcom_backends.stores.s3 import S3Store

# [xcom_storage] stores: a store's "type" -> its class
STORE_CLASSES: dict[str, type[ObjectStore]] = {
    "s3": S3Store,
    "minio": MinIOStore,
    "gcs": GCSStore,
    "azure": AzureBlobStore,
}

__all__ = ["STORE_CLASSES", "AzureBlobStore", "GCSStore", "MinIOStore", "ObjectInfo", "ObjectStore", "S3Store"]
