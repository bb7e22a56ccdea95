"""Unit tests of model-version manifests: name, version and path checks, building, JSON and validation."""

from __future__ import annotations

import hashlib
import json

import pytest

from include.errors import InvalidModelVersion
from include.replication.manifest import (
    MANIFEST_NAME,
    Manifest,
    ModelFile,
    check_file_path,
    check_model_name,
    check_version,
    manifest_key,
    version_prefix,
)

SHA_A = hashlib.sha256(b"a").hexdigest()
SHA_B = hashlib.sha256(b"b").hexdigest()


def entry(path: str = "model.bin", size: object = 10, sha256: object = SHA_A) -> dict:
    return {"path": path, "size": size, "sha256": sha256}


def manifest_data(**changes) -> dict:
    data = {
        "model": "fraud",
        "version": "3",
        "source_region": "aws-us-west-2",
        "created_at": "2026-01-01T00:00:00+00:00",
        "files": [entry("weights/model.bin", 10, SHA_A), entry("config.json", 2, SHA_B)],
    }
    data.update(changes)
    return data


def error_of(data: object) -> str:
    with pytest.raises(InvalidModelVersion) as excinfo:
        Manifest.from_dict(data, where="m.json")
    return str(excinfo.value)


@pytest.mark.parametrize("name", ["fraud", "Fraud-Detector_v2.1", "a", "9lives", "x" * 128])
def test_good_model_names_accepted(name):
    assert check_model_name(name) == name


@pytest.mark.parametrize(
    "name",
    ["", "a/b", "..", "a..b", "-lead", ".hidden", "_under", "x" * 129, "sp ace", "a\\b", None, 3],
)
def test_bad_model_names_rejected(name):
    with pytest.raises(InvalidModelVersion, match="model name"):
        check_model_name(name)


@pytest.mark.parametrize("check", [check_model_name, check_version, check_file_path])
def test_trailing_newline_rejected(check):
    with pytest.raises(InvalidModelVersion):
        check("abc\n")


@pytest.mark.parametrize(("version", "expected"), [("1", "1"), ("v2.0-rc_1", "v2.0-rc_1"), (7, "7"), (0, "0")])
def test_good_versions_accepted(version, expected):
    assert check_version(version) == expected


@pytest.mark.parametrize("version", ["", "1/2", "..", "1..2", "-1", -1, True, 1.5, None, "v" * 65])
def test_bad_versions_rejected(version):
    with pytest.raises(InvalidModelVersion, match="model version"):
        check_version(version)


@pytest.mark.parametrize("path", ["model.bin", "weights/part-0001.safetensors", "a/b/c_d.e", "sub/_manifest.json"])
def test_good_file_paths_accepted(path):
    assert check_file_path(path) == path


@pytest.mark.parametrize(
    "path",
    ["../x", "a/../b", "..", ".", "a/./b", "/etc/passwd", "a\\b", "a//b", "a/", "", "sp ace", "a/b?c", None, 5],
)
def test_bad_file_paths_rejected(path):
    with pytest.raises(InvalidModelVersion, match="file path"):
        check_file_path(path)


def test_manifest_name_is_reserved():
    with pytest.raises(InvalidModelVersion, match="reserved for the manifest"):
        check_file_path(MANIFEST_NAME)


def test_build_round_trips_through_json():
    files = [ModelFile("weights/model.bin", 10, SHA_A), ModelFile("config.json", 2, SHA_B)]
    manifest = Manifest.build("fraud", 3, "aws-us-west-2", files)
    again = Manifest.from_json(manifest.to_json())
    assert again == manifest
    assert again.version == "3"
    assert Manifest.from_json(manifest.to_json().encode()) == manifest


def test_files_sorted_by_path():
    manifest = Manifest.from_dict(manifest_data())
    assert [f.path for f in manifest.files] == ["config.json", "weights/model.bin"]


