"""Unit tests of streaming copies: one read of the source fanned out to several targets, part ordering, hashing,
bounded parts in flight, completion and abort, and a model version's fan-out with retries.

``MemoryStore`` is a test double of the store interface (``include.clouds.objectstore.ObjectStore``) that counts
calls, lets the tests observe part ordering and the parts held at once, and shows whether an upload was
completed or aborted. Real stores (S3, GCS, Azure Blob on the emulators) are covered by the integration tests.
"""

from __future__ import annotations

import hashlib
import random
import threading
import time
from collections import Counter
from types import SimpleNamespace

import pytest

from include.clouds.objectstore import ObjectInfo
from include.errors import ObjectNotFound
from include.replication import transfer
from include.replication.manifest import Manifest, ModelFile, manifest_key
from include.replication.replicate import Replica, copy_version
from include.replication.transfer import (
    ChecksumMismatch,
    Progress,
    TransferSettings,
    copy_object,
    iter_parts,
    iter_stream,
    sha256_of,
)

KIB = 1024
SMALL = TransferSettings(part_size=KIB, workers=3)


class Held:
    """Counts the parts read from a source and not yet uploaded to every target: the memory in flight."""

    def __init__(self, targets: int):
        self.targets, self.uploads, self.now, self.peak = targets, Counter(), 0, 0
        self.lock = threading.Lock()

    def read(self) -> None:
        with self.lock:
            self.now += 1
            self.peak = max(self.peak, self.now)

    def uploaded(self, number: int) -> None:
        with self.lock:
            self.uploads[number] += 1
            if self.uploads[number] == self.targets:
                self.now -= 1


class MemoryUpload:
    def __init__(self, store: MemoryStore, key: str, metadata: dict[str, str]):
        self.store, self.key, self.metadata = store, key, metadata
        self.parts: dict[int, bytes] = {}
        self.part_calls: Counter[int] = Counter()
        self.completed = self.aborted = 0

    def upload_part(self, number: int, data: bytes) -> None:
        if self.store.jitter:
            time.sleep(random.uniform(0, 0.002))
        if self.store.fail_upload_part == number:
            raise ConnectionError(f"part {number} lost")
        with self.store.lock:
            self.part_calls[number] += 1
            self.parts[number] = data
        if self.store.held is not None:
            self.store.held.uploaded(number)

    def complete(self) -> str:
        if self.store.fail_complete:
            raise ChecksumMismatch(f"{self.store.url(self.key)}: stored with crc 1, but the bytes sent have crc 2")
        self.completed += 1
        self.store.log.append(("complete", self.key))
        self.store.objects[self.key] = b"".join(self.parts[n] for n in sorted(self.parts))
        self.store.metadata[self.key] = self.metadata
        return "checked"

    def abort(self) -> None:
        self.aborted += 1
        self.parts.clear()


