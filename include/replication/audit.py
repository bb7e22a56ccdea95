"""The integrity audit: re-check every replica against its manifest, repair drift, and measure lag.

For each model version registered in a region, every region's copy is classified:

- ``ok``: the manifest matches the source's, and every file reads back with the manifest's SHA-256;
- ``missing``: no manifest (never replicated, or un-published), or a listed file is gone;
- ``stale``: a manifest of other content (an older upload of the same version);
- ``corrupt``: a file whose bytes no longer hash to the manifest's SHA-256.

A drifted copy is repaired from a copy that was just verified ``ok`` (the source region's if it is ok):
its manifest is deleted first, so it stops being a finished replica, then the bad files are deleted, copied
again, verified and published as in normal replication (``include.replication.replicate``), and its
rollout pointer moved as replication's ``verify`` moves it (``promote``: only if the version supersedes what
the region serves). A copy never replicated yet, whose replication an event has not reached, is completed
and rolled out the same way, so a replication that then finds it published has nothing left to do.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from include.catalogue import Catalogue
from include.clouds.objectstore import ObjectStore, store_for
from include.replication.manifest import MANIFEST_NAME, MODELS_PREFIX, Manifest, manifest_key
from include.replication.replicate import Replica, copy_version, read_manifest, settings_of, verify_and_publish
from include.replication.rollout import promote
from include.replication.status import StatusRow, StatusStore, as_utc
from include.replication.transfer import TransferSettings, sha256_of

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Finding:
    model: str
    version: str
    region: str
    state: str  # ok, missing, stale, corrupt
    detail: str = ""
    repaired: bool = False


def registered_versions(catalogue: Catalogue) -> list[dict]:
    """Every model version whose manifest in a region names that region as its source."""
    versions = []
    for region in catalogue.regions:
        store = store_for(region)
        for key in store.list_keys(f"{MODELS_PREFIX}/"):
            parts = key.split("/")
            if len(parts) != 4 or parts[3] != MANIFEST_NAME:
                continue
            manifest = read_manifest(store, parts[1], parts[2])
            if manifest is not None and manifest.source_region == region.name:
                versions.append({"model": manifest.model, "version": manifest.version, "source_region": region.name})
    return sorted(versions, key=lambda v: (v["model"], v["version"]))


def check_copy(store: ObjectStore, source: Manifest, settings: TransferSettings) -> tuple[str, str, list[str]]:
    """Classify one region's copy of ``source``: (state, detail, paths of bad files)."""
    found = read_manifest(store, source.model, source.version)
    if found is None:
        return "missing", f"no manifest at {store.url(manifest_key(source.model, source.version))}", []
    if found.total_sha256 != source.total_sha256:
        return "stale", f"manifest total {found.total_sha256[:16]} differs from {source.total_sha256[:16]}", []
    bad, details = [], []
    for model_file in source.files:
        key = source.key(model_file.path)
        info = store.head(key)
        if info is None:
            bad.append(model_file.path)
            details.append(f"{model_file.path} missing")
            continue
        actual = sha256_of(store, key, info.size, settings) if info.size == model_file.size else "size differs"
        if actual != model_file.sha256:
            bad.append(model_file.path)
            details.append(f"{model_file.path}: SHA-256 {actual}, manifest {model_file.sha256}")
    if not bad:
        return "ok", "", []
    state = "corrupt" if any("SHA-256" in d for d in details) else "missing"
    return state, "; ".join(details), bad


def _repair(target: ObjectStore, source: ObjectStore, manifest: Manifest, bad_files: list[str], settings) -> None:
    target.delete(manifest_key(manifest.model, manifest.version))  # no longer a finished replica
    for path in bad_files:
        target.delete(manifest.key(path))
    replica = Replica(manifest, source, target)
    copy_version([replica], settings)
    verify_and_publish(replica, settings)


def audit_version(catalogue: Catalogue, version: dict, repair: bool = True) -> list[Finding]:
    """Check (and repair) every region's copy of one model version."""
    settings = settings_of(catalogue)
    source_region = catalogue.region(version["source_region"])
    stores = {region.name: store_for(region) for region in catalogue.regions}
    manifest = read_manifest(stores[source_region.name], version["model"], version["version"])
    if manifest is None:
        return [Finding(version["model"], version["version"], source_region.name, "missing", "source manifest gone")]
    checks = {name: check_copy(store, manifest, settings) for name, store in stores.items()}
    healthy = [name for name, (state, _, _) in checks.items() if state == "ok"]
    donor = source_region.name if source_region.name in healthy else (healthy[0] if healthy else None)
    findings = []
    for name, (state, detail, bad_files) in checks.items():
        repaired = False
        if state != "ok" and repair and donor is not None:
            log.warning("%s/%s in %s is %s (%s): repairing from %s", manifest.model, manifest.version, name,
                        state, detail, donor)  # fmt: skip
            bad = bad_files if state == "corrupt" else [f.path for f in manifest.files]
            _repair(stores[name], stores[donor], manifest, bad, settings)
            repaired = check_copy(stores[name], manifest, settings)[0] == "ok"
            if repaired:  # as replication's verify does: a copy the audit completed is rolled out too
                promote(stores[name], manifest, reason=f"audit repaired a {state} copy")
            if name != source_region.name:
                outcome = "audit repaired" if repaired else "audit could not repair"
                StatusStore.from_connection(catalogue.replication.state_connection).record(
                    manifest.model,
                    manifest.version,
                    name,
                    source_region.name,
                    "verified" if repaired else "failed",
                    sha256=manifest.total_sha256,
                    size=manifest.total_size,
                    message=f"{outcome} a {state} copy: {detail}",
                )
        findings.append(Finding(manifest.model, manifest.version, name, state, detail, repaired))
    if any(finding.repaired for finding in findings):  # the source too, which replication would have moved
        promote(stores[source_region.name], manifest, reason="registered; replicated by the audit")
    return findings


@dataclass(frozen=True)
class LagReport:
    model: str
    version: str
    event_time: datetime
    lag_seconds: float | None  # None: not every target is verified yet
    pending_regions: list[str]

    def exceeds(self, rpo: timedelta, now: datetime) -> bool:
        if self.lag_seconds is not None:
            return self.lag_seconds > rpo.total_seconds()
        return now - self.event_time > rpo


def replication_lag(rows: list[StatusRow]) -> list[LagReport]:
    """Per model version with an event time: from the event to its last replica's verification."""
    by_version: dict[tuple[str, str], list[StatusRow]] = {}
    for row in rows:
        if row.event_time is not None:
            by_version.setdefault((row.model, row.version), []).append(row)
    reports = []
    for (model, version), group in sorted(by_version.items()):
        event_time = min(as_utc(r.event_time) for r in group)
        pending = [r.region for r in group if r.state != "verified"]
        lag = None if pending else max(r.lag_seconds for r in group if r.lag_seconds is not None)
        reports.append(LagReport(model, version, event_time, lag, pending))
    return reports
