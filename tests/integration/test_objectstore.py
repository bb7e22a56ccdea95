"""The object stores of the three regions, through the providers' hooks, against the local emulators."""

from __future__ import annotations

import hashlib

import pytest

from include.catalogue import load_catalogue
from include.clouds.objectstore import store_for
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
