"""The wiring check: write, read back and checksum a small object in each region's store.

It proves, region by region, that the catalogue, the connection and the provider's hook reach a working
bucket or container, and it measures how long the round trip takes.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import asdict, dataclass

from include.catalogue import Region
from include.clouds.objectstore import ObjectStore, store_for
from include.errors import ChecksumMismatch

PROBE_PREFIX = "_platform/wiring"
PROBE_SIZE = 64 * 1024


@dataclass(frozen=True)
class ProbeResult:
    region: str
    provider: str
    bucket: str
    key: str
    size: int
    sha256: str
    write_ms: float
    read_ms: float


def probe_key(run_id: str, region_name: str) -> str:
    """The probe object's key: one fixed key per run and region, so a retry overwrites, never piles up.

    The run id is made safe for every store (and a hash of it keeps distinct run ids apart).
    """
    safe_run_id = re.sub(r"[^A-Za-z0-9_.-]", "_", run_id)
    digest = hashlib.sha256(run_id.encode()).hexdigest()[:8]
    return f"{PROBE_PREFIX}/{safe_run_id}-{digest}/{region_name}.bin"


def probe_payload(run_id: str, region_name: str, size: int = PROBE_SIZE) -> bytes:
    """Deterministic, incompressible bytes for one run and region (a SHA-256 chain)."""
    block = hashlib.sha256(f"{run_id}/{region_name}".encode()).digest()
    blocks = []
    for _ in range(-(-size // len(block))):
        blocks.append(block)
        block = hashlib.sha256(block).digest()
    return b"".join(blocks)[:size]


def probe_region(region: Region, run_id: str, store: ObjectStore | None = None) -> dict:
    """Write, read back and compare by SHA-256 one probe object in ``region``; delete it afterwards."""
    store = store or store_for(region)
    key = probe_key(run_id, region.name)
    payload = probe_payload(run_id, region.name)
    expected = hashlib.sha256(payload).hexdigest()
    started = time.perf_counter()
    store.put_bytes(key, payload)
    written = time.perf_counter()
    try:
        landed = hashlib.sha256(store.get_bytes(key)).hexdigest()
        read = time.perf_counter()
    finally:
        store.delete(key)
    if landed != expected:
        raise ChecksumMismatch(f"{region.name}: {key} read back with SHA-256 {landed}, but {expected} was written")
    return asdict(
        ProbeResult(
            region=region.name,
            provider=region.provider,
            bucket=region.bucket,
            key=key,
            size=len(payload),
            sha256=expected,
            write_ms=round((written - started) * 1000, 1),
            read_ms=round((read - written) * 1000, 1),
        )
    )


def reachability_report(region_names: list[str], results: list[dict]) -> tuple[str, list[str]]:
    """A table of every checked region (reachable or not) and the names of the unreachable ones."""
    by_region = {result["region"]: result for result in results}
    unreachable = [name for name in region_names if name not in by_region]
    rows = [f"{'region':22} {'provider':8} {'status':12} {'write ms':>9} {'read ms':>8}  sha256"]
    for name in region_names:
        result = by_region.get(name)
        if result is None:
            rows.append(f"{name:22} {'':8} {'UNREACHABLE':12} {'':>9} {'':>8}  (see the probe task's log)")
        else:
            rows.append(
                f"{name:22} {result['provider']:8} {'reachable':12} {result['write_ms']:>9} "
                f"{result['read_ms']:>8}  {result['sha256'][:16]}"
            )
    return "\n".join(rows), unreachable
