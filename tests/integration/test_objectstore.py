"""The object stores of the three regions, through the providers' hooks, against the local emulators: round trips,
uploads in parts checked by each provider's checksums, and what each emulator validates (measured here)."""

from __future__ import annotations

import hashlib
import io
import os

import pytest
from awscrt.checksums import crc32c, crc64nvme

from include.catalogue import load_catalogue
from include.clouds.objectstore import crc_base64, store_for
from include.errors import ObjectNotFound
from include.wiring import ChecksumMismatch, probe_region

pytestmark = pytest.mark.integration
REGIONS = [region.name for region in load_catalogue().regions]


@pytest.mark.parametrize("region_name", REGIONS)
def test_put_get_delete_round_trip(local_clouds, region_name):
    store = store_for(load_catalogue().region(region_name))
    data = hashlib.sha256(region_name.encode()).digest() * 1000
    store.put_bytes("tests/round-trip.bin", data)
    assert store.get_bytes("tests/round-trip.bin") == data
    store.delete("tests/round-trip.bin")
    with pytest.raises(ObjectNotFound, match="tests/round-trip.bin"):
        store.get_bytes("tests/round-trip.bin")


@pytest.mark.parametrize("region_name", REGIONS)
def test_probe_region_writes_verifies_and_cleans_up(local_clouds, region_name):
    region = load_catalogue().region(region_name)
    result = probe_region(region, run_id="manual__test")
    assert result["region"] == region_name and result["size"] > 0
    with pytest.raises(ObjectNotFound):
        store_for(region).get_bytes(result["key"])


