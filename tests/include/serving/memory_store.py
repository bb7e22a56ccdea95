"""A region's object store in memory, with what serving and signing read (GET, HEAD with an ETag, streaming)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

from include.catalogue import Region
from include.clouds.objectstore import ObjectInfo
from include.errors import ObjectNotFound
from include.replication.manifest import Manifest, ModelFile, manifest_key, signature_key
from include.replication.rollout import RolloutPointer, now_iso, pointer_key
from include.replication.signing import SigningKey


class MemoryStore:
    """Objects in a dict; every write gets a new ETag, as S3, GCS and Azure give one."""

    def __init__(self, region: Region):
        self.region = region
        self.objects: dict[str, tuple[bytes, str]] = {}
        self.writes = 0

    def url(self, key: str) -> str:
        return f"mem://{self.region.name}/{key}"

    def put_bytes(self, key: str, data: bytes, metadata: dict[str, str] | None = None) -> None:
        self.writes += 1
        self.objects[key] = (data, f"etag-{self.writes}")

    def get_bytes(self, key: str) -> bytes:
        try:
            return self.objects[key][0]
        except KeyError:
            raise ObjectNotFound(self.url(key)) from None

    def read_stream(self, key: str, chunk_size: int) -> Iterator[bytes]:
        data = self.get_bytes(key)
        for start in range(0, len(data), chunk_size):
            yield data[start : start + chunk_size]

    def head(self, key: str) -> ObjectInfo | None:
        if key not in self.objects:
            return None
        data, etag = self.objects[key]
        return ObjectInfo(key, len(data), {}, etag)

    def release(self, model: str, version: str, files: dict[str, bytes], key: SigningKey | None) -> Manifest:
        """Register ``files`` as ``model`` ``version``, sign it with ``key`` (if any) and point the region at it."""
        entries = [ModelFile(path, len(data), hashlib.sha256(data).hexdigest()) for path, data in files.items()]
        manifest = Manifest.build(model, version, self.region.name, entries)
        for path, data in files.items():
            self.put_bytes(manifest.key(path), data)
        manifest_bytes = manifest.to_json().encode()
        self.put_bytes(manifest_key(model, version), manifest_bytes)
        if key is not None:
            self.put_bytes(signature_key(model, version), key.sign(manifest_bytes).to_json())
        pointer = RolloutPointer(model, version, manifest.total_sha256, manifest.created_at, now_iso(), "replication")
        self.put_bytes(pointer_key(model), pointer.to_json().encode())
        return manifest
