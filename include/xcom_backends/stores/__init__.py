from include.xcom_backends.stores.azure import AzureBlobStore
from include.xcom_backends.stores.base import ObjectInfo, ObjectStore
from include.xcom_backends.stores.gcs import GCSStore
from include.xcom_backends.stores.minio import MinIOStore
from include.xcom_backends.stores.s3 import S3Store

__all__ = ["AzureBlobStore", "GCSStore", "MinIOStore", "ObjectInfo", "ObjectStore", "S3Store"]
