"""Unit tests of streaming copies: part ordering, hashing, completion and abort.

``MemoryStore`` is a test double of the store interface (``include.clouds.objectstore.ObjectStore``: ``read_range``,
``begin_upload``, ``url``) that counts calls, lets the tests observe part ordering, and shows whether an upload
was completed or aborted on a checksum mismatch. Real stores (S3, GCS, Azure Blob on the emulators) are
covered by the integration tests.
"""

from __future__ import annotations

import hashlib
import random
import threading
import time
from collections import Counter

import pytest

from include.replication import transfer
from include.replication.transfer import (
    ChecksumMismatch,
    Progress,
    TransferSettings,
    copy_object,
    iter_parts,
    sha256_of,
)

KIB = 1024
SMALL = TransferSettings(part_size=KIB, workers=3)


class MemoryUpload:
    def __init__(self, store: MemoryStore, key: str, metadata: dict[str, str]):
        self.store, self.key, self.metadata = store, key, metadata
        self.parts: dict[int, bytes] = {}
        self.part_calls: Counter[int] = Counter()
        self.completed = self.aborted = 0
        self.lock = threading.Lock()

    def upload_part(self, number: int, data: bytes) -> None:
        if self.store.fail_upload_part == number:
            raise ConnectionError(f"part {number} lost")
        with self.lock:
            self.part_calls[number] += 1
            self.parts[number] = data

    def complete(self) -> None:
        self.completed += 1
        self.store.objects[self.key] = b"".join(self.parts[n] for n in sorted(self.parts))
        self.store.metadata[self.key] = self.metadata

    def abort(self) -> None:
        self.aborted += 1
        self.parts.clear()


