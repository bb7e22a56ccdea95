"""Loading a model version for serving, verified end to end, and re-checking it cheaply afterwards.

``Verifier.load`` accepts a version only if, in this order:

1. its manifest is signed (``_manifest.sig``) by a trusted key, over the manifest's exact bytes;
2. the manifest is the one the rollout pointer names (its total SHA-256);
3. it holds no pickle (``*.pkl``, ``*.pickle``, ``*.joblib``) and has ``model.skops``;
4. every file hashes to the manifest's SHA-256, read as a stream (the model file into a temporary file, the
   others only hashed), so memory does not grow with the model's size;
5. ``model.skops`` is a skops archive whose types are all trusted: skops' defaults (scikit-learn, NumPy,
   SciPy) and ``ALLOWED_TYPES``; anything else (a function, an unknown class) is refused by name.

``Verifier.recheck`` re-checks a loaded version with one HEAD per object (manifest, signature, files): only
an object whose ETag or size changed since it was verified is read again, and a file is re-hashed only then.

Every check records the stamp (ETag and size) of what it looked at, before reading it, so a refused version
is tried again only once one of those objects changes; a file that does not hash to the manifest leaves a
``CorruptReport`` for the replication audit.
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import BinaryIO

# At import, before the stores' hooks load Airflow: importing skops later scans Airflow's modules for seconds.
import skops.io

from include.clouds.objectstore import ObjectStore
from include.errors import CopyRejected, InvalidModelVersion, ObjectNotFound
from include.replication.manifest import Manifest, manifest_key, signature_key
from include.replication.reports import CorruptReport
from include.replication.rollout import RolloutPointer
from include.replication.signing import TrustedKeys

MODEL_FILE = "model.skops"
PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib")
ZIP_MAGIC = b"PK\x03\x04"  # a skops file is a zip archive
PICKLE_PROTOCOLS = range(2, 6)  # a pickle of protocol 2 or later starts with 0x80 and its protocol number
# Types beyond skops' defaults that serving loads: scikit-learn's own tree structures (Cython), which its
# tree ensembles and histogram gradient boosting hold.
ALLOWED_TYPES = frozenset(
    {"sklearn.tree._tree.Tree", "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"}
)
STREAM_CHUNK_BYTES = 8 * 2**20

Stamp = tuple[str, int] | None  # an object's ETag and size as verified; None: the object was absent


def stamp_of(store: ObjectStore, key: str) -> Stamp:
    info = store.head(key)
    return None if info is None else (info.etag, info.size)


def unchanged(store: ObjectStore, stamps: dict[str, Stamp]) -> bool:
    """Whether every object still has the stamp recorded (one HEAD each, no read)."""
    return all(stamp_of(store, key) == stamp for key, stamp in stamps.items())


@dataclass(frozen=True)
class LoadedVersion:
    """A verified version in memory: its manifest (bytes as signed), the key that signed it, the estimator, and
    the stamp of every object it was verified from."""

    manifest: Manifest
    manifest_bytes: bytes
    signed_by: str
    estimator: object = field(repr=False)
    stamps: dict[str, Stamp]

    @property
    def version(self) -> str:
        return self.manifest.version

    def predict(self, instances: list[list[float]]) -> list:
        return self.estimator.predict(instances).tolist()


class Verifier:
    """One load or re-check of a version in a region's store: the stamps it recorded and any corrupt file."""

    def __init__(self, store: ObjectStore, trusted: TrustedKeys):
        self.store = store
        self.trusted = trusted
        self.stamps: dict[str, Stamp] = {}
        self.corrupt: CorruptReport | None = None

    def load(self, pointer: RolloutPointer) -> LoadedVersion:
        """The version ``pointer`` names, verified and loaded; ``CopyRejected`` saying why it is refused."""
        model, version = pointer.model, pointer.version
        where = f"{model} {version} in {self.store.region.name}"
        manifest_bytes = self._read(manifest_key(model, version), f"{where} has no manifest")
        unsigned = f"{where} has no signature (_manifest.sig): serving refuses unsigned versions"
        signature_bytes = self._read(signature_key(model, version), unsigned)
        signed_by = self.trusted.verify(manifest_bytes, signature_bytes, where)
        try:
            manifest = Manifest.from_json(manifest_bytes, where=self.store.url(manifest_key(model, version)))
        except InvalidModelVersion as exc:
            raise CopyRejected(str(exc)) from None
        if (manifest.model, manifest.version) != (model, version):
            raise CopyRejected(f"the manifest of {where} describes {manifest.model} {manifest.version}")
        if manifest.total_sha256 != pointer.manifest_sha256:
            raise CopyRejected(
                f"the manifest of {where} totals SHA-256 {manifest.total_sha256}, the rollout pointer names "
                f"{pointer.manifest_sha256}: the version was registered again and is not verified here yet"
            )
        check_format(manifest, where)
        with tempfile.TemporaryDirectory(prefix="mlp-serving-") as cache:
            model_path = Path(cache) / MODEL_FILE
            for model_file in manifest.files:
                key = manifest.key(model_file.path)
                self.stamps[key] = stamp_of(self.store, key)
                if model_file.path == MODEL_FILE:
                    with model_path.open("wb") as sink:
                        self._verify_file(manifest, model_file.path, sink)
                else:
                    self._verify_file(manifest, model_file.path, None)
            estimator = load_estimator(model_path, where)
        return LoadedVersion(manifest, manifest_bytes, signed_by, estimator, dict(self.stamps))

    def recheck(self, loaded: LoadedVersion) -> LoadedVersion:
        """``loaded`` with its stamps renewed if its copy in the store is still the verified one; else
        ``CopyRejected`` saying what changed. Reads only objects whose stamp changed."""
        manifest = loaded.manifest
        where = f"{manifest.model} {manifest.version} in {self.store.region.name}"
        self.stamps = {key: stamp_of(self.store, key) for key in loaded.stamps}
        changed = {key for key, stamp in self.stamps.items() if stamp != loaded.stamps[key]}
        manifest_name = manifest_key(manifest.model, manifest.version)
        signature_name = signature_key(manifest.model, manifest.version)
        if manifest_name in changed:
            if self._read(manifest_name, f"the manifest of {where} was deleted") != loaded.manifest_bytes:
                raise CopyRejected(f"the manifest of {where} changed in the store since it was verified")
        signed_by = loaded.signed_by
        if signature_name in changed:
            signature_bytes = self._read(signature_name, f"the signature of {where} was deleted")
            signed_by = self.trusted.verify(loaded.manifest_bytes, signature_bytes, where)
        for model_file in manifest.files:
            if manifest.key(model_file.path) in changed:
                self._verify_file(manifest, model_file.path, None)
        return replace(loaded, signed_by=signed_by, stamps=self.stamps)

    def _read(self, key: str, missing: str) -> bytes:
        """A small object's bytes, its stamp recorded first; ``CopyRejected(missing)`` if it is not there."""
        self.stamps[key] = stamp_of(self.store, key)
        if self.stamps[key] is None:
            raise CopyRejected(missing)
        try:
            return self.store.get_bytes(key)
        except ObjectNotFound:
            raise CopyRejected(missing) from None

    def _verify_file(self, manifest: Manifest, path: str, sink: BinaryIO | None) -> None:
        """Stream one file, hashing it (and writing it to ``sink``); ``CopyRejected`` unless it matches."""
        expected = next(f.sha256 for f in manifest.files if f.path == path)
        digest = hashlib.sha256()
        try:
            for chunk in self.store.read_stream(manifest.key(path), STREAM_CHUNK_BYTES):
                digest.update(chunk)
                if sink is not None:
                    sink.write(chunk)
        except ObjectNotFound:
            raise CopyRejected(f"{path} is in the manifest but missing from {self.store.region.name}") from None
        actual = digest.hexdigest()
        if actual != expected:
            region = self.store.region.name
            self.corrupt = CorruptReport(manifest.model, manifest.version, region, path, expected, actual)
            raise CopyRejected(
                f"{path} of {manifest.model} {manifest.version} in {region} has SHA-256 {actual}, "
                f"the manifest says {expected}: refusing to serve it"
            )


