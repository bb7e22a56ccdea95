"""Replicating one model version to one region: copy to staging, verify what landed, publish.

1. ``copy_to_staging`` streams each file from the source region into ``_staging/<model>/<version>/...`` of
   the target, hashing as it reads. A file whose published copy already carries the manifest's SHA-256 is
   skipped, so a re-run copies nothing twice.
2. ``verify_and_publish`` reads every staged file back and compares its SHA-256 with the manifest. A
   mismatch deletes the staged file and fails, naming the file and both checksums; a later attempt finds
   the staged file gone and copies it again from the source. When all match, each file is copied
   server-side to its final key; then the source's signature, if it has one, and last the source's manifest,
   byte for byte (the signature is over those bytes): only then is the version a finished replica, so no
   partial or unverified object is ever visible as one.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

from include.catalogue import Catalogue, Region
from include.clouds.objectstore import SHA256_METADATA, ObjectStore, store_for
from include.errors import ObjectNotFound, SourceMissing
from include.replication.manifest import STAGING_PREFIX, Manifest, ModelFile, manifest_key, signature_key
from include.replication.transfer import ChecksumMismatch, Progress, TransferSettings, copy_object, sha256_of

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Replica:
    """Where one model version goes: from which region's store to which."""

    manifest: Manifest
    source: ObjectStore
    target: ObjectStore

    def staging_key(self, path: str) -> str:
        return f"{STAGING_PREFIX}/{self.manifest.model}/{self.manifest.version}/{path}"


def settings_of(catalogue: Catalogue) -> TransferSettings:
    return TransferSettings(
        part_size=catalogue.replication.part_size_mib * 2**20,
        workers=catalogue.replication.workers,
        stream_source=catalogue.replication.stream_source,
    )


def read_manifest(store: ObjectStore, model: str, version: str) -> Manifest | None:
    """The manifest of ``model``/``version`` in ``store``, or None if there is none."""
    key = manifest_key(model, version)
    try:
        return Manifest.from_json(store.get_bytes(key), where=store.url(key))
    except ObjectNotFound:
        return None


def load_source_manifest(region: Region, model: str, version: str) -> Manifest:
    """The source manifest, with every file it lists present at its size; else ``SourceMissing``."""
    store = store_for(region)
    manifest = read_manifest(store, model, version)
    if manifest is None:
        raise SourceMissing(
            f"model {model} version {version} has no manifest at {store.url(manifest_key(model, version))} "
            f"in source region {region.name}: register the version there first"
        )
    for model_file in manifest.files:
        info = store.head(manifest.key(model_file.path))
        if info is None:
            raise SourceMissing(f"{store.url(manifest.key(model_file.path))} is listed in the manifest but missing")
        if info.size != model_file.size:
            raise SourceMissing(
                f"{store.url(manifest.key(model_file.path))} has {info.size} bytes; the manifest says {model_file.size}"
            )
    return manifest


def is_published(store: ObjectStore, manifest: Manifest, model_file: ModelFile) -> bool:
    """The final object exists with the manifest's size and SHA-256 recorded at its verified publication."""
    info = store.head(manifest.key(model_file.path))
    return info is not None and info.size == model_file.size and info.metadata.get(SHA256_METADATA) == model_file.sha256


def stage_file(replica: Replica, model_file: ModelFile, settings: TransferSettings) -> Progress:
    """Stream one file from the source into the target's staging area, hashing it on the way."""
    return copy_object(
        replica.source,
        replica.manifest.key(model_file.path),
        replica.target,
        replica.staging_key(model_file.path),
        model_file.size,
        model_file.sha256,
        {SHA256_METADATA: model_file.sha256},
        settings,
    )


def copy_to_staging(replica: Replica, settings: TransferSettings) -> dict:
    """Stream every file not yet published into staging; return what was staged and skipped."""
    staged, skipped, copied_bytes, seconds = [], [], 0, 0.0
    try:
        for model_file in replica.manifest.files:
            if is_published(replica.target, replica.manifest, model_file):
                log.info("%s already published with SHA-256 %s: skipped", model_file.path, model_file.sha256)
                skipped.append(model_file.path)
                continue
            progress = stage_file(replica, model_file, settings)
            staged.append(model_file.path)
            copied_bytes += progress.done
            seconds += progress.elapsed
    except BaseException:
        for path in staged:  # an attempt that fails leaves nothing behind
            replica.target.delete(replica.staging_key(path))
        raise
    return {
        "staged": staged,
        "skipped": skipped,
        "bytes": copied_bytes,
        "mib_per_s": round(copied_bytes / 2**20 / seconds, 1) if seconds else None,
    }


