"""One interface over each region's object store, built on the providers' hooks.

Every call goes through an Airflow hook created from the region's ``storage`` connection, so credentials
and endpoints come from connections or a secrets backend and never from this code.

Besides whole-object reads and writes, each store offers what streaming replication needs: ranged reads,
a ``sha256`` metadata entry on objects, and uploads in parts that stay invisible until completed, each part
sent with the provider's own checksum of its bytes:

- S3: a multipart upload with CRC64NVME checksums, per part and for the full object (``FULL_OBJECT``) at
  completion; S3 refuses a part or an object whose bytes do not match, and reports the full-object value.
- GCS: part objects sent with their crc32c (GCS refuses a mismatch), each checked against the crc32c GCS
  reports for what it stored before the parts are composed; then the composed object's crc32c.
- Azure Blob: uncommitted blocks sent with their MD5, which the service checks on Put Block; the committed
  block list is then compared with the blocks staged (a block blob has no whole-object checksum).

``complete`` makes the object visible at its key, then compares what the provider reports with the values
computed from the parts sent: on a mismatch it deletes the object and raises ``ChecksumMismatch``.

Client libraries retry on their own for minutes by default (GCS for 120 s, Azure Blob from a 15 s backoff);
here they retry briefly (``CLIENT_RETRY_SECONDS``) and the Airflow task's retries, with backoff and visible
in the UI, handle longer outages.
"""

from __future__ import annotations

import base64
import io
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from include.catalogue import Region
from include.errors import ChecksumMismatch, ObjectNotFound

CLIENT_RETRY_SECONDS = 20
SHA256_METADATA = "sha256"
RESUMABLE_CHUNK_UNIT = 256 * 1024  # GCS resumable uploads take chunks in multiples of this


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    metadata: dict[str, str] = field(default_factory=dict)
    etag: str = ""  # changes whenever the object is written again (S3 and Azure ETag, GCS generation)


class PartUpload(Protocol):
    """An upload in numbered parts (any order, from several threads); nothing is visible before ``complete``.

    ``complete`` checks what the provider reports for the stored object against the checksums of the parts
    sent, deletes the object and raises ``ChecksumMismatch`` if they differ, and returns what it checked.
    """

    def upload_part(self, number: int, data: bytes) -> None: ...

    def complete(self) -> str: ...

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

    def delete(self, key: str) -> None: ...


def crc_base64(value: int, width: int) -> str:
    """A CRC as the providers spell it: its ``width`` big-endian bytes in base64."""
    return base64.b64encode(value.to_bytes(width, "big")).decode()


def _combined(parts: list[tuple[int, int]], combine: Callable[[int, int, int], int]) -> int:
    """The CRC of the parts' bytes one after the other, from each part's (CRC, size)."""
    whole = 0
    for crc, size in parts:
        whole = combine(whole, crc, size)
    return whole


def _checked(store: ObjectStore, key: str, what: str, stored: str | None, sent: str) -> str:
    """``what`` and its value once the provider's value for the stored object is the one computed from the bytes
    sent; otherwise the object is deleted and ``ChecksumMismatch`` names both."""
    if stored != sent:
        store.delete(key)
        raise ChecksumMismatch(
            f"{store.url(key)}: stored with {what} {stored}, but the bytes sent have {what} {sent}; deleted"
        )
    return f"{what} {sent}"


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
        return _S3PartUpload(self, key, metadata)

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=key)


