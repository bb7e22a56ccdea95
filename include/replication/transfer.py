"""Streaming one object to several targets in one pass over the source, with SHA-256 computed on the way.

The source is read once, as parallel ranged parts through a sliding window (or, with ``stream_source``, as
one streaming read cut into parts), and hashed in order. Every part goes to each target's upload, which stays
invisible until completed and sends the part with the provider's checksum of its bytes
(``include.clouds.objectstore``); each target has ``workers`` threads. Memory is bounded by the parts in flight,
whatever the object's size and the number of targets: ``workers`` parts read ahead and ``workers`` parts being
uploaded, each shared by all targets, about ``2 x workers x part_size`` in all.

A target that fails (a part refused or lost) is dropped from the pass and its upload aborted; the others go on
to completion, so a retry finds their copies done.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass

from include.clouds.objectstore import ObjectStore, PartUpload
from include.errors import ChecksumMismatch

log = logging.getLogger(__name__)

PART_SIZE = 8 * 1024 * 1024
WORKERS = 4
PROGRESS_EVERY_SECONDS = 5.0


@dataclass(frozen=True)
class TransferSettings:
    part_size: int = PART_SIZE
    workers: int = WORKERS
    # One GET per source object instead of parallel ranged GETs: for stores that serve a range in time
    # proportional to the whole object (moto reads the full object for every ranged GET).
    stream_source: bool = False


class Progress:
    """Logs bytes done and MiB/s at most every ``PROGRESS_EVERY_SECONDS``, and once at the end."""

    def __init__(self, what: str, total: int, report: Callable[[str], None] = log.info):
        self.what, self.total, self.report = what, total, report
        self.done = 0
        self.started = self.last = time.monotonic()

    def add(self, count: int) -> None:
        self.done += count
        now = time.monotonic()
        if now - self.last >= PROGRESS_EVERY_SECONDS:
            self.last = now
            self.report(self.line())

    @property
    def elapsed(self) -> float:
        return max(time.monotonic() - self.started, 1e-9)

    def line(self) -> str:
        percent = 100 * self.done / self.total if self.total else 100
        return (
            f"{self.what}: {self.done / 2**20:,.1f} of {self.total / 2**20:,.1f} MiB ({percent:.0f}%), "
            f"{self.done / 2**20 / self.elapsed:,.1f} MiB/s"
        )


def iter_parts(store: ObjectStore, key: str, size: int, settings: TransferSettings) -> Iterator[bytes]:
    """The object's bytes in order, fetched as parallel ranged reads, at most ``workers`` ahead."""
    window: deque[Future[bytes]] = deque()
    with ThreadPoolExecutor(settings.workers, thread_name_prefix="read") as pool:
        for start in range(0, size, settings.part_size):
            length = min(settings.part_size, size - start)
            window.append(pool.submit(store.read_range, key, start, length))
            if len(window) >= settings.workers:
                yield window.popleft().result()
        while window:
            yield window.popleft().result()


def iter_stream(store: ObjectStore, key: str, settings: TransferSettings) -> Iterator[bytes]:
    """The object's bytes in order, as ``part_size`` pieces (the last one shorter) cut from one streaming read.

    A piece that arrives exactly ``part_size`` long is passed on as it is, without a copy.
    """
    pending = bytearray()
    for chunk in store.read_stream(key, settings.part_size):
        if not pending and len(chunk) == settings.part_size:
            yield chunk
            continue
        pending += chunk
        while len(pending) >= settings.part_size:
            with memoryview(pending) as view:
                part = bytes(view[: settings.part_size])
            del pending[: settings.part_size]
            yield part
    if pending:
        yield bytes(pending)


def read_object(store: ObjectStore, key: str, size: int, settings: TransferSettings) -> Iterator[bytes]:
    """The object's bytes in ``part_size`` parts, read as ``settings.stream_source`` says."""
    if settings.stream_source:
        return iter_stream(store, key, settings)
    return iter_parts(store, key, size, settings)


def sha256_of(store: ObjectStore, key: str, size: int, settings: TransferSettings = TransferSettings()) -> str:
    """SHA-256 of what is stored at ``key`` (read back in full), logging progress."""
    digest = hashlib.sha256()
    progress = Progress(f"read back {store.url(key)}", size)
    for part in read_object(store, key, size, settings):
        digest.update(part)
        progress.add(len(part))
    if progress.done != size:
        raise ChecksumMismatch(f"{store.url(key)}: read {progress.done} bytes, expected {size}")
    log.info(progress.line())
    return digest.hexdigest()


