"""Streaming copies between object stores, with SHA-256 computed in the same pass.

The source is read in parallel ranged parts through a sliding window (or, with ``stream_source``, as one
streaming read cut into parts) and hashed in order, while the target receives the same parts in parallel as
an upload that stays invisible until completed. Memory is bounded by the parts in flight (about
``3 x workers x part_size``), whatever the object's size.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from include.clouds.objectstore import ObjectStore
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
    """The object's bytes in order, fetched as parallel ranged reads through a bounded window."""
    window: deque[Future[bytes]] = deque()
    with ThreadPoolExecutor(settings.workers, thread_name_prefix="read") as pool:
        for start in range(0, size, settings.part_size):
            length = min(settings.part_size, size - start)
            window.append(pool.submit(store.read_range, key, start, length))
            if len(window) >= 2 * settings.workers:
                yield window.popleft().result()
        while window:
            yield window.popleft().result()


def iter_stream(store: ObjectStore, key: str, settings: TransferSettings) -> Iterator[bytes]:
    """The object's bytes in order, as ``part_size`` pieces (the last one shorter) cut from one streaming read."""
    pending = bytearray()
    for chunk in store.read_stream(key, settings.part_size):
        pending += chunk
        while len(pending) >= settings.part_size:
            yield bytes(pending[: settings.part_size])
            del pending[: settings.part_size]
    if pending:
        yield bytes(pending)


def sha256_of(store: ObjectStore, key: str, size: int, settings: TransferSettings = TransferSettings()) -> str:
    """SHA-256 of what is stored at ``key`` (read back in full), logging progress."""
    digest = hashlib.sha256()
    progress = Progress(f"verify {store.url(key)}", size)
    read = 0
    for part in iter_parts(store, key, size, settings):
        digest.update(part)
        read += len(part)
        progress.add(len(part))
    if read != size:
        raise ChecksumMismatch(f"{store.url(key)}: read {read} bytes, expected {size}")
    log.info(progress.line())
    return digest.hexdigest()


def copy_object(
    source: ObjectStore,
    source_key: str,
    target: ObjectStore,
    target_key: str,
    size: int,
    expected_sha256: str,
    metadata: dict[str, str],
    settings: TransferSettings = TransferSettings(),
) -> Progress:
    """Stream ``source_key`` into ``target_key``, hashing as it goes.

    The upload is completed (made visible under ``target_key``) only if the bytes read hash to
    ``expected_sha256``; otherwise it is aborted and ``ChecksumMismatch`` names both checksums.
    """
    progress = Progress(f"copy {source.url(source_key)} -> {target.url(target_key)}", size)
    digest = hashlib.sha256()
    upload = target.begin_upload(target_key, metadata)
    in_flight: deque[Future[None]] = deque()
    if settings.stream_source:
        parts = iter_stream(source, source_key, settings)
    else:
        parts = iter_parts(source, source_key, size, settings)
    try:
        with ThreadPoolExecutor(settings.workers, thread_name_prefix="write") as pool:
            for number, part in enumerate(parts):
                digest.update(part)
                in_flight.append(pool.submit(upload.upload_part, number, part))
                progress.add(len(part))
                while len(in_flight) >= settings.workers:
                    in_flight.popleft().result()
            while in_flight:
                in_flight.popleft().result()
        actual = digest.hexdigest()
        if progress.done != size or actual != expected_sha256:
            raise ChecksumMismatch(
                f"{source.url(source_key)}: read {progress.done} bytes with SHA-256 {actual}, "
                f"but the manifest says {size} bytes with SHA-256 {expected_sha256}"
            )
        upload.complete()
    except BaseException:
        upload.abort()
        raise
    log.info(progress.line())
    return progress
