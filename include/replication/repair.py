"""Repair on report: serving's reports of corrupt replicas, recorded and repaired within the minute.

``record_reports`` turns the reports of one run (``include.replication.reports``) into status rows in state
``corrupt``, each naming the file and both checksums, and returns the versions to repair, once each.
``repair_version`` then runs the audit's check and repair (``include.replication.audit.audit_version``) on
that version alone: every region's copy is read and classified, a bad one is repaired from a verified one,
and a reported region whose copy checks out is recorded ``verified`` again, so a false report changes nothing.
"""

from __future__ import annotations

import logging

from include.catalogue import Catalogue
from include.clouds.objectstore import store_for
from include.errors import InvalidRequest
from include.replication.audit import Finding, audit_version
from include.replication.replicate import read_manifest
from include.replication.reports import CorruptReport
from include.replication.status import StatusStore

log = logging.getLogger(__name__)


def record_reports(catalogue: Catalogue, bodies: list[str]) -> list[dict]:
    """Record each report's replica as ``corrupt``; the versions to repair: model, version, source, regions.

    A report that cannot be parsed, or names a version with no manifest in its region, is logged and skipped.
    """
    status = StatusStore.from_connection(catalogue.replication.state_connection)
    versions: dict[tuple[str, str], dict] = {}
    for body in bodies:
        try:
            report = CorruptReport.from_json(body, catalogue)
        except InvalidRequest as exc:
            log.error("skipped a replica report: %s; body: %.500s", exc, body)
            continue
        manifest = read_manifest(store_for(catalogue.region(report.region)), report.model, report.version)
        if manifest is None:
            log.error("skipped a report on %s/%s in %s: no manifest there (the audit handles missing copies)",
                      report.model, report.version, report.region)  # fmt: skip
            continue
        status.record(
            report.model,
            report.version,
            report.region,
            manifest.source_region,
            "corrupt",
            sha256=manifest.total_sha256,
            message=f"serving found {report.path} with SHA-256 {report.actual_sha256}, "
            f"the manifest says {report.expected_sha256}; repair started",
        )
        entry = versions.setdefault(
            (report.model, report.version),
            {"model": report.model, "version": report.version, "source_region": manifest.source_region, "regions": []},
        )
        if report.region not in entry["regions"]:
            entry["regions"].append(report.region)
    return list(versions.values())


def repair_version(catalogue: Catalogue, version: dict) -> list[Finding]:
    """Check and repair every region's copy of a reported version, and settle each reported region's row.

    The audit records the regions it repaired; here a reported copy found sound, and a repaired source region
    (which the audit does not record), go back to ``verified``.
    """
    findings = audit_version(catalogue, version, repair=True)
    status = StatusStore.from_connection(catalogue.replication.state_connection)
    rows = {row.region: row for row in status.rows(version["model"], version["version"])}
    for finding in findings:
        if finding.region not in version["regions"]:
            continue
        if finding.state == "ok":
            message = "reported corrupt by serving, but every file reads back with the manifest's SHA-256"
        elif finding.repaired and finding.region == version["source_region"]:
            message = f"repaired a {finding.state} copy of the source from a verified replica: {finding.detail}"
        else:
            continue
        row = rows.get(finding.region)
        status.record(finding.model, finding.version, finding.region, version["source_region"], "verified",
                      size=row.bytes if row else None, message=message)  # fmt: skip
    return findings