class MemoryStore:
    """In-memory store double; ``jitter`` delays reads and uploads at random so they finish out of order."""

    def __init__(self, name: str = "mem", objects: dict[str, bytes] | None = None, jitter: bool = False):
        self.region = SimpleNamespace(name=name)
        self.objects = dict(objects or {})
        self.metadata: dict[str, dict[str, str]] = {}
        self.reads: list[tuple[int, int]] = []
        self.uploads: list[MemoryUpload] = []
        self.log: list[tuple[str, str]] = []
        self.jitter = jitter
        self.fail_upload_part: int | None = None
        self.fail_complete = False
        self.held: Held | None = None
        self.lock = threading.Lock()

    def url(self, key: str) -> str:
        return f"mem://{self.region.name}/{key}"

    def read_range(self, key: str, start: int, length: int) -> bytes:
        if self.jitter:
            time.sleep(random.uniform(0, 0.002))
        with self.lock:
            self.reads.append((start, length))
        if self.held is not None:
            self.held.read()
        return self.objects[key][start : start + length]

    def read_stream(self, key: str, chunk_size: int):
        """Uneven chunks (as a network stream delivers them), to exercise the re-cutting into parts."""
        data, offset, sizes = self.objects[key], 0, [chunk_size // 3 + 1, chunk_size * 2, 7]
        while offset < len(data):
            size = sizes[offset % len(sizes)]
            yield data[offset : offset + size]
            offset += size

    def put_bytes(self, key: str, data: bytes, metadata: dict[str, str] | None = None) -> None:
        self.objects[key], self.metadata[key] = data, metadata or {}

    def get_bytes(self, key: str) -> bytes:
        try:
            return self.objects[key]
        except KeyError:
            raise ObjectNotFound(self.url(key)) from None

    def head(self, key: str) -> ObjectInfo | None:
        if key not in self.objects:
            return None
        return ObjectInfo(key, len(self.objects[key]), self.metadata.get(key, {}))

    def delete(self, key: str) -> None:
        self.log.append(("delete", key))
        self.objects.pop(key, None)

    def begin_upload(self, key: str, metadata: dict[str, str]) -> MemoryUpload:
        self.log.append(("begin", key))
        upload = MemoryUpload(self, key, metadata)
        self.uploads.append(upload)
        return upload


def payload(size: int) -> bytes:
    return random.Random(size).randbytes(size)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fan_out(size: int, targets: int = 2, settings: TransferSettings = SMALL, **source_options):
    data = payload(size)
    source = MemoryStore("source", {"k": data}, **source_options)
    stores = [MemoryStore(f"target-{n}", jitter=True) for n in range(targets)]
    outcome = copy_object(source, "k", size, sha256(data), stores, {"sha256": sha256(data)}, settings)
    return data, source, stores, outcome


# -- one read of the source, every target ---------------------------------------------------------------------


@pytest.mark.parametrize("size", [1, KIB, KIB + 1, 10 * KIB + 7], ids=["1-byte", "one-part", "part+1", "many"])
def test_one_read_of_the_source_reaches_every_target(size):
    data, source, targets, outcome = fan_out(size, targets=3, jitter=True)
    parts = -(-size // KIB)
    assert sorted(source.reads) == [(n * KIB, min(KIB, size - n * KIB)) for n in range(parts)]  # each part once
    for target in targets:
        assert target.objects["k"] == data
        assert target.metadata["k"] == {"sha256": sha256(data)}
        (upload,) = target.uploads
        assert upload.part_calls == Counter(range(parts))
        assert (upload.completed, upload.aborted) == (1, 0)
    assert outcome.progress.done == size
    assert set(outcome.checked) == set(targets) and outcome.failed == {}


@pytest.mark.parametrize("targets", [1, 2, 5])
def test_parts_in_flight_are_bounded_whatever_the_size_and_the_targets(targets):
    """A part is held from its read until every target has it; never more than 2 x workers at once."""
    settings = TransferSettings(part_size=KIB, workers=3)
    data = payload(200 * KIB)
    source = MemoryStore("source", {"k": data}, jitter=True)
    stores = [MemoryStore(f"target-{n}", jitter=True) for n in range(targets)]
    source.held = held = Held(targets)
    for store in stores:
        store.held = held
    copy_object(source, "k", len(data), sha256(data), stores, {}, settings)
    assert all(store.objects["k"] == data for store in stores)
    assert held.now == 0
    assert held.peak <= 2 * settings.workers, held.peak


def test_a_failing_target_is_dropped_and_the_others_complete():
    data = payload(8 * KIB)
    source, healthy, failing = MemoryStore("source", {"k": data}), MemoryStore("a"), MemoryStore("b")
    failing.fail_upload_part = 4
    outcome = copy_object(source, "k", len(data), sha256(data), [healthy, failing], {}, SMALL)
    assert healthy.objects["k"] == data and set(outcome.checked) == {healthy}
    assert isinstance(outcome.failed[failing], ConnectionError) and "part 4 lost" in str(outcome.failed[failing])
    assert (failing.uploads[0].completed, failing.uploads[0].aborted) == (0, 1)
    assert max(failing.uploads[0].part_calls, default=-1) < 4 + 2 * SMALL.workers, "kept sending to a failed target"
    assert failing.objects == {}


def test_a_target_whose_check_fails_on_completion_is_reported_and_aborted():
    data = payload(3 * KIB)
    source, healthy, failing = MemoryStore("source", {"k": data}), MemoryStore("a"), MemoryStore("b")
    failing.fail_complete = True
    outcome = copy_object(source, "k", len(data), sha256(data), [healthy, failing], {}, SMALL)
    assert healthy.objects["k"] == data
    assert isinstance(outcome.failed[failing], ChecksumMismatch)
    assert failing.uploads[0].aborted == 1


def test_checksum_mismatch_aborts_every_target_and_names_both_checksums():
    data = payload(3 * KIB)
    wrong = "0" * 64
    source, targets = MemoryStore("source", {"k": data}), [MemoryStore("a"), MemoryStore("b")]
    with pytest.raises(ChecksumMismatch) as excinfo:
        copy_object(source, "k", len(data), wrong, targets, {}, SMALL)
    assert sha256(data) in str(excinfo.value) and wrong in str(excinfo.value)
    assert "mem://source/k" in str(excinfo.value)
    for target in targets:
        assert (target.uploads[0].completed, target.uploads[0].aborted) == (0, 1)
        assert target.objects == {}


def test_short_source_is_a_mismatch():
    """A source shorter than the manifest says reads fewer bytes and is not completed."""
    data = payload(2 * KIB)
    source, target = MemoryStore("source", {"k": data}), MemoryStore()
    with pytest.raises(ChecksumMismatch, match=f"read {2 * KIB} bytes .* says {3 * KIB} bytes"):
        copy_object(source, "k", 3 * KIB, sha256(data), [target], {}, SMALL)
    assert target.objects == {}
    assert target.uploads[0].aborted == 1


def test_read_error_aborts_every_target_and_reraises():
    source, targets = MemoryStore("source"), [MemoryStore("a"), MemoryStore("b")]
    with pytest.raises(KeyError):
        copy_object(source, "missing", 4 * KIB, "0" * 64, targets, {}, SMALL)
    assert [(t.uploads[0].completed, t.uploads[0].aborted) for t in targets] == [(0, 1), (0, 1)]


# -- reading ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [1, KIB, KIB + 1, 10 * KIB + 7])
def test_streamed_source_is_cut_into_exact_parts(size):
    """With ``stream_source`` one streaming read replaces the ranged reads; parts are still exact."""
    data, source, (target,), _ = fan_out(size, targets=1, settings=TransferSettings(KIB, 3, stream_source=True))
    assert target.objects["k"] == data and source.reads == []
    (upload,) = target.uploads
    sizes = [len(upload.parts[n]) for n in sorted(upload.parts)]
    assert sizes[:-1] == [KIB] * (len(sizes) - 1) and 0 < sizes[-1] <= KIB


def test_a_streamed_chunk_of_exactly_one_part_is_passed_on_without_a_copy():
    chunks = [payload(KIB), payload(KIB + 1)]
    store = SimpleNamespace(read_stream=lambda key, chunk_size: iter(chunks))
    parts = list(iter_stream(store, "k", TransferSettings(part_size=KIB)))
    assert parts[0] is chunks[0]
    assert b"".join(parts) == b"".join(chunks) and [len(p) for p in parts] == [KIB, KIB, 1]


def test_iter_parts_yields_bytes_in_order():
    data = payload(20 * KIB + 3)
    store = MemoryStore(objects={"k": data}, jitter=True)
    parts = list(iter_parts(store, "k", len(data), SMALL))
    assert b"".join(parts) == data
    assert [len(p) for p in parts] == [KIB] * 20 + [3]


def test_sha256_of_matches_hashlib():
    data = payload(5 * KIB + 11)
    store = MemoryStore(objects={"k": data})
    assert sha256_of(store, "k", len(data), SMALL) == sha256(data)


def test_sha256_of_short_object_is_a_mismatch():
    store = MemoryStore(objects={"k": payload(KIB)})
    with pytest.raises(ChecksumMismatch, match=f"read {KIB} bytes, expected {2 * KIB}"):
        sha256_of(store, "k", 2 * KIB, SMALL)


# -- a model version to several targets -----------------------------------------------------------------------


def registered(files: dict[str, bytes]) -> tuple[Manifest, MemoryStore]:
    manifest = Manifest.build("m", "1", "source", [ModelFile(p, len(d), sha256(d)) for p, d in files.items()])
    source = MemoryStore("source", {manifest.key(p): d for p, d in files.items()})
    return manifest, source


def test_a_retry_after_one_target_failed_copies_only_to_that_target():
    """The healthy target gets every file although the other failed on the first; the retry reads each file
    once more, for the failed target alone, and skips what the healthy one already has."""
    files = {"a.bin": payload(5 * KIB), "b.bin": payload(3 * KIB + 1)}
    manifest, source = registered(files)
    healthy, failing = MemoryStore("healthy"), MemoryStore("failing")
    failing.fail_upload_part = 2
    replicas = [Replica(manifest, source, healthy), Replica(manifest, source, failing)]

    with pytest.raises(ConnectionError, match="part 2 lost"):
        copy_version(replicas, SMALL)
    assert {path: healthy.objects[manifest.key(path)] for path in files} == files
    assert failing.objects == {}
    assert len(source.reads) == 5 + 4, "each file read once"

    failing.fail_upload_part = None
    source.reads.clear()
    results = copy_version(replicas, SMALL)
    assert results == {
        "healthy": {"copied": [], "skipped": ["a.bin", "b.bin"]},
        "failing": {"copied": ["a.bin", "b.bin"], "skipped": []},
    }
    assert {path: failing.objects[manifest.key(path)] for path in files} == files
    assert len(source.reads) == 5 + 4, "each file read once more, for the failed target alone"


def test_a_manifest_of_other_content_is_deleted_before_any_file_is_overwritten():
    files = {"a.bin": payload(2 * KIB)}
    manifest, source = registered(files)
    target = MemoryStore("target")
    older = Manifest.build("m", "1", "source", [ModelFile("a.bin", 3, sha256(b"old"))])
    target.put_bytes(manifest_key("m", "1"), older.to_json().encode())
    target.put_bytes(manifest.key("a.bin"), b"old", {"sha256": sha256(b"old")})

    copy_version([Replica(manifest, source, target)], SMALL)

    assert target.log.index(("delete", manifest_key("m", "1"))) < target.log.index(("begin", manifest.key("a.bin")))
    assert manifest_key("m", "1") not in target.objects, "the manifest is written by verify, not copy"
    assert target.objects[manifest.key("a.bin")] == files["a.bin"]


# -- progress -----------------------------------------------------------------------------------------------


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
