"""One interface over each region's object store, built on the providers' hooks.

Every call goes through an Airflow hook created from the region's ``storage`` connection, so credentials
and endpoints come from connections or a secrets backend and never from this code.

Besides whole-object reads and writes, each store offers what streaming replication needs: ranged reads,
uploads in parts that stay invisible until completed (S3 multipart upload, Azure uncommitted blocks, GCS
part objects composed at the end), server-side copies, and a ``sha256`` metadata entry on objects.

Client libraries retry on their own for minutes by default (GCS for 120 s, Azure Blob from a 15 s backoff);
here they retry briefly (``CLIENT_RETRY_SECONDS``) and the Airflow task's retries, with backoff and visible
in the UI, handle longer outages.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

from include.catalogue import Region
from include.errors import ObjectNotFound

CLIENT_RETRY_SECONDS = 20
COPY_TIMEOUT_SECONDS = 3600
SHA256_METADATA = "sha256"


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    metadata: dict[str, str] = field(default_factory=dict)
    etag: str = ""  # changes whenever the object is written again (S3 and Azure ETag, GCS generation)


class PartUpload(Protocol):
    """An upload in numbered parts (any order, from several threads); nothing is visible before ``complete``."""

    def upload_part(self, number: int, data: bytes) -> None: ...

    def complete(self) -> None: ...

    def abort(self) -> None: ...


class ObjectStore(Protocol):
    """What the platform needs of a region's bucket or container."""

    region: Region

    def url(self, key: str) -> str: ...

    def put_bytes(self, key: str, data: bytes, metadata: dict[str, str] | None = None) -> None: ...

    def get_bytes(self, key: str) -> bytes: ...

    def read_range(self, key: str, start: int, length: int) -> bytes: ...

    def read_stream(self, key: str, chunk_size: int) -> Iterator[bytes]: ...

    def head(self, key: str) -> ObjectInfo | None: ...

    def list_keys(self, prefix: str) -> list[str]: ...

    def begin_upload(self, key: str, metadata: dict[str, str]) -> PartUpload: ...

    def copy(self, source_key: str, target_key: str, metadata: dict[str, str]) -> None: ...

    def delete(self, key: str) -> None: ...


class S3Store:
    """Amazon S3 through the amazon provider's ``S3Hook``."""

    def __init__(self, region: Region):
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook
        from botocore.config import Config

        self.region = region
        self.bucket = region.bucket
        self.hook = S3Hook(
            aws_conn_id=region.connections.storage,
            config=Config(retries={"mode": "standard", "max_attempts": 3}, max_pool_connections=32),
        )
        self.client = self.hook.get_conn()

    def url(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def put_bytes(self, key: str, data: bytes, metadata: dict[str, str] | None = None) -> None:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data, Metadata=metadata or {})

    def get_bytes(self, key: str) -> bytes:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except self.client.exceptions.NoSuchKey:
            raise ObjectNotFound(self.url(key)) from None

    def read_range(self, key: str, start: int, length: int) -> bytes:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=key, Range=f"bytes={start}-{start + length - 1}")
        except self.client.exceptions.NoSuchKey:
            raise ObjectNotFound(self.url(key)) from None
        return response["Body"].read()

    def read_stream(self, key: str, chunk_size: int) -> Iterator[bytes]:
        """The object's bytes from one GET, in pieces of at most ``chunk_size``."""
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
        except self.client.exceptions.NoSuchKey:
            raise ObjectNotFound(self.url(key)) from None
        try:
            yield from body.iter_chunks(chunk_size)
        finally:
            body.close()

    def head(self, key: str) -> ObjectInfo | None:
        from botocore.exceptions import ClientError

        try:
            response = self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return ObjectInfo(key, response["ContentLength"], response.get("Metadata", {}), response["ETag"].strip('"'))

    def list_keys(self, prefix: str) -> list[str]:
        return self.hook.list_keys(bucket_name=self.bucket, prefix=prefix)

    def begin_upload(self, key: str, metadata: dict[str, str]) -> PartUpload:
        return _S3PartUpload(self.client, self.bucket, key, metadata)

    def copy(self, source_key: str, target_key: str, metadata: dict[str, str]) -> None:
        # The managed copy switches to a multipart server-side copy above 5 GiB.
        self.client.copy(
            {"Bucket": self.bucket, "Key": source_key},
            self.bucket,
            target_key,
            ExtraArgs={"Metadata": metadata, "MetadataDirective": "REPLACE"},
        )

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=key)


