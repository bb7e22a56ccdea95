"""One small interface over each region's object store, built on the providers' hooks.

Every call goes through an Airflow hook created from the region's ``storage`` connection, so credentials
and endpoints come from connections or a secrets backend and never from this code.
"""

from __future__ import annotations

from typing import Protocol

from include.catalogue import Region


class ObjectNotFound(LookupError):
    """The object does not exist in the store."""


class ObjectStore(Protocol):
    """What the platform needs of a region's bucket or container."""

    region: Region

    def put_bytes(self, key: str, data: bytes) -> None: ...

    def get_bytes(self, key: str) -> bytes: ...

    def delete(self, key: str) -> None: ...


class S3Store:
    """Amazon S3 through the amazon provider's ``S3Hook``."""

    def __init__(self, region: Region):
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        self.region = region
        self.hook = S3Hook(aws_conn_id=region.connections.storage)

    def put_bytes(self, key: str, data: bytes) -> None:
        self.hook.load_bytes(data, key=key, bucket_name=self.region.bucket, replace=True)

    def get_bytes(self, key: str) -> bytes:
        client = self.hook.get_conn()
        try:
            return client.get_object(Bucket=self.region.bucket, Key=key)["Body"].read()
        except client.exceptions.NoSuchKey:
            raise ObjectNotFound(f"s3://{self.region.bucket}/{key}") from None

    def delete(self, key: str) -> None:
        self.hook.delete_objects(bucket=self.region.bucket, keys=[key])


class GCSStore:
    """Google Cloud Storage through ``GCSEndpointHook`` (the google provider's ``GCSHook``)."""

    def __init__(self, region: Region):
        from cloud_hooks.gcs import GCSEndpointHook

        self.region = region
        self.hook = GCSEndpointHook(gcp_conn_id=region.connections.storage)

    def put_bytes(self, key: str, data: bytes) -> None:
        self.hook.upload(bucket_name=self.region.bucket, object_name=key, data=data)

    def get_bytes(self, key: str) -> bytes:
        from google.api_core.exceptions import NotFound

        try:
            return self.hook.download(bucket_name=self.region.bucket, object_name=key)
        except NotFound:
            raise ObjectNotFound(f"gs://{self.region.bucket}/{key}") from None

    def delete(self, key: str) -> None:
        self.hook.delete(bucket_name=self.region.bucket, object_name=key)


class AzureBlobStore:
    """Azure Blob Storage through the microsoft-azure provider's ``WasbHook``."""

    def __init__(self, region: Region):
        from airflow.providers.microsoft.azure.hooks.wasb import WasbHook

        self.region = region
        self.hook = WasbHook(wasb_conn_id=region.connections.storage)

    def put_bytes(self, key: str, data: bytes) -> None:
        self.hook.upload(container_name=self.region.bucket, blob_name=key, data=data, overwrite=True)

    def get_bytes(self, key: str) -> bytes:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return self.hook.download(container_name=self.region.bucket, blob_name=key).readall()
        except ResourceNotFoundError:
            raise ObjectNotFound(f"azure://{self.region.bucket}/{key}") from None

    def delete(self, key: str) -> None:
        self.hook.delete_file(container_name=self.region.bucket, blob_name=key, ignore_if_missing=True)


STORES: dict[str, type[S3Store | GCSStore | AzureBlobStore]] = {
    "aws": S3Store,
    "gcp": GCSStore,
    "azure": AzureBlobStore,
}


def store_for(region: Region) -> ObjectStore:
    """The object store of ``region``, reached through its ``storage`` connection."""
    return STORES[region.provider](region)
