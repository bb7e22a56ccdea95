"""Platform backup: every hour, the state database (failover records, the breaker's ledger, replication status)
to the object stores of two regions, so a control plane can be restored after losing its own region.

One task writes a logical dump of every table (``include/state/backup.py``) under
``control-plane/state/<hour>Z.jsonl.gz`` for the run's hour, the same key for a re-run, in each backup region
(default: the primary and the first other region; ``regions`` to choose), reads each copy back, and deletes
that region's backups older than ``retention_days``. Airflow's own metadata database is backed up by its
database service (``pg_dump``, managed snapshots): see docs/control-plane.md.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import Param, dag, task

from include.airflow.defaults import START_DATE, default_args
from include.catalogue import load_catalogue

REGION_NAMES = [region.name for region in load_catalogue().regions]  # a local file: no network at parse time


@dag(
    dag_id="platform_backup",
    schedule="@hourly",
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    tags=["platform", "backup"],
    doc_md=__doc__,
    default_args=default_args(retries=3, retry_delay=timedelta(minutes=2), max_retry_delay=timedelta(minutes=10)),
    params={
        "retention_days": Param(
            14,
            type="integer",
            minimum=1,
            title="Retention (days)",
            description="Keep this many days of hourly backups before the run's hour; older ones are deleted.",
        ),
        "regions": Param(
            [],
            type="array",
            items={"type": "string", "enum": REGION_NAMES},
            uniqueItems=True,
            anyOf=[{"maxItems": 0}, {"minItems": 2}],  # none (the default pair) or at least two
            title="Backup regions",
            description="At least two catalogue regions; empty means the primary and the first other region.",
        ),
    },
)
def platform_backup():
    @task(multiple_outputs=False, execution_timeout=timedelta(minutes=30))
    def back_up_state(params: dict, logical_date=None, dag=None, dag_run=None) -> dict:
        """Dump the state database for the run's hour to each backup region; delete the expired backups."""
        from include.airflow.failures import permanent_errors_fail_task
        from include.airflow.run_conf import check_conf_fields
        from include.state.backup import back_up_to_regions
        from include.state.engine import state_engine

        with permanent_errors_fail_task():
            check_conf_fields(dag_run.conf, dag.params)
        catalogue = load_catalogue()
        engine = state_engine(catalogue.replication.state_connection)
        try:
            summary = back_up_to_regions(
                catalogue, engine, logical_date or dag_run.run_after, params["regions"], params["retention_days"]
            )
        finally:
            engine.dispose()
        print(f"{summary['key']} ({summary['bytes']} bytes, sha256 {summary['sha256']}) in {summary['regions']}")
        print(f"rows per table at revision {summary['revision']}: {summary['tables']}; deleted: {summary['deleted']}")
        return summary

    back_up_state()


platform_backup()