class _S3PartUpload:
    def __init__(self, client, bucket: str, key: str, metadata: dict[str, str]):
        self.client, self.bucket, self.key = client, bucket, key
        self.upload_id = client.create_multipart_upload(Bucket=bucket, Key=key, Metadata=metadata)["UploadId"]
        self.etags: dict[int, str] = {}

    def upload_part(self, number: int, data: bytes) -> None:
        response = self.client.upload_part(
            Bucket=self.bucket, Key=self.key, UploadId=self.upload_id, PartNumber=number + 1, Body=data
        )
        self.etags[number + 1] = response["ETag"]

    def complete(self) -> None:
        parts = [{"PartNumber": n, "ETag": self.etags[n]} for n in sorted(self.etags)]
        self.client.complete_multipart_upload(
            Bucket=self.bucket, Key=self.key, UploadId=self.upload_id, MultipartUpload={"Parts": parts}
        )

    def abort(self) -> None:
        self.client.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self.upload_id)


class GCSStore:
    """Google Cloud Storage through the client of ``GCSEndpointHook`` (the google provider's ``GCSHook``)."""

    def __init__(self, region: Region):
        from google.cloud.storage.retry import DEFAULT_RETRY

        from include.clouds.hooks.gcs import GCSEndpointHook

        self.region = region
        self.hook = GCSEndpointHook(gcp_conn_id=region.connections.storage)
        self.bucket = self.hook.get_conn().bucket(region.bucket)
        self.retry = DEFAULT_RETRY.with_timeout(CLIENT_RETRY_SECONDS)

    def url(self, key: str) -> str:
        return f"gs://{self.region.bucket}/{key}"

    def put_bytes(self, key: str, data: bytes, metadata: dict[str, str] | None = None) -> None:
        blob = self.bucket.blob(key)
        blob.metadata = metadata or None
        blob.upload_from_string(data, retry=self.retry, timeout=CLIENT_RETRY_SECONDS)

    def get_bytes(self, key: str) -> bytes:
        from google.api_core.exceptions import NotFound

        try:
            return self.bucket.blob(key).download_as_bytes(retry=self.retry, timeout=CLIENT_RETRY_SECONDS)
        except NotFound:
            raise ObjectNotFound(self.url(key)) from None

    def read_range(self, key: str, start: int, length: int) -> bytes:
        from google.api_core.exceptions import NotFound

        try:
            return self.bucket.blob(key).download_as_bytes(
                start=start, end=start + length - 1, retry=self.retry, timeout=CLIENT_RETRY_SECONDS, checksum=None
            )
        except NotFound:
            raise ObjectNotFound(self.url(key)) from None

    def read_stream(self, key: str, chunk_size: int) -> Iterator[bytes]:
        """The object's bytes read in order, ``chunk_size`` at a time."""
        from google.api_core.exceptions import NotFound

        try:
            with self.bucket.blob(key).open("rb", chunk_size=chunk_size, retry=self.retry) as reader:
                while chunk := reader.read(chunk_size):
                    yield chunk
        except NotFound:
            raise ObjectNotFound(self.url(key)) from None

    def head(self, key: str) -> ObjectInfo | None:
        blob = self.bucket.get_blob(key, retry=self.retry, timeout=CLIENT_RETRY_SECONDS)
        if blob is None:
            return None
        return ObjectInfo(key, blob.size, dict(blob.metadata or {}), str(blob.generation))

    def list_keys(self, prefix: str) -> list[str]:
        return [blob.name for blob in self.bucket.list_blobs(prefix=prefix, retry=self.retry)]

    def begin_upload(self, key: str, metadata: dict[str, str]) -> PartUpload:
        return _GCSPartUpload(self, key, metadata)

    def copy(self, source_key: str, target_key: str, metadata: dict[str, str]) -> None:
        target = self.bucket.blob(target_key)
        target.metadata = metadata
        token, _, _ = target.rewrite(self.bucket.blob(source_key), retry=self.retry)
        while token is not None:
            token, _, _ = target.rewrite(self.bucket.blob(source_key), token=token, retry=self.retry)

    def delete(self, key: str) -> None:
        from google.api_core.exceptions import NotFound

        try:
            self.bucket.blob(key).delete(retry=self.retry, timeout=CLIENT_RETRY_SECONDS)
        except NotFound:
            pass