def verify_and_publish(replica: Replica, staged: list[str], settings: TransferSettings) -> dict:
    """Verify every staged file by reading it back, then publish them and write the manifest last."""
    files = {f.path: f for f in replica.manifest.files}
    for path in staged:
        model_file = files[path]
        key = replica.staging_key(path)
        if replica.target.head(key) is None:
            log.warning("%s is gone (discarded by a failed verification): copying it again", replica.target.url(key))
            stage_file(replica, model_file, settings)
        landed = sha256_of(replica.target, key, model_file.size, settings)
        if landed != model_file.sha256:
            replica.target.delete(key)
            raise ChecksumMismatch(
                f"{path} of {replica.manifest.model} {replica.manifest.version} landed in "
                f"{replica.target.region.name} with SHA-256 {landed}, but the manifest says {model_file.sha256}; "
                "the staged copy was deleted and the next attempt copies it again"
            )
        log.info("verified %s: SHA-256 %s", replica.target.url(key), landed)
    for path in staged:
        metadata = {SHA256_METADATA: files[path].sha256}
        replica.target.copy(replica.staging_key(path), replica.manifest.key(path), metadata)
        replica.target.delete(replica.staging_key(path))
    unpublished = [f.path for f in replica.manifest.files if not is_published(replica.target, replica.manifest, f)]
    if unpublished:
        raise ChecksumMismatch(
            f"not published with the manifest's SHA-256 in {replica.target.region.name}: {unpublished}"
        )
    publish_manifest(replica)
    return {"published": staged, "sha256": replica.manifest.total_sha256, "bytes": replica.manifest.total_size}


def publish_manifest(replica: Replica) -> None:
    """Copy the source's signature (if any), then its manifest, both byte for byte: the replica is finished."""
    model, version = replica.manifest.model, replica.manifest.version
    key = manifest_key(model, version)
    source_bytes = replica.source.get_bytes(key)
    if Manifest.from_json(source_bytes, where=replica.source.url(key)) != replica.manifest:
        raise SourceMissing(f"{replica.source.url(key)} changed during replication: the version was registered again")
    try:
        replica.target.put_bytes(signature_key(model, version), replica.source.get_bytes(signature_key(model, version)))
    except ObjectNotFound:
        log.warning("%s %s has no signature in %s: serving will refuse it", model, version, replica.source.region.name)
    replica.target.put_bytes(key, source_bytes)


def _sha256_and_size(content: Path | bytes) -> tuple[str, int]:
    if isinstance(content, bytes):
        return hashlib.sha256(content).hexdigest(), len(content)
    digest = hashlib.sha256()
    with content.open("rb") as stream:
        while chunk := stream.read(2**20):
            digest.update(chunk)
    return digest.hexdigest(), content.stat().st_size


def _upload(store: ObjectStore, key: str, content: Path | bytes, metadata: dict[str, str], part_size: int) -> None:
    if isinstance(content, bytes):
        store.put_bytes(key, content, metadata)
        return
    upload = store.begin_upload(key, metadata)
    try:
        with content.open("rb") as stream:
            for number, part in enumerate(iter(lambda: stream.read(part_size), b"")):
                upload.upload_part(number, part)
        upload.complete()
    except BaseException:
        upload.abort()
        raise


def register_model_version(
    region: Region, model: str, version: str, files: dict[str, Path | bytes], part_size: int = 8 * 2**20
) -> Manifest:
    """Upload a model version's files to ``region`` and write its manifest there, streaming local files.

    The demo, the tests and the benchmark use this; a model registry's own upload does the same.
    """
    store = store_for(region)
    entries = [ModelFile(path, size, sha) for path, (sha, size) in ((p, _sha256_and_size(c)) for p, c in files.items())]
    manifest = Manifest.build(model, version, region.name, entries)
    for model_file in manifest.files:
        metadata = {SHA256_METADATA: model_file.sha256}
        _upload(store, manifest.key(model_file.path), files[model_file.path], metadata, part_size)
    store.put_bytes(manifest_key(model, version), manifest.to_json().encode())
    return manifest