@dataclass(frozen=True)
class CopyOutcome:
    """What one pass did: the bytes read, and per target the provider checksum checked or the error."""

    progress: Progress
    checked: dict[ObjectStore, str]
    failed: dict[ObjectStore, BaseException]


def copy_object(
    source: ObjectStore,
    key: str,
    size: int,
    expected_sha256: str,
    targets: Sequence[ObjectStore],
    metadata: dict[str, str],
    settings: TransferSettings = TransferSettings(),
) -> CopyOutcome:
    """Stream ``key`` from ``source`` into ``key`` of every target in one read, hashing it as it goes.

    The uploads are completed (made visible, then checked against the provider's checksums) only if the
    bytes read hash to ``expected_sha256``; otherwise all are aborted and ``ChecksumMismatch`` names both
    checksums. A target whose upload fails is aborted and reported in ``failed``; the others carry on.
    A failure to read the source aborts every upload and is raised.
    """
    progress = Progress(f"copy {source.url(key)} -> {', '.join(target.url(key) for target in targets)}", size)
    uploads: dict[ObjectStore, PartUpload] = {}
    failed: dict[ObjectStore, BaseException] = {}
    checked: dict[ObjectStore, str] = {}
    for target in targets:
        try:
            uploads[target] = target.begin_upload(key, metadata)
        except Exception as exc:
            failed[target] = exc
    try:
        actual = _send_parts(source, key, size, uploads, failed, progress, settings)
        live = [target for target in uploads if target not in failed]
        if live and (progress.done != size or actual != expected_sha256):
            raise ChecksumMismatch(
                f"{source.url(key)}: read {progress.done} bytes with SHA-256 {actual}, "
                f"but the manifest says {size} bytes with SHA-256 {expected_sha256}"
            )
        if live:
            with ThreadPoolExecutor(len(live), thread_name_prefix="complete") as pool:
                completing = {target: pool.submit(uploads[target].complete) for target in live}
            for target, future in completing.items():
                try:
                    checked[target] = future.result()
                except Exception as exc:
                    failed[target] = exc
    finally:
        for target, upload in uploads.items():
            if target not in checked:
                _abort(upload, target.url(key))
    log.info(progress.line())
    for target, check in checked.items():
        log.info("%s completed and checked: %s", target.url(key), check)
    for target, error in failed.items():
        log.error("%s failed: %s: %s", target.url(key), type(error).__name__, error)
    return CopyOutcome(progress, checked, failed)


def _send_parts(
    source: ObjectStore,
    key: str,
    size: int,
    uploads: dict[ObjectStore, PartUpload],
    failed: dict[ObjectStore, BaseException],
    progress: Progress,
    settings: TransferSettings,
) -> str:
    """Read the source once, hashing it in order, and hand each part to every upload not yet failed; the
    SHA-256 of what was read. At most ``workers`` parts are uploading at once, each shared by all targets."""
    digest = hashlib.sha256()
    window: deque[list[tuple[ObjectStore, Future[None]]]] = deque()
    with ExitStack() as stack:
        pools = {}
        for target in uploads:
            pools[target] = ThreadPoolExecutor(settings.workers, thread_name_prefix="upload")
            stack.callback(pools[target].shutdown, cancel_futures=True)  # after an error, queued parts are dropped
        for number, part in enumerate(read_object(source, key, size, settings)):
            live = [target for target in uploads if target not in failed]
            if not live:
                break
            digest.update(part)
            progress.add(len(part))
            window.append(
                [(target, pools[target].submit(uploads[target].upload_part, number, part)) for target in live]
            )
            del part
            while len(window) >= settings.workers:
                _settle(window.popleft(), failed)
        while window:
            _settle(window.popleft(), failed)
    return digest.hexdigest()


def _settle(uploading: list[tuple[ObjectStore, Future[None]]], failed: dict[ObjectStore, BaseException]) -> None:
    """Wait for one part's uploads; a target whose upload failed is recorded (its first error) and dropped."""
    for target, future in uploading:
        try:
            future.result()
        except Exception as exc:
            failed.setdefault(target, exc)


def _abort(upload: PartUpload, url: str) -> None:
    """Abort an upload that did not complete; a failure to abort is logged, not raised over the first error."""
    try:
        upload.abort()
    except Exception as exc:
        log.warning("could not abort the upload of %s: %s: %s", url, type(exc).__name__, exc)