class CorruptingStore:
    """A real region's store whose reads come back with one byte flipped, as a faulty network would."""

    def __init__(self, store):
        self.store = store
        self.region = store.region

    def put_bytes(self, key, data):
        self.store.put_bytes(key, data)

    def get_bytes(self, key):
        data = bytearray(self.store.get_bytes(key))
        data[len(data) // 2] ^= 0x01
        return bytes(data)

    def delete(self, key):
        self.store.delete(key)


def test_probe_detects_corruption_and_still_cleans_up(local_clouds):
    region = load_catalogue().region(REGIONS[0])
    real_store = store_for(region)
    with pytest.raises(ChecksumMismatch, match=r"read back with SHA-256 [0-9a-f]{64}, but [0-9a-f]{64} was written"):
        probe_region(region, run_id="manual__corrupt", store=CorruptingStore(real_store))
    with pytest.raises(ObjectNotFound):
        real_store.get_bytes(f"_platform/wiring/manual__corrupt/{region.name}.bin")


# -- uploads in parts, checked by the provider's own checksums --------------------------------------------------

MIB = 2**20


def expected_check(provider: str, data: bytes) -> str:
    """What ``complete`` reports it checked, for ``data`` uploaded as two parts."""
    if provider == "aws":
        return f"CRC64NVME {crc_base64(crc64nvme(data), 8)}"
    if provider == "gcp":
        return f"crc32c {crc_base64(crc32c(data), 4)}"
    return "2 blocks, each checked against its MD5 on Put Block"


@pytest.mark.parametrize("region_name", REGIONS)
def test_part_upload_is_invisible_until_complete_then_checked_by_the_provider(local_clouds, region_name):
    """Parts sent out of order are invisible until ``complete``, which checks the provider's checksum of what it
    stored (S3's full-object CRC64NVME, the composed object's crc32c, Azure's committed blocks) against those of
    the parts sent; the object then carries its metadata, and nothing else is left (no GCS part objects)."""
    region = load_catalogue().region(region_name)
    store, key = store_for(region), f"tests/parts/{region_name}.bin"
    parts = [os.urandom(5 * MIB), os.urandom(1000)]
    upload = store.begin_upload(key, {"sha256": "the manifest's"})
    upload.upload_part(1, parts[1])
    upload.upload_part(0, parts[0])
    assert store.head(key) is None, "visible before complete"

    assert upload.complete() == expected_check(region.provider, b"".join(parts))

    assert store.get_bytes(key) == b"".join(parts)
    assert store.head(key).metadata == {"sha256": "the manifest's"}
    assert store.list_keys("tests/parts/") == [key]
    store.delete(key)


def test_moto_accepts_wrong_crc64nvme_and_reports_the_crc64nvme_of_what_it_stored(local_clouds):
    """Measured on moto: a part and a completion sent with a wrong CRC64NVME are both accepted (real S3 refuses
    them with BadDigest, which cannot be checked here), and the FULL_OBJECT CRC64NVME moto reports afterwards is
    that of the bytes it stored. A mismatch would thus be seen only after the object became visible, so the local
    S3 region reads replicas back (``verification: read_back`` in config/regions.yaml)."""
    store = store_for(load_catalogue().region(REGIONS[0]))
    data, key = os.urandom(1000), "tests/parts/wrong-crc64nvme.bin"
    wrong = crc_base64(crc64nvme(data) ^ 1, 8)
    target = {"Bucket": store.bucket, "Key": key}
    upload_id = store.client.create_multipart_upload(
        **target, ChecksumAlgorithm="CRC64NVME", ChecksumType="FULL_OBJECT"
    )["UploadId"]
    part = store.client.upload_part(**target, UploadId=upload_id, PartNumber=1, Body=data, ChecksumCRC64NVME=wrong)
    store.client.complete_multipart_upload(
        **target,
        UploadId=upload_id,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"], "ChecksumCRC64NVME": wrong}]},
        ChecksumCRC64NVME=wrong,
        ChecksumType="FULL_OBJECT",
    )
    head = store.client.head_object(**target, ChecksumMode="ENABLED")
    assert (head["ChecksumType"], head["ChecksumCRC64NVME"]) == ("FULL_OBJECT", crc_base64(crc64nvme(data), 8))
    store.delete(key)


def test_fake_gcs_accepts_a_wrong_crc32c_and_reports_the_crc32c_of_what_it_stored(local_clouds):
    """Measured on fake-gcs-server: an upload whose metadata names a wrong crc32c is accepted (real GCS refuses
    it, which cannot be checked here), and the crc32c reported, for an upload and for a composed object, is that
    of the bytes stored. The GCS store compares it for every part before composing them (before the object is
    visible at its key), which is why the local GCS region needs no read-back."""
    store = store_for(load_catalogue().region("gcp-europe-west1"))
    first, second = os.urandom(300 * 1024), os.urandom(1000)
    part = store.bucket.blob("tests/parts/wrong-crc32c.bin")
    part.upload_from_file(io.BytesIO(first), checksum=None, crc32c_checksum_value=crc_base64(crc32c(first) ^ 1, 4))
    assert part.crc32c == crc_base64(crc32c(first), 4)
    store.put_bytes("tests/parts/second.bin", second)
    composed = store.bucket.blob("tests/parts/composed.bin")
    composed.compose([part, store.bucket.blob("tests/parts/second.bin")])
    assert composed.crc32c == crc_base64(crc32c(first + second), 4)
    for key in store.list_keys("tests/parts/"):
        store.delete(key)


def test_azurite_refuses_a_block_whose_md5_does_not_match(local_clouds):
    """Measured on Azurite: Put Block with a Content-MD5 other than the block's is refused (``Md5Mismatch``),
    as Azure does, so a block corrupted in flight is never staged (the generated client sends a chosen MD5;
    the store's uploads let the SDK compute it with ``validate_content``)."""
    from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

    store = store_for(load_catalogue().region("azure-eastus"))
    blob, data = store.container.get_blob_client("tests/parts/wrong-md5.bin"), os.urandom(1000)
    with pytest.raises(HttpResponseError, match="MD5 value specified in the request did not match"):
        blob._client.block_blob.stage_block(
            block_id="MDAwMQ==",
            content_length=len(data),
            body=data,
            transactional_content_md5=hashlib.md5(b"x").digest(),
        )
    with pytest.raises(ResourceNotFoundError):  # no blob: not even an uncommitted block
        blob.get_block_list("all")
