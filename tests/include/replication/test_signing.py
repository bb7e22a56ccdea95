"""Unit tests of manifest signatures: key files, the signature format, trust, rotation and (re-)signing replicas."""

from __future__ import annotations

import base64
import json
import stat

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import generate_private_key

from include.catalogue import load_catalogue
from include.errors import CopyRejected, SourceMissing
from include.replication.manifest import manifest_key, signature_key
from include.replication.signing import (
    ManifestSignature,
    SigningKey,
    TrustedKeys,
    generate_key_pair,
    sign_version,
)
from tests.include.serving.memory_store import MemoryStore

MANIFEST = b'{"files": [], "model": "fraud", "version": "3"}'


def new_key(directory, key_id: str) -> SigningKey:
    private_path, _ = generate_key_pair(directory, key_id)
    return SigningKey.from_file(private_path)


def trust(directory, *key_ids: str, source=None) -> TrustedKeys:
    """A trusted-keys directory holding the public keys ``key_ids`` of ``source``."""
    directory.mkdir()
    for key_id in key_ids:
        (directory / f"{key_id}.pub").write_bytes((source / f"{key_id}.pub").read_bytes())
    return TrustedKeys.from_directory(directory)


def test_sign_and_verify_round_trip(tmp_path):
    key = new_key(tmp_path / "release", "release-1")
    signature = key.sign(MANIFEST)
    trusted = trust(tmp_path / "trusted", "release-1", source=tmp_path / "release")

    assert trusted.verify(MANIFEST, signature.to_json(), "fraud 3") == "release-1"
    assert ManifestSignature.from_json(signature.to_json(), "fraud 3") == signature
    assert json.loads(signature.to_json())["algorithm"] == "ed25519"


def test_key_files_private_key_is_owner_only_and_never_overwritten(tmp_path):
    private_path, public_path = generate_key_pair(tmp_path, "release-1")

    assert stat.S_IMODE(private_path.stat().st_mode) == 0o600
    assert (private_path.name, public_path.name) == ("release-1.key", "release-1.pub")
    assert b"PRIVATE KEY" in private_path.read_bytes() and b"PUBLIC KEY" in public_path.read_bytes()
    with pytest.raises(ValueError, match="refusing to overwrite"):
        generate_key_pair(tmp_path, "release-1")
    with pytest.raises(ValueError, match="key id"):
        generate_key_pair(tmp_path, "../escape")


def test_an_altered_manifest_is_refused(tmp_path):
    key = new_key(tmp_path / "release", "release-1")
    trusted = trust(tmp_path / "trusted", "release-1", source=tmp_path / "release")
    signature = key.sign(MANIFEST).to_json()

    with pytest.raises(CopyRejected, match="does not match its manifest"):
        trusted.verify(MANIFEST.replace(b"3", b"4"), signature, "fraud 3")


def test_a_signature_by_another_key_under_a_trusted_id_is_refused(tmp_path):
    new_key(tmp_path / "release", "release-1")
    impostor = new_key(tmp_path / "impostor", "release-1")
    trusted = trust(tmp_path / "trusted", "release-1", source=tmp_path / "release")

    with pytest.raises(CopyRejected, match="by key 'release-1' does not match its manifest"):
        trusted.verify(MANIFEST, impostor.sign(MANIFEST).to_json(), "fraud 3")


def test_an_unknown_key_id_is_refused_naming_the_trusted_ones(tmp_path):
    new_key(tmp_path / "release", "release-1")
    stranger = new_key(tmp_path / "release", "stranger")
    trusted = trust(tmp_path / "trusted", "release-1", source=tmp_path / "release")

    with pytest.raises(
        CopyRejected, match=r"signed by key 'stranger', which serving does not trust \(trusted: release-1\)"
    ):
        trusted.verify(MANIFEST, stranger.sign(MANIFEST).to_json(), "fraud 3")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not json", "is not JSON"),
        (b'{"key_id": "release-1"}', "must hold algorithm, key_id and signature"),
        (b'{"algorithm": "rsa", "key_id": "release-1", "signature": ""}', "accepts ed25519 only"),
        (b'{"algorithm": "ed25519", "key_id": "release-1", "signature": "%%%not base64"}', "not valid base64"),
        (
            json.dumps(
                {"algorithm": "ed25519", "key_id": "release-1", "signature": base64.b64encode(b"short").decode()}
            ),
            "has 5 bytes, not 64",
        ),
    ],
)
def test_malformed_signatures_are_refused(tmp_path, content, message):
    new_key(tmp_path / "release", "release-1")
    trusted = trust(tmp_path / "trusted", "release-1", source=tmp_path / "release")

    with pytest.raises(CopyRejected, match=message):
        trusted.verify(MANIFEST, content if isinstance(content, bytes) else content.encode(), "fraud 3")


