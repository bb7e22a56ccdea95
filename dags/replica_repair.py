"""Replica repair: serving reported a corrupt copy; record it and repair it now, not at the next hourly audit.

A serving process that finds a file of its region's copy changed at rest unloads it (its region leaves DNS
through the health checks) and puts a report on the catalogue's reports queue; an ``AssetWatcher`` starts
this DAG. ``record`` marks each reported replica ``corrupt`` in the replication status, naming the file and
both checksums, and only then deletes the reports from the queue (a report not recorded is delivered again).
``repair``, mapped over the versions reported, re-reads every region's copy of the version and repairs the bad
ones from a verified copy, as the hourly audit does. Serving sees the repaired file's new ETag, re-hashes it
and serves again.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import dag, get_current_context, task

from include.airflow.assets import replica_reports_asset
from include.airflow.defaults import REPLICATION_POOL, START_DATE, default_args
from include.catalogue import load_catalogue

REPLICA_REPORTS = replica_reports_asset(load_catalogue())  # a local file: no network at parse time


@dag(
    dag_id="replica_repair",
    schedule=[REPLICA_REPORTS] if REPLICA_REPORTS else None,
    start_date=START_DATE,
    catchup=False,
    max_active_runs=2,
    tags=["replication", "audit"],
    doc_md=__doc__,
    default_args=default_args(retries=3, retry_delay=timedelta(seconds=5)),
)
def replica_repair():
    @task(multiple_outputs=False)
    def record() -> list[dict]:
        """Record every reported replica as ``corrupt``, then acknowledge the reports; the versions to repair."""
        from include.airflow.assets import queue_messages
        from include.replication.events import acknowledge
        from include.replication.repair import record_reports

        catalogue = load_catalogue()
        messages = queue_messages(get_current_context()["triggering_asset_events"])
        versions = record_reports(catalogue, [message["Body"] for message in messages])
        acknowledge(catalogue, catalogue.events.reports_queue_url, messages)  # recorded: a retry needs no report
        labels = [f"{version['model']}/{version['version']}" for version in versions]
        print(f"{len(versions)} version(s) reported: {labels}")
        return versions

    @task(pool=REPLICATION_POOL, map_index_template="{{ version_label }}", execution_timeout=timedelta(hours=1))
    def repair(version: dict) -> list[dict]:
        """Re-read every region's copy of the version and repair the bad ones from a verified copy."""
        from dataclasses import asdict

        from airflow.sdk.exceptions import AirflowFailException

        from include.replication.repair import repair_version

        get_current_context()["version_label"] = f"{version['model']}/{version['version']}"
        findings = repair_version(load_catalogue(), version)
        for finding in findings:
            print(f"{finding.region}: {finding.state}{' -> repaired' if finding.repaired else ''} {finding.detail}")
        unrepaired = [f.region for f in findings if f.state != "ok" and not f.repaired]
        if unrepaired:
            raise AirflowFailException(f"could not repair {version['model']}/{version['version']} in {unrepaired}")
        return [asdict(finding) for finding in findings]

    repair.expand(version=record())


replica_repair()