class MemoryStore:
    """In-memory store double; ``jitter`` delays reads at random so they finish out of order."""

    def __init__(self, objects: dict[str, bytes] | None = None, jitter: bool = False):
        self.objects = dict(objects or {})
        self.metadata: dict[str, dict[str, str]] = {}
        self.reads: list[tuple[int, int]] = []
        self.uploads: list[MemoryUpload] = []
        self.jitter = jitter
        self.fail_upload_part: int | None = None
        self.lock = threading.Lock()

    def url(self, key: str) -> str:
        return f"mem://bucket/{key}"

    def read_range(self, key: str, start: int, length: int) -> bytes:
        if self.jitter:
            time.sleep(random.uniform(0, 0.005))
        with self.lock:
            self.reads.append((start, length))
        return self.objects[key][start : start + length]

    def read_stream(self, key: str, chunk_size: int):
        """Uneven chunks (as a network stream delivers them), to exercise the re-cutting into parts."""
        data, offset, sizes = self.objects[key], 0, [chunk_size // 3 + 1, chunk_size * 2, 7]
        while offset < len(data):
            size = sizes[offset % len(sizes)]
            yield data[offset : offset + size]
            offset += size

    def begin_upload(self, key: str, metadata: dict[str, str]) -> MemoryUpload:
        upload = MemoryUpload(self, key, metadata)
        self.uploads.append(upload)
        return upload


def payload(size: int) -> bytes:
    return random.Random(size).randbytes(size)


def copy(size: int, settings: TransferSettings = SMALL, expected: str | None = None, **source_options):
    data = payload(size)
    source, target = MemoryStore({"src": data}, **source_options), MemoryStore()
    expected = expected or hashlib.sha256(data).hexdigest()
    progress = copy_object(source, "src", target, "dst", size, expected, {"sha256": expected}, settings)
    return data, source, target, progress


@pytest.mark.parametrize("size", [1, KIB, KIB + 1, 10 * KIB + 7], ids=["1-byte", "one-part", "part+1", "many"])
def test_copy_object_copies_bytes(size):
    data, source, target, progress = copy(size)
    assert target.objects["dst"] == data
    assert target.metadata["dst"] == {"sha256": hashlib.sha256(data).hexdigest()}
    assert progress.done == size


@pytest.mark.parametrize("size", [1, KIB, KIB + 1, 10 * KIB + 7])
def test_each_part_read_and_uploaded_once(size):
    _, source, target, _ = copy(size, jitter=True)
    parts = -(-size // KIB)
    (upload,) = target.uploads
    assert upload.part_calls == Counter(range(parts))
    assert sorted(source.reads) == [(n * KIB, min(KIB, size - n * KIB)) for n in range(parts)]
    assert (upload.completed, upload.aborted) == (1, 0)


@pytest.mark.parametrize("size", [1, KIB, KIB + 1, 10 * KIB + 7])
def test_streamed_source_is_cut_into_exact_parts(size):
    """With ``stream_source`` one streaming read replaces the ranged reads; parts are still exact."""
    data, source, target, _ = copy(size, TransferSettings(part_size=KIB, workers=3, stream_source=True))
    assert target.objects["dst"] == data and source.reads == []
    (upload,) = target.uploads
    sizes = [len(upload.parts[n]) for n in sorted(upload.parts)]
    assert sizes[:-1] == [KIB] * (len(sizes) - 1) and 0 < sizes[-1] <= KIB


def test_checksum_mismatch_aborts_and_names_both_checksums():
    data = payload(3 * KIB)
    wrong = "0" * 64
    source, target = MemoryStore({"src": data}), MemoryStore()
    with pytest.raises(ChecksumMismatch) as excinfo:
        copy_object(source, "src", target, "dst", len(data), wrong, {}, SMALL)
    assert hashlib.sha256(data).hexdigest() in str(excinfo.value)
    assert wrong in str(excinfo.value)
    assert "mem://bucket/src" in str(excinfo.value)
    (upload,) = target.uploads
    assert (upload.completed, upload.aborted) == (0, 1)
    assert target.objects == {}


def test_short_source_is_a_mismatch():
    """A source shorter than the manifest says reads fewer bytes and is not completed."""
    data = payload(2 * KIB)
    source, target = MemoryStore({"src": data}), MemoryStore()
    with pytest.raises(ChecksumMismatch, match=f"read {2 * KIB} bytes .* says {3 * KIB} bytes"):
        copy_object(source, "src", target, "dst", 3 * KIB, hashlib.sha256(data).hexdigest(), {}, SMALL)
    assert target.objects == {}
    assert target.uploads[0].aborted == 1


def test_upload_part_error_aborts_and_reraises():
    data = payload(8 * KIB)
    source, target = MemoryStore({"src": data}), MemoryStore()
    target.fail_upload_part = 4
    with pytest.raises(ConnectionError, match="part 4 lost"):
        copy_object(source, "src", target, "dst", len(data), hashlib.sha256(data).hexdigest(), {}, SMALL)
    (upload,) = target.uploads
    assert (upload.completed, upload.aborted) == (0, 1)
    assert target.objects == {}


def test_read_error_aborts_and_reraises():
    source, target = MemoryStore(), MemoryStore()
    with pytest.raises(KeyError):
        copy_object(source, "missing", target, "dst", 4 * KIB, "0" * 64, {}, SMALL)
    assert (target.uploads[0].completed, target.uploads[0].aborted) == (0, 1)


def test_iter_parts_yields_bytes_in_order():
    data = payload(20 * KIB + 3)
    store = MemoryStore({"k": data}, jitter=True)
    parts = list(iter_parts(store, "k", len(data), SMALL))
    assert b"".join(parts) == data
    assert [len(p) for p in parts] == [KIB] * 20 + [3]


def test_sha256_of_matches_hashlib():
    data = payload(5 * KIB + 11)
    store = MemoryStore({"k": data})
    assert sha256_of(store, "k", len(data), SMALL) == hashlib.sha256(data).hexdigest()


def test_sha256_of_short_object_is_a_mismatch():
    store = MemoryStore({"k": payload(KIB)})
    with pytest.raises(ChecksumMismatch, match=f"read {KIB} bytes, expected {2 * KIB}"):
        sha256_of(store, "k", 2 * KIB, SMALL)


def test_progress_line_has_mib_and_rate():
    progress = Progress("copy a -> b", 4 * 2**20, report=lambda line: None)
    progress.add(2**20)
    line = progress.line()
    assert line.startswith("copy a -> b: 1.0 of 4.0 MiB (25%), ")
    assert line.endswith(" MiB/s")
    assert progress.elapsed > 0


def test_progress_of_empty_total_is_complete():
    assert "(100%)" in Progress("x", 0).line()


def test_progress_reported_when_interval_passed(monkeypatch):
    monkeypatch.setattr(transfer, "PROGRESS_EVERY_SECONDS", 0.0)
    lines: list[str] = []
    progress = Progress("verify k", 2 * 2**20, report=lines.append)
    progress.add(2**20)
    assert len(lines) == 1 and "1.0 of 2.0 MiB (50%)" in lines[0]
