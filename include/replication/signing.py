"""Provenance of model versions: Ed25519 signatures over manifests, made by the release step, checked by serving.

The release step (a model registry's signer, or ``python -m include.replication sign``) holds the private key;
Airflow never does: replication copies the signature beside the manifest byte for byte, as it copies the
manifest. ``models/<model>/<version>/_manifest.sig`` is JSON::

    {"algorithm": "ed25519", "key_id": "release-2025", "signature": "<base64 of 64 bytes>"}

The signature is over the manifest's exact bytes, so any change to the manifest (a file's SHA-256, a file
added or removed) invalidates it. Key files are PEM: a private key ``<key_id>.key`` (PKCS #8, mode 0600) and
its public key ``<key_id>.pub``. Serving trusts the public keys of a directory given to it (one ``<key_id>.pub``
per key; on Kubernetes a ConfigMap volume), never keys found in a bucket. Several trusted keys at once make
rotation possible: trust the new key, sign with it, re-sign the existing versions, then drop the old key
(docs/provenance.md).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from include.clouds.objectstore import ObjectStore
from include.errors import CopyRejected, ObjectNotFound, SourceMissing
from include.replication.manifest import SIGNATURE_NAME, Manifest, manifest_key, signature_key

ALGORITHM = "ed25519"
KEY_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
PRIVATE_KEY_SUFFIX = ".key"
PUBLIC_KEY_SUFFIX = ".pub"
SIGNATURE_BYTES = 64


def check_key_id(key_id: str) -> str:
    if not KEY_ID.fullmatch(key_id):
        raise ValueError(f"key id {key_id!r} is not allowed: use 1-64 letters, digits, '.', '_' or '-'")
    return key_id


@dataclass(frozen=True)
class ManifestSignature:
    """The content of ``_manifest.sig``: which key signed the manifest's bytes, and the signature."""

    key_id: str
    signature: bytes

    def to_json(self) -> bytes:
        body = {"algorithm": ALGORITHM, "key_id": self.key_id, "signature": base64.b64encode(self.signature).decode()}
        return json.dumps(body, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes, where: str) -> ManifestSignature:
        """Parse a signature file; ``CopyRejected`` naming ``where`` and what is wrong."""
        try:
            body = json.loads(data)
        except ValueError:
            raise CopyRejected(f"the signature of {where} is not JSON: refusing the version") from None
        if not isinstance(body, dict) or not {"algorithm", "key_id", "signature"} <= set(body):
            raise CopyRejected(f"the signature of {where} must hold algorithm, key_id and signature")
        if body["algorithm"] != ALGORITHM:
            raise CopyRejected(f"the signature of {where} uses {body['algorithm']!r}; serving accepts {ALGORITHM} only")
        try:
            signature = base64.b64decode(str(body["signature"]), validate=True)
        except binascii.Error:
            raise CopyRejected(f"the signature of {where} is not valid base64") from None
        if len(signature) != SIGNATURE_BYTES:
            raise CopyRejected(f"the signature of {where} has {len(signature)} bytes, not {SIGNATURE_BYTES}")
        return cls(str(body["key_id"]), signature)


@dataclass(frozen=True)
class SigningKey:
    """The release step's private key and its id (the key file's name without its suffix)."""

    key_id: str
    private_key: Ed25519PrivateKey

    @classmethod
    def from_file(cls, path: Path) -> SigningKey:
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (OSError, ValueError, TypeError) as exc:
            raise ValueError(f"{path} is not a readable, unencrypted PEM private key: {exc}") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path} is not an Ed25519 private key")
        return cls(check_key_id(path.stem), key)

    def sign(self, manifest_bytes: bytes) -> ManifestSignature:
        return ManifestSignature(self.key_id, self.private_key.sign(manifest_bytes))