def test_totals_computed():
    manifest = Manifest.from_dict(manifest_data())
    assert manifest.total_size == 12
    listing = f"config.json\0{SHA_B}\nweights/model.bin\0{SHA_A}\n"
    assert manifest.total_sha256 == hashlib.sha256(listing.encode()).hexdigest()


def test_total_sha256_changes_with_content():
    one = Manifest.from_dict(manifest_data())
    other = Manifest.from_dict(manifest_data(files=[entry("config.json", 2, SHA_A), entry("weights/model.bin")]))
    assert one.total_sha256 != other.total_sha256


@pytest.mark.parametrize(("field", "value"), [("total_size", 13), ("total_sha256", "0" * 64)])
def test_tampered_total_rejected(field, value):
    data = json.loads(Manifest.from_dict(manifest_data()).to_json())
    data[field] = value
    with pytest.raises(InvalidModelVersion, match=f"{field} .* does not match its files"):
        Manifest.from_json(json.dumps(data))


@pytest.mark.parametrize("field", ["model", "version", "source_region", "created_at", "files"])
def test_missing_field_named(field):
    data = manifest_data()
    del data[field]
    assert f"field {field!r} is missing" in error_of(data)


def test_not_an_object_rejected():
    assert "must be a JSON object" in error_of([1, 2])


@pytest.mark.parametrize("files", [[], {}, "model.bin", None])
def test_files_must_be_nonempty_list(files):
    assert "'files' must be a non-empty list" in error_of(manifest_data(files=files))


def test_extra_key_in_file_entry_rejected():
    message = error_of(manifest_data(files=[entry(), {**entry("b.bin"), "mode": 644}]))
    assert "files[1] must have exactly path, size and sha256" in message


def test_file_entry_not_an_object_rejected():
    assert "files[0]" in error_of(manifest_data(files=["model.bin"]))


@pytest.mark.parametrize("size", [-1, True, "10", 1.5, None])
def test_invalid_size_names_file(size):
    message = error_of(manifest_data(files=[entry("model.bin", size)]))
    assert "'model.bin' has an invalid size" in message
    assert message.startswith("m.json:")


def test_empty_file_rejected():
    assert "'model.bin' is empty (0 bytes)" in error_of(manifest_data(files=[entry("model.bin", 0)]))


@pytest.mark.parametrize("sha", [SHA_A.upper(), SHA_A[:63], "g" * 64, SHA_A + "0", 123, None])
def test_malformed_sha256_names_file(sha):
    message = error_of(manifest_data(files=[entry("model.bin", 10, sha)]))
    assert "file 'model.bin'" in message
    assert "is not a SHA-256" in message


def test_bad_file_path_in_manifest_rejected():
    assert "'../x'" in error_of(manifest_data(files=[entry("../x")]))


def test_duplicate_path_rejected_naming_the_file():
    message = error_of(manifest_data(files=[entry("a.bin"), entry("a.bin", 3, SHA_B)]))
    assert "file path(s) listed twice: a.bin" in message


def test_bad_model_name_in_manifest_rejected():
    with pytest.raises(InvalidModelVersion, match="model name 'a/b'"):
        Manifest.from_dict(manifest_data(model="a/b"))


@pytest.mark.parametrize("text", ["{", "", "not json", b"\xff\xfe"])
def test_from_json_rejects_invalid_json(text):
    with pytest.raises(InvalidModelVersion, match="^m.json: not valid JSON"):
        Manifest.from_json(text, where="m.json")


def test_keys_and_prefixes():
    manifest = Manifest.from_dict(manifest_data())
    assert manifest.prefix == "models/fraud/3"
    assert manifest.key("weights/model.bin") == "models/fraud/3/weights/model.bin"
    assert version_prefix("fraud", "3") == "models/fraud/3"
    assert manifest_key("fraud", "3") == "models/fraud/3/_manifest.json"


def test_prefix_functions_validate():
    with pytest.raises(InvalidModelVersion):
        version_prefix("../etc", "1")
    with pytest.raises(InvalidModelVersion):
        manifest_key("fraud", "1/2")
