"""Which version of a model each region serves: the rollout pointer beside the versions.

Each region's store holds ``models/<model>/_current.json``, naming the version its serving processes load.
The pointer is written last, only once every file of the version is verified in that region (its manifest is
there), so serving never follows it to a partial copy. Two things move it:

- ``promote``, after replication (or repair) verifies a version in a region. It moves the pointer forward
  only: to a version registered no earlier than the current one (the manifests' ``created_at``), or, after a
  rollback, only to a version registered after that rollback, so a late retry or an audit repair of an old
  version never undoes a newer rollout or a rollback;
- ``rollback``, by an operator (the ``model_rollback`` DAG or ``python -m include.replication rollback``):
  to any version that is a finished replica in every region named, checked everywhere before any pointer moves.

Object stores have no compare-and-swap that all three clouds share, so two writers of one region's pointer at
the same instant can race; the replication DAG writes a version's pointers from one task, and a rollback is
an operator's deliberate act.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Literal

from include.clouds.objectstore import SHA256_METADATA, ObjectStore
from include.errors import InvalidModelVersion, ObjectNotFound, RollbackRefused
from include.replication.manifest import MODELS_PREFIX, Manifest, check_model_name, check_version

log = logging.getLogger(__name__)

POINTER_NAME = "_current.json"
SetBy = Literal["replication", "rollback"]


def pointer_key(model: str) -> str:
    return f"{MODELS_PREFIX}/{check_model_name(model)}/{POINTER_NAME}"


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


@dataclass(frozen=True)
class RolloutPointer:
    """A region's current version of a model, and what put it there."""

    model: str
    version: str
    manifest_sha256: str  # the manifest's total: serving loads exactly this content
    created_at: str  # when the version was registered (its manifest's created_at)
    set_at: str
    set_by: SetBy
    reason: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: bytes | str, where: str) -> RolloutPointer:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise InvalidModelVersion(f"{where}: rollout pointer is not JSON ({exc})") from None
        fields = {"model", "version", "manifest_sha256", "created_at", "set_at", "set_by"}
        if not isinstance(data, dict) or not fields <= set(data) or data["set_by"] not in ("replication", "rollback"):
            raise InvalidModelVersion(
                f"{where}: a rollout pointer holds {sorted(fields)}, with set_by replication or rollback"
            )
        check_model_name(data["model"])
        check_version(data["version"])
        return cls(**{name: str(data[name]) for name in fields}, reason=str(data.get("reason", "")))


def read_pointer(store: ObjectStore, model: str) -> RolloutPointer | None:
    """The region's rollout pointer for ``model``, or None if no version was rolled out there yet."""
    key = pointer_key(model)
    try:
        return RolloutPointer.from_json(store.get_bytes(key), where=store.url(key))
    except ObjectNotFound:
        return None


def _write(store: ObjectStore, pointer: RolloutPointer) -> None:
    store.put_bytes(pointer_key(pointer.model), pointer.to_json().encode())


def _as_time(value: str) -> datetime:
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def supersedes(manifest: Manifest, current: RolloutPointer | None) -> bool:
    """Whether a version just verified should replace the current pointer (see the module's rules)."""
    if current is None:
        return True
    if current.version == manifest.version and current.manifest_sha256 == manifest.total_sha256:
        return False
    if current.set_by == "rollback":
        return _as_time(manifest.created_at) > _as_time(current.set_at)
    return _as_time(manifest.created_at) >= _as_time(current.created_at)


def promote(store: ObjectStore, manifest: Manifest, reason: str) -> RolloutPointer | None:
    """Point the region at ``manifest``'s version if it supersedes the current one; the new pointer, or None.

    Call only after the version's manifest is written in ``store`` (every file verified there).
    """
    current = read_pointer(store, manifest.model)
    if not supersedes(manifest, current):
        log.info("%s keeps %s %s (not moved to %s)", store.region.name, manifest.model,
                 current.version if current else None, manifest.version)  # fmt: skip
        return None
    pointer = RolloutPointer(
        manifest.model, manifest.version, manifest.total_sha256, manifest.created_at, now_iso(), "replication", reason
    )
    _write(store, pointer)
    log.info("%s now serves %s %s (was %s)", store.region.name, manifest.model, manifest.version,
             current.version if current else "nothing")  # fmt: skip
    return pointer


def finished_replica(store: ObjectStore, model: str, version: str) -> Manifest:
    """The manifest of a version that is a finished replica in ``store``; else ``RollbackRefused`` saying why.

    Finished: the manifest is there and every file it lists is at its size with the SHA-256 recorded at its
    verified publication. Serving re-hashes the files before it switches, so this check reads no file.
    """
    from include.replication.replicate import read_manifest

    manifest = read_manifest(store, model, version)
    if manifest is None:
        raise RollbackRefused(f"{model} {version} is not a finished replica in {store.region.name}: no manifest there")
    for model_file in manifest.files:
        info = store.head(manifest.key(model_file.path))
        if info is None or info.size != model_file.size or info.metadata.get(SHA256_METADATA) != model_file.sha256:
            raise RollbackRefused(
                f"{model} {version} in {store.region.name}: {model_file.path} is missing or not the verified copy; "
                "let the audit repair it first"
            )
    return manifest


def rollback(stores: list[ObjectStore], model: str, version: str, reason: str) -> list[RolloutPointer]:
    """Point every store's region at ``version`` of ``model``; check them all first, so none moves on a refusal."""
    check_model_name(model)
    check_version(version)
    manifests = [(store, finished_replica(store, model, version)) for store in stores]
    pointers = []
    for store, manifest in manifests:
        pointer = RolloutPointer(
            model, version, manifest.total_sha256, manifest.created_at, now_iso(), "rollback", reason
        )
        _write(store, pointer)
        log.warning("rolled %s back to %s in %s: %s", model, version, store.region.name, reason)
        pointers.append(pointer)
    return pointers
