"""Replicating one model version to its target regions: one pass over the source, verify, manifest last.

1. ``copy_version`` reads each file from the source region once and streams it straight to its final key in
   every target that lacks it, through the store's invisible upload (S3 multipart, Azure uncommitted blocks,
   GCS parts composed at the end), hashing it as it reads. An upload is completed only if the source's bytes
   hash to the manifest's SHA-256, and the store then checks it by its own checksums
   (``include.clouds.objectstore``): a mismatch deletes the object and fails, naming both. A file whose object
   already carries the manifest's size and SHA-256 is skipped, so a retry copies only what is missing; a
   target that fails does not stop the others. A target holding the manifest of other content (the version
   registered again) has it deleted first, before any of its files is overwritten.
2. ``verify_and_publish`` makes sure every file is there in one target (copying again any a failed check
   deleted) and, in a region whose ``verification`` is ``read_back`` (a store that completes uploads whatever
   checksums they carry), reads each back and compares its SHA-256 with the manifest; a mismatch deletes the
   object and fails, naming the file and both checksums, and the next attempt copies it again. Then the
   source's signature, if it has one, and last the source's manifest are written, byte for byte (the
   signature is over those bytes): only then is the version a finished replica, so no partial or unverified
   version is ever visible as one.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from include.catalogue import Catalogue, Region
from include.clouds.objectstore import SHA256_METADATA, ObjectStore, store_for
from include.errors import ChecksumMismatch, ObjectNotFound, SourceMissing
from include.replication.manifest import Manifest, ModelFile, manifest_key, signature_key
from include.replication.transfer import TransferSettings, copy_object, sha256_of

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Replica:
    """Where one model version goes: from which region's store to which."""

    manifest: Manifest
    source: ObjectStore
    target: ObjectStore


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
    """The final object exists with the manifest's size and the SHA-256 its checked upload recorded."""
    info = store.head(manifest.key(model_file.path))
    return info is not None and info.size == model_file.size and info.metadata.get(SHA256_METADATA) == model_file.sha256


def unpublish_other_content(replica: Replica) -> None:
    """Delete the target's manifest (then signature) of this version if it lists other content."""
    found = read_manifest(replica.target, replica.manifest.model, replica.manifest.version)
    if found is not None and found.total_sha256 != replica.manifest.total_sha256:
        log.warning("%s holds other content of %s %s (registered again): un-publishing it before copying",
                    replica.target.region.name, replica.manifest.model, replica.manifest.version)  # fmt: skip
        replica.target.delete(manifest_key(replica.manifest.model, replica.manifest.version))
        replica.target.delete(signature_key(replica.manifest.model, replica.manifest.version))


def copy_version(replicas: Sequence[Replica], settings: TransferSettings) -> dict[str, dict]:
    """Copy every file not yet published in each target, one read of the source feeding all of them.

    The replicas share one manifest and source. Returns per target region the paths copied and skipped.
    A target that fails is left out of the remaining files while the others go on; then its error is
    raised (the first, if several failed).
    """
    manifest, source = replicas[0].manifest, replicas[0].source
    for replica in replicas:
        unpublish_other_content(replica)
    results = {replica.target.region.name: {"copied": [], "skipped": []} for replica in replicas}
    failed: dict[str, BaseException] = {}
    for model_file in manifest.files:
        targets = []
        for replica in replicas:
            name = replica.target.region.name
            if name in failed:
                continue
            if is_published(replica.target, manifest, model_file):
                log.info("%s already published in %s with SHA-256 %s: skipped", model_file.path, name,
                         model_file.sha256)  # fmt: skip
                results[name]["skipped"].append(model_file.path)
            else:
                targets.append(replica.target)
        if not targets:
            continue
        metadata = {SHA256_METADATA: model_file.sha256}
        key = manifest.key(model_file.path)
        outcome = copy_object(source, key, model_file.size, model_file.sha256, targets, metadata, settings)
        for target in targets:
            if target in outcome.failed:
                failed[target.region.name] = outcome.failed[target]
            else:
                results[target.region.name]["copied"].append(model_file.path)
    if failed:
        raise next(iter(failed.values()))
    return results


def verify_and_publish(replica: Replica, settings: TransferSettings) -> dict:
    """Make sure every file is published and verified in the target, then write its manifest last."""
    manifest, target = replica.manifest, replica.target
    missing = [f.path for f in manifest.files if not is_published(target, manifest, f)]
    if missing:
        log.warning("%s lacks %s (deleted by a failed check): copying again", target.region.name, missing)
        copy_version([replica], settings)
    if target.region.verification == "read_back":
        for model_file in manifest.files:
            key = manifest.key(model_file.path)
            landed = sha256_of(target, key, model_file.size, settings)
            if landed != model_file.sha256:
                target.delete(key)
                raise ChecksumMismatch(
                    f"{model_file.path} of {manifest.model} {manifest.version} landed in {target.region.name} "
                    f"with SHA-256 {landed}, but the manifest says {model_file.sha256}; the object was deleted "
                    "and the next attempt copies it again"
                )
            log.info("read back %s: SHA-256 %s", target.url(key), landed)
    publish_manifest(replica)
    return {"verification": target.region.verification, "sha256": manifest.total_sha256, "bytes": manifest.total_size}


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