def test_rotation_with_two_trusted_keys(tmp_path):
    """Trust old and new, sign with the new, re-sign the old versions, then drop the old key."""
    release = tmp_path / "release"
    old, new = new_key(release, "release-2025"), new_key(release, "release-2026")
    both = trust(tmp_path / "both", "release-2025", "release-2026", source=release)
    old_version, new_version = MANIFEST, MANIFEST.replace(b"3", b"4")

    assert both.verify(old_version, old.sign(old_version).to_json(), "fraud 3") == "release-2025"
    assert both.verify(new_version, new.sign(new_version).to_json(), "fraud 4") == "release-2026"
    only_new = trust(tmp_path / "new-only", "release-2026", source=release)
    with pytest.raises(CopyRejected, match="'release-2025', which serving does not trust"):
        only_new.verify(old_version, old.sign(old_version).to_json(), "fraud 3")
    assert only_new.verify(old_version, new.sign(old_version).to_json(), "fraud 3") == "release-2026"  # re-signed


def test_trusted_keys_directory_must_hold_ed25519_public_keys(tmp_path):
    with pytest.raises(ValueError, match="is not a directory"):
        TrustedKeys.from_directory(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no trusted keys"):
        TrustedKeys.from_directory(tmp_path / "empty")
    rsa = tmp_path / "rsa"
    rsa.mkdir()
    public = generate_private_key(public_exponent=65537, key_size=2048).public_key()
    pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    (rsa / "legacy.pub").write_bytes(pem)
    with pytest.raises(ValueError, match="not an Ed25519 public key"):
        TrustedKeys.from_directory(rsa)
    (rsa / "legacy.pub").write_text("garbage")
    with pytest.raises(ValueError, match="not a PEM public key"):
        TrustedKeys.from_directory(rsa)


def test_a_private_key_file_must_be_ed25519(tmp_path):
    path = tmp_path / "release.key"
    path.write_text("not a key")
    with pytest.raises(ValueError, match="not a readable, unencrypted PEM private key"):
        SigningKey.from_file(path)


def test_sign_version_signs_the_source_and_replicas_holding_the_same_manifest(tmp_path):
    catalogue = load_catalogue()
    aws, gcp, azure = (MemoryStore(region) for region in catalogue.regions)
    key = new_key(tmp_path, "release-1")
    aws.release("fraud", "3", {"model.skops": b"weights"}, key=None)
    gcp.put_bytes(manifest_key("fraud", "3"), aws.get_bytes(manifest_key("fraud", "3")))  # a finished replica

    outcomes = sign_version(aws, [gcp, azure], "fraud", "3", key)

    assert outcomes == {
        aws.region.name: "_manifest.sig written, key release-1",
        gcp.region.name: "_manifest.sig written, key release-1",
        azure.region.name: "no manifest there (not replicated yet): not signed",
    }
    trusted = trust(tmp_path / "trusted", "release-1", source=tmp_path)
    for store in (aws, gcp):
        signature = store.get_bytes(signature_key("fraud", "3"))
        assert trusted.verify(store.get_bytes(manifest_key("fraud", "3")), signature, "fraud 3") == "release-1"
    azure.put_bytes(manifest_key("fraud", "3"), b'{"other": "bytes"}')
    assert sign_version(aws, [azure], "fraud", "3", key)[azure.region.name].startswith("its manifest differs")
    with pytest.raises(SourceMissing, match="nothing to sign"):
        sign_version(aws, [], "fraud", "4", key)
