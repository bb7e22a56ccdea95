"""One small interface over each region's object store, built on the providers' hooks.

Every call goes through an Airflow hook created from the region's ``storage`` connection, so credentials
and endpoints come from connections or a secrets backend and never from this code.

Client libraries retry on their own for minutes by default (GCS for 120 s, Azure Blob from a 15 s backoff);
here they retry briefly (``CLIENT_RETRY_SECONDS``) and the Airflow task's retries, with backoff and visible
in the UI, handle longer outages.
"""

from __future__ import annotations

from typing import Protocol

from include.catalogue import Region

CLIENT_RETRY_SECONDS = 20


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
    """Google Cloud Storage through the client of ``GCSEndpointHook`` (the google provider's ``GCSHook``)."""

    def __init__(self, region: Region):
        from google.cloud.storage.retry import DEFAULT_RETRY

        from cloud_hooks.gcs import GCSEndpointHook

        self.region = region
        self.hook = GCSEndpointHook(gcp_conn_id=region.connections.storage)
        self.retry = DEFAULT_RETRY.with_timeout(CLIENT_RETRY_SECONDS)

    def _blob(self, key: str):
        return self.hook.get_conn().bucket(self.region.bucket).blob(key)

    def put_bytes(self, key: str, data: bytes) -> None:
        self._blob(key).upload_from_string(data, retry=self.retry, timeout=CLIENT_RETRY_SECONDS)

    def get_bytes(self, key: str) -> bytes:
        from google.api_core.exceptions import NotFound

        try:
            return self._blob(key).download_as_bytes(retry=self.retry, timeout=CLIENT_RETRY_SECONDS)
        except NotFound:
            raise ObjectNotFound(f"gs://{self.region.bucket}/{key}") from None

    def delete(self, key: str) -> None:
        from google.api_core.exceptions import NotFound

        try:
            self._blob(key).delete(retry=self.retry, timeout=CLIENT_RETRY_SECONDS)
        except NotFound:
            pass


class AzureBlobStore:
    """Azure Blob Storage through the client of the microsoft-azure provider's ``WasbHook``."""

    def __init__(self, region: Region):
        from airflow.providers.microsoft.azure.hooks.wasb import WasbHook
        from azure.storage.blob import BlobServiceClient, ExponentialRetry

        self.region = region
        self.hook = WasbHook(wasb_conn_id=region.connections.storage)
        service = self.hook.get_conn()
        # Same account and credential as the hook's client, with a short retry policy.
        bounded = BlobServiceClient(
            service.url,
            credential=service.credential,
            retry_policy=ExponentialRetry(initial_backoff=1, increment_base=2, retry_total=2),
            connection_timeout=CLIENT_RETRY_SECONDS,
        )
        self.container = bounded.get_container_client(region.bucket)

    def put_bytes(self, key: str, data: bytes) -> None:
        self.container.upload_blob(key, data, overwrite=True)

    def get_bytes(self, key: str) -> bytes:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return self.container.download_blob(key).readall()
        except ResourceNotFoundError:
            raise ObjectNotFound(f"azure://{self.region.bucket}/{key}") from None

    def delete(self, key: str) -> None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            self.container.delete_blob(key)
        except ResourceNotFoundError:
            pass


STORES: dict[str, type[S3Store | GCSStore | AzureBlobStore]] = {
    "aws": S3Store,
    "gcp": GCSStore,
    "azure": AzureBlobStore,
}


def store_for(region: Region) -> ObjectStore:
    """The object store of ``region``, reached through its ``storage`` connection."""
    return STORES[region.provider](region)
