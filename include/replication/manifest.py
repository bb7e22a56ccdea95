"""Model versions and their manifests.

A model version is a set of files under ``models/<model>/<version>/`` in its source region. Its manifest,
``models/<model>/<version>/_manifest.json``, records each file's size and SHA-256, the version's total,
and where it came from. In a target region the manifest is written last, after every file is verified:
a version is a finished replica exactly when its manifest is there.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from include.errors import InvalidModelVersion

MODELS_PREFIX = "models"
MANIFEST_NAME = "_manifest.json"
SIGNATURE_NAME = "_manifest.sig"  # the release step's signature over the manifest's bytes (include.replication.signing)

# No '..' anywhere (the lookahead), so the trigger forms' JSON schemas refuse it too (include.replication.requests).
MODEL_NAME = re.compile(r"^(?!.*\.\.)[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
VERSION = re.compile(r"^(?!.*\.\.)[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")
PATH_SEGMENT = re.compile(r"^[A-Za-z0-9_.-]+$")


def check_model_name(name: object) -> str:
    if not isinstance(name, str) or not MODEL_NAME.fullmatch(name):
        raise InvalidModelVersion(
            f"model name {name!r} is not allowed: use 1-128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit (no '/' or '..')"
        )
    return name


def check_version(version: object) -> str:
    if isinstance(version, int) and not isinstance(version, bool):
        version = str(version)
    if not isinstance(version, str) or not VERSION.fullmatch(version):
        raise InvalidModelVersion(
            f"model version {version!r} is not allowed: use 1-64 letters, digits, '.', '_' or '-' (no '/' or '..')"
        )
    return version


def check_file_path(path: object) -> str:
    """A relative path inside the version folder: no absolute path, no empty, '.' or '..' segment."""
    if not isinstance(path, str) or not path or path.startswith("/") or "\\" in path:
        raise InvalidModelVersion(f"file path {path!r} must be a non-empty relative path with '/' separators")
    for segment in path.split("/"):
        if segment in ("", ".", "..") or not PATH_SEGMENT.fullmatch(segment):
            raise InvalidModelVersion(f"file path {path!r} has a disallowed segment {segment!r}")
    if path in (MANIFEST_NAME, SIGNATURE_NAME):
        raise InvalidModelVersion(f"file path {path!r} is reserved for the manifest and its signature")
    return path


def check_sha256(value: object, what: str) -> str:
    if not isinstance(value, str) or not SHA256.fullmatch(value):
        raise InvalidModelVersion(f"{what}: checksum {value!r} is not a SHA-256 (64 lowercase hex digits)")
    return value


def version_prefix(model: str, version: str) -> str:
    return f"{MODELS_PREFIX}/{check_model_name(model)}/{check_version(version)}"


def manifest_key(model: str, version: str) -> str:
    return f"{version_prefix(model, version)}/{MANIFEST_NAME}"


def signature_key(model: str, version: str) -> str:
    return f"{version_prefix(model, version)}/{SIGNATURE_NAME}"


@dataclass(frozen=True)
class ModelFile:
    path: str
    size: int
    sha256: str


@dataclass(frozen=True)
class Manifest:
    """What a model version consists of, and where it was registered."""

    model: str
    version: str
    source_region: str
    created_at: str
    files: tuple[ModelFile, ...]
    total_size: int = field(init=False)
    total_sha256: str = field(init=False)

    def __post_init__(self):
        object.__setattr__(self, "total_size", sum(f.size for f in self.files))
        digest = hashlib.sha256("".join(f"{f.path}\0{f.sha256}\n" for f in self.files).encode()).hexdigest()
        object.__setattr__(self, "total_sha256", digest)

    @property
    def prefix(self) -> str:
        return version_prefix(self.model, self.version)

    def key(self, path: str) -> str:
        """The object key of one of the version's files."""
        return f"{self.prefix}/{path}"

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes, where: str = "manifest") -> Manifest:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise InvalidModelVersion(f"{where}: not valid JSON ({exc})") from None
        return cls.from_dict(data, where)

    @classmethod
    def from_dict(cls, data: object, where: str = "manifest") -> Manifest:
        """Validate a manifest's content; every problem names the field or file."""
        if not isinstance(data, dict):
            raise InvalidModelVersion(f"{where}: must be a JSON object")
        for name in ("model", "version", "source_region", "created_at", "files"):
            if name not in data:
                raise InvalidModelVersion(f"{where}: field {name!r} is missing")
        files = data["files"]
        if not isinstance(files, list) or not files:
            raise InvalidModelVersion(f"{where}: 'files' must be a non-empty list")
        parsed = []
        for index, entry in enumerate(files):
            if not isinstance(entry, dict) or set(entry) != {"path", "size", "sha256"}:
                raise InvalidModelVersion(f"{where}: files[{index}] must have exactly path, size and sha256")
            path = check_file_path(entry["path"])
            size = entry["size"]
            if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                raise InvalidModelVersion(f"{where}: file {path!r} has an invalid size {size!r}")
            if size == 0:
                raise InvalidModelVersion(f"{where}: file {path!r} is empty (0 bytes); a model file must have content")
            parsed.append(ModelFile(path, size, check_sha256(entry["sha256"], f"{where}: file {path!r}")))
        paths = [f.path for f in parsed]
        repeated = sorted({p for p in paths if paths.count(p) > 1})
        if repeated:
            raise InvalidModelVersion(f"{where}: file path(s) listed twice: {', '.join(repeated)}")
        if not isinstance(data["source_region"], str) or not data["source_region"]:
            raise InvalidModelVersion(f"{where}: source_region {data['source_region']!r} is not a region name")
        manifest = cls(
            model=check_model_name(data["model"]),
            version=check_version(data["version"]),
            source_region=data["source_region"],
            created_at=str(data["created_at"]),
            files=tuple(sorted(parsed, key=lambda f: f.path)),
        )
        for name in ("total_size", "total_sha256"):
            if name in data and (data[name] != getattr(manifest, name) or isinstance(data[name], bool)):
                raise InvalidModelVersion(f"{where}: {name} {data[name]!r} does not match its files")
        return manifest

    @classmethod
    def build(cls, model: str, version: str, source_region: str, files: list[ModelFile]) -> Manifest:
        """A new manifest (validated as if read back), stamped now."""
        data = {
            "model": model,
            "version": version,
            "source_region": source_region,
            "created_at": datetime.now(UTC).isoformat(timespec="microseconds"),
            "files": [asdict(f) for f in files],
        }
        return cls.from_dict(data, where=f"{model}/{version}")
