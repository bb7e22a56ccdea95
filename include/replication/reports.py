"""Serving's reports of bad replicas, sent to the catalogue's reports queue; the audit DAG repairs what they name.

A serving process that finds a file of its region's copy no longer matching the manifest (bytes changed at
rest) puts one message on ``events.reports_queue_url``::

    {"kind": "replica_corrupt", "model": ..., "version": ..., "region": ..., "path": ...,
     "expected_sha256": ..., "actual_sha256": ..., "reported_at": ...}

An ``AssetWatcher`` on that queue starts ``replication_audit`` for the versions named: it records the replica
``corrupt`` with both checksums, re-checks it and repairs it from a verified copy. A report is a hint, never
trusted as proof: the audit reads the copy itself before it changes anything.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from include.catalogue import Catalogue
from include.errors import InvalidModelVersion, InvalidRequest, quoted
from include.replication.manifest import check_file_path, check_model_name, check_sha256, check_version

log = logging.getLogger(__name__)

KIND = "replica_corrupt"


@dataclass(frozen=True)
class CorruptReport:
    """One region's copy of one file of a model version, found not to hash to the manifest's SHA-256."""

    model: str
    version: str
    region: str
    path: str
    expected_sha256: str
    actual_sha256: str
    reported_at: str = ""

    def to_json(self) -> str:
        return json.dumps({"kind": KIND, **asdict(self)}, sort_keys=True)

    @classmethod
    def from_json(cls, body: str | bytes, catalogue: Catalogue) -> CorruptReport:
        """Parse a report; ``InvalidRequest`` names what is wrong (an unknown region, a bad checksum...)."""
        try:
            data = json.loads(body)
        except ValueError:
            raise InvalidRequest(f"report is not JSON: {quoted(body)}") from None
        if not isinstance(data, dict) or data.get("kind") != KIND:
            raise InvalidRequest(f"report kind must be {KIND!r}")
        try:
            report = cls(
                model=check_model_name(data.get("model")),
                version=check_version(data.get("version")),
                region=str(data.get("region")),
                path=check_file_path(data.get("path")),
                expected_sha256=check_sha256(data.get("expected_sha256"), "report: expected_sha256"),
                actual_sha256=check_sha256(data.get("actual_sha256"), "report: actual_sha256"),
                reported_at=str(data.get("reported_at", "")),
            )
        except InvalidModelVersion as exc:
            raise InvalidRequest(f"report: {exc}") from None
        if report.region not in {region.name for region in catalogue.regions}:
            raise InvalidRequest(f"report: region {report.region!r} is not in the catalogue")
        return report


def report_corrupt(catalogue: Catalogue, report: CorruptReport) -> bool:
    """Send ``report`` to the reports queue; False (logged, never raised) if there is no queue or it failed.

    Serving calls this from its verification thread: a queue that is down must not stop it from unloading
    the bad copy, which matters more; the hourly audit finds the copy anyway.
    """
    if catalogue.events is None or catalogue.events.reports_queue_url is None:
        log.warning("no events.reports_queue_url in the catalogue: the audit repairs %s/%s in %s on its next run",
                    report.model, report.version, report.region)  # fmt: skip
        return False
    from airflow.providers.amazon.aws.hooks.sqs import SqsHook

    stamped = CorruptReport(**{**asdict(report), "reported_at": datetime.now(UTC).isoformat()})
    try:
        SqsHook(aws_conn_id=catalogue.events.connection).send_message(
            queue_url=catalogue.events.reports_queue_url, message_body=stamped.to_json()
        )
    except Exception as exc:  # the queue or its credentials: logged, the audit is the fallback
        log.error("could not report the corrupt copy of %s/%s in %s: %s", report.model, report.version,
                  report.region, exc)  # fmt: skip
        return False
    log.warning("reported %s of %s/%s in %s as corrupt (SHA-256 %s, manifest %s)", report.path, report.model,
                report.version, report.region, report.actual_sha256, report.expected_sha256)  # fmt: skip
    return True