class _GCSPartUpload:
    """Parts upload as separate objects in parallel, then ``compose`` joins them (32 at a time)."""

    COMPOSE_LIMIT = 32

    def __init__(self, store: GCSStore, key: str, metadata: dict[str, str]):
        self.store, self.key, self.metadata = store, key, metadata
        self.parts: dict[int, str] = {}
        self.lock = threading.Lock()

    def _part_key(self, number: int) -> str:
        return f"{self.key}.part-{number:06d}"

    def upload_part(self, number: int, data: bytes) -> None:
        self.store.put_bytes(self._part_key(number), data)
        with self.lock:
            self.parts[number] = self._part_key(number)

    def complete(self) -> None:
        bucket = self.store.bucket
        sources = [bucket.blob(self.parts[n]) for n in sorted(self.parts)]
        intermediates = []
        while len(sources) > self.COMPOSE_LIMIT:
            merged = []
            for index in range(0, len(sources), self.COMPOSE_LIMIT):
                group = bucket.blob(f"{self.key}.compose-{len(intermediates):06d}")
                group.compose(sources[index : index + self.COMPOSE_LIMIT], retry=self.store.retry)
                intermediates.append(group.name)
                merged.append(group)
            sources = merged
        target = bucket.blob(self.key)
        target.metadata = self.metadata
        target.compose(sources, retry=self.store.retry)
        for key in [*self.parts.values(), *intermediates]:
            self.store.delete(key)

    def abort(self) -> None:
        for key in self.parts.values():
            self.store.delete(key)


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
            max_single_put_size=8 * 1024 * 1024,
        )
        self.container = bounded.get_container_client(region.bucket)

    def url(self, key: str) -> str:
        return f"azure://{self.region.bucket}/{key}"

    def put_bytes(self, key: str, data: bytes, metadata: dict[str, str] | None = None) -> None:
        self.container.upload_blob(key, data, overwrite=True, metadata=metadata)

    def get_bytes(self, key: str) -> bytes:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return self.container.download_blob(key).readall()
        except ResourceNotFoundError:
            raise ObjectNotFound(self.url(key)) from None

    def read_range(self, key: str, start: int, length: int) -> bytes:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return self.container.download_blob(key, offset=start, length=length).readall()
        except ResourceNotFoundError:
            raise ObjectNotFound(self.url(key)) from None

    def read_stream(self, key: str, chunk_size: int) -> Iterator[bytes]:
        """The object's bytes read in order, in the client's download chunks."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            yield from self.container.download_blob(key).chunks()
        except ResourceNotFoundError:
            raise ObjectNotFound(self.url(key)) from None

    def head(self, key: str) -> ObjectInfo | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            properties = self.container.get_blob_client(key).get_blob_properties()
        except ResourceNotFoundError:
            return None
        return ObjectInfo(key, properties.size, dict(properties.metadata or {}), properties.etag.strip('"'))

    def list_keys(self, prefix: str) -> list[str]:
        return list(self.container.list_blob_names(name_starts_with=prefix))

    def begin_upload(self, key: str, metadata: dict[str, str]) -> PartUpload:
        return _AzurePartUpload(self.container.get_blob_client(key), metadata)

    def copy(self, source_key: str, target_key: str, metadata: dict[str, str]) -> None:
        # A copy inside one storage account is authorised by the account's own credential. It is started
        # asynchronously (the synchronous Copy Blob From URL takes sources up to 256 MiB only) and polled.
        source = self.container.get_blob_client(source_key)
        target = self.container.get_blob_client(target_key)
        copy = target.start_copy_from_url(source.url, metadata=metadata)
        deadline = time.monotonic() + COPY_TIMEOUT_SECONDS
        while copy["copy_status"] == "pending":
            if time.monotonic() > deadline:
                target.abort_copy(copy["copy_id"])
                raise TimeoutError(f"copying {self.url(source_key)} did not finish in {COPY_TIMEOUT_SECONDS} s")
            time.sleep(0.5)
            copy = {"copy_status": target.get_blob_properties().copy.status, "copy_id": copy["copy_id"]}
        if copy["copy_status"] != "success":
            raise RuntimeError(f"copying {self.url(source_key)} to {self.url(target_key)}: {copy['copy_status']}")

    def delete(self, key: str) -> None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            self.container.delete_blob(key)
        except ResourceNotFoundError:
            pass


class _AzurePartUpload:
    """Blocks are staged uncommitted (invisible) and committed as one list at the end."""

    def __init__(self, blob, metadata: dict[str, str]):
        self.blob, self.metadata = blob, metadata
        self.block_ids: dict[int, str] = {}
        self.lock = threading.Lock()

    def upload_part(self, number: int, data: bytes) -> None:
        block_id = base64.b64encode(f"{number:010d}".encode()).decode()
        self.blob.stage_block(block_id, data)
        with self.lock:
            self.block_ids[number] = block_id

    def complete(self) -> None:
        from azure.storage.blob import BlobBlock

        blocks = [BlobBlock(block_id=self.block_ids[n]) for n in sorted(self.block_ids)]
        self.blob.commit_block_list(blocks, metadata=self.metadata)

    def abort(self) -> None:
        """Uncommitted blocks are discarded by the service; nothing was ever visible."""


STORES: dict[str, type[S3Store | GCSStore | AzureBlobStore]] = {
    "aws": S3Store,
    "gcp": GCSStore,
    "azure": AzureBlobStore,
}


def store_for(region: Region) -> ObjectStore:
    """The object store of ``region``, reached through its ``storage`` connection."""
    return STORES[region.provider](region)