class _S3PartUpload:
    """A multipart upload whose parts and full object carry CRC64NVME checksums (``ChecksumType=FULL_OBJECT``)."""

    def __init__(self, store: S3Store, key: str, metadata: dict[str, str]):
        self.store, self.key = store, key
        self.target = {"Bucket": store.bucket, "Key": key}
        self.upload_id = store.client.create_multipart_upload(
            **self.target, Metadata=metadata, ChecksumAlgorithm="CRC64NVME", ChecksumType="FULL_OBJECT"
        )["UploadId"]
        self.parts: dict[int, tuple[str, int, int]] = {}  # number: ETag, CRC64NVME, size
        self.lock = threading.Lock()

    def upload_part(self, number: int, data: bytes) -> None:
        from awscrt.checksums import crc64nvme

        crc = crc64nvme(data)
        checksum = crc_base64(crc, 8)  # S3 refuses a part whose bytes do not match it
        response = self.store.client.upload_part(
            **self.target, UploadId=self.upload_id, PartNumber=number + 1, Body=data, ChecksumCRC64NVME=checksum
        )
        with self.lock:
            self.parts[number] = (response["ETag"], crc, len(data))

    def complete(self) -> str:
        from awscrt.checksums import combine_crc64nvme

        numbers = sorted(self.parts)
        parts = [
            {"PartNumber": n + 1, "ETag": self.parts[n][0], "ChecksumCRC64NVME": crc_base64(self.parts[n][1], 8)}
            for n in numbers
        ]
        sent = crc_base64(_combined([self.parts[n][1:] for n in numbers], combine_crc64nvme), 8)
        self.store.client.complete_multipart_upload(
            **self.target,
            UploadId=self.upload_id,
            MultipartUpload={"Parts": parts},
            ChecksumCRC64NVME=sent,
            ChecksumType="FULL_OBJECT",
        )
        stored = self.store.client.head_object(**self.target, ChecksumMode="ENABLED").get("ChecksumCRC64NVME")
        return _checked(self.store, self.key, "CRC64NVME", stored, sent)

    def abort(self) -> None:
        try:
            self.store.client.abort_multipart_upload(**self.target, UploadId=self.upload_id)
        except self.store.client.exceptions.NoSuchUpload:
            pass  # completed (and deleted by a failed check) or aborted already


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
        self.parts: dict[int, tuple[str, int, int]] = {}  # number: part object, crc32c, size
        self.lock = threading.Lock()

    def upload_part(self, number: int, data: bytes) -> None:
        from awscrt.checksums import crc32c

        crc = crc32c(data)
        # A resumable upload in one chunk sends ``data`` as it is (a multipart upload would copy it), with the
        # crc32c in its metadata: GCS refuses to finish an upload whose bytes do not match it.
        chunk_size = -(-len(data) // RESUMABLE_CHUNK_UNIT) * RESUMABLE_CHUNK_UNIT
        blob = self.store.bucket.blob(f"{self.key}.part-{number:06d}", chunk_size=chunk_size)
        blob.upload_from_file(
            io.BytesIO(data),
            checksum=None,
            crc32c_checksum_value=crc_base64(crc, 4),
            retry=self.store.retry,
            timeout=CLIENT_RETRY_SECONDS,
        )
        with self.lock:
            self.parts[number] = (blob.name, crc, len(data))
        _checked(self.store, blob.name, "crc32c", blob.crc32c, crc_base64(crc, 4))  # before it is composed

    def complete(self) -> str:
        from awscrt.checksums import combine_crc32c

        numbers = sorted(self.parts)
        sent = crc_base64(_combined([self.parts[n][1:] for n in numbers], combine_crc32c), 4)
        bucket = self.store.bucket
        sources = [bucket.blob(self.parts[n][0]) for n in numbers]
        intermediates: list[str] = []
        target = bucket.blob(self.key)
        try:
            while len(sources) > self.COMPOSE_LIMIT:
                merged = []
                for index in range(0, len(sources), self.COMPOSE_LIMIT):
                    group = bucket.blob(f"{self.key}.compose-{len(intermediates):06d}")
                    group.compose(sources[index : index + self.COMPOSE_LIMIT], retry=self.store.retry)
                    intermediates.append(group.name)
                    merged.append(group)
                sources = merged
            target.metadata = self.metadata
            target.compose(sources, retry=self.store.retry)
        finally:
            self.abort()
            for name in intermediates:
                self.store.delete(name)
        return _checked(self.store, self.key, "crc32c", target.crc32c, sent)

    def abort(self) -> None:
        """Delete the part objects uploaded so far."""
        with self.lock:
            names = [name for name, _, _ in self.parts.values()]
            self.parts.clear()
        for name in names:
            self.store.delete(name)


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
        return _AzurePartUpload(self, key, metadata)

    def delete(self, key: str) -> None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            self.container.delete_blob(key)
        except ResourceNotFoundError:
            pass


class _AzurePartUpload:
    """Blocks are staged uncommitted (invisible), each with its MD5, and committed as one list at the end."""

    def __init__(self, store: AzureBlobStore, key: str, metadata: dict[str, str]):
        self.store, self.key, self.metadata = store, key, metadata
        self.blob = store.container.get_blob_client(key)
        self.blocks: dict[int, tuple[str, int]] = {}  # number: block id, size
        self.lock = threading.Lock()

    def upload_part(self, number: int, data: bytes) -> None:
        from azure.core.exceptions import HttpResponseError
        from azure.storage.blob import StorageErrorCode

        block_id = base64.b64encode(f"{number:010d}".encode()).decode()
        try:
            self.blob.stage_block(block_id, data, validate_content=True)  # sent with the block's MD5
        except HttpResponseError as exc:
            if exc.error_code != StorageErrorCode.MD5_MISMATCH:
                raise
            md5 = getattr(exc, "additional_info", None) or {}
            raise ChecksumMismatch(
                f"{self.store.url(self.key)}: block {number} refused by Put Block: it arrived with MD5 "
                f"{md5.get('servercalculatedmd5')}, but the bytes sent have MD5 {md5.get('userspecifiedmd5')}"
            ) from None
        with self.lock:
            self.blocks[number] = (block_id, len(data))

    def complete(self) -> str:
        from azure.storage.blob import BlobBlock

        staged = [self.blocks[n] for n in sorted(self.blocks)]
        self.blob.commit_block_list([BlobBlock(block_id=block_id) for block_id, _ in staged], metadata=self.metadata)
        committed, _ = self.blob.get_block_list("committed")
        if [(block.id, block.size) for block in committed] != staged:
            self.store.delete(self.key)
            raise ChecksumMismatch(f"{self.store.url(self.key)}: the committed blocks are not those staged; deleted")
        return f"{len(staged)} blocks, each checked against its MD5 on Put Block"

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