@dataclass(frozen=True)
class TrustedKeys:
    """The public keys serving accepts signatures from, read once from a directory of ``<key_id>.pub`` files."""

    directory: Path
    keys: dict[str, Ed25519PublicKey]

    @classmethod
    def from_directory(cls, directory: Path) -> TrustedKeys:
        """Every ``*.pub`` file of ``directory``; ``ValueError`` if there is none or one is not an Ed25519 key."""
        if not directory.is_dir():
            raise ValueError(f"trusted keys: {directory} is not a directory")
        keys = {}
        for path in sorted(directory.glob(f"*{PUBLIC_KEY_SUFFIX}")):
            try:
                key = serialization.load_pem_public_key(path.read_bytes())
            except ValueError as exc:
                raise ValueError(f"trusted key {path} is not a PEM public key: {exc}") from None
            if not isinstance(key, Ed25519PublicKey):
                raise ValueError(f"trusted key {path} is not an Ed25519 public key")
            keys[check_key_id(path.stem)] = key
        if not keys:
            raise ValueError(f"no trusted keys (*{PUBLIC_KEY_SUFFIX}) in {directory}: every version would be refused")
        return cls(directory, keys)

    def verify(self, manifest_bytes: bytes, signature_bytes: bytes, where: str) -> str:
        """The id of the trusted key that signed ``manifest_bytes``; else ``CopyRejected`` saying why."""
        signature = ManifestSignature.from_json(signature_bytes, where)
        key = self.keys.get(signature.key_id)
        if key is None:
            raise CopyRejected(
                f"{where} is signed by key {signature.key_id!r}, which serving does not trust "
                f"(trusted: {', '.join(sorted(self.keys))})"
            )
        try:
            key.verify(signature.signature, manifest_bytes)
        except InvalidSignature:
            raise CopyRejected(
                f"the signature of {where} by key {signature.key_id!r} does not match its manifest: "
                "the manifest or the signature was altered"
            ) from None
        return signature.key_id


def generate_key_pair(directory: Path, key_id: str) -> tuple[Path, Path]:
    """A new key pair in ``directory``: ``<key_id>.key`` (mode 0600) and ``<key_id>.pub``; never overwrites."""
    check_key_id(key_id)
    private_path = directory / f"{key_id}{PRIVATE_KEY_SUFFIX}"
    public_path = directory / f"{key_id}{PUBLIC_KEY_SUFFIX}"
    existing = [str(path) for path in (private_path, public_path) if path.exists()]
    if existing:
        raise ValueError(f"refusing to overwrite {', '.join(existing)}: choose another key id")
    directory.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    descriptor = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as private_file:
        private_file.write(private_pem)
    public_path.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return private_path, public_path


def sign_version(
    source: ObjectStore, replicas: list[ObjectStore], model: str, version: str, key: SigningKey
) -> dict[str, str]:
    """Sign the manifest bytes of ``model`` ``version`` in ``source`` and write the signature beside them there
    and in each replica holding the same bytes; what was done, by region.

    Re-signing (key rotation) reaches existing replicas this way; a replica without the version, or with other
    manifest bytes, is left alone and said so.
    """
    key_name = manifest_key(model, version)
    try:
        manifest_bytes = source.get_bytes(key_name)
    except ObjectNotFound:
        raise SourceMissing(f"{model} {version} has no manifest at {source.url(key_name)}: nothing to sign") from None
    Manifest.from_json(manifest_bytes, where=source.url(key_name))
    signature = key.sign(manifest_bytes).to_json()
    outcomes = {}
    for store in [source, *replicas]:
        if store is not source:
            try:
                replica_bytes = store.get_bytes(key_name)
            except ObjectNotFound:
                outcomes[store.region.name] = "no manifest there (not replicated yet): not signed"
                continue
            if replica_bytes != manifest_bytes:
                outcomes[store.region.name] = "its manifest differs from the source's: not signed"
                continue
        store.put_bytes(signature_key(model, version), signature)
        outcomes[store.region.name] = f"{SIGNATURE_NAME} written, key {key.key_id}"
    return outcomes