def check_format(manifest: Manifest, where: str) -> None:
    """Refuse a version holding a pickle, or no ``model.skops``."""
    pickles = [f.path for f in manifest.files if f.path.lower().endswith(PICKLE_SUFFIXES)]
    if pickles:
        raise CopyRejected(
            f"{where} holds {', '.join(pickles)}: pickle files run code when loaded, so serving refuses them. "
            f"Save the estimator with skops.io.dump(estimator, '{MODEL_FILE}') and register the version again"
        )
    if MODEL_FILE not in {f.path for f in manifest.files}:
        raise CopyRejected(f"{where} has no {MODEL_FILE} (a scikit-learn estimator saved with skops.io.dump)")


def load_estimator(path: Path, where: str) -> object:
    """The estimator in a verified ``model.skops``, loaded with the platform's trusted types only."""
    with path.open("rb") as model_file:
        head = model_file.read(len(ZIP_MAGIC))
    if head[:1] == b"\x80" and len(head) > 1 and head[1] in PICKLE_PROTOCOLS:
        raise CopyRejected(
            f"{MODEL_FILE} of {where} is a pickle, not a skops file: serving refuses pickles, which run code when "
            f"loaded. Save the estimator with skops.io.dump(estimator, '{MODEL_FILE}') and register the version again"
        )
    if head != ZIP_MAGIC:
        raise CopyRejected(f"{MODEL_FILE} of {where} is not a skops file (skops.io.dump writes a zip archive)")
    try:
        found = set(skops.io.get_untrusted_types(file=path))
    except Exception as exc:  # a damaged archive: whatever skops raises, the file cannot be served
        raise CopyRejected(f"{MODEL_FILE} of {where} cannot be read as a skops file: {exc}") from None
    refused = sorted(found - ALLOWED_TYPES)
    if refused:
        raise CopyRejected(
            f"{MODEL_FILE} of {where} holds types serving does not trust: {', '.join(refused)}. It loads "
            f"scikit-learn estimators (skops' trusted types and {', '.join(sorted(ALLOWED_TYPES))}) only"
        )
    try:
        estimator = skops.io.load(path, trusted=sorted(found))
    except Exception as exc:  # skops or the estimator's own state refused to load: not servable
        raise CopyRejected(f"{MODEL_FILE} of {where} does not load: {exc}") from None
    if not callable(getattr(estimator, "predict", None)):
        raise CopyRejected(f"{MODEL_FILE} of {where} holds a {type(estimator).__name__}, which has no predict()")
    return estimator
