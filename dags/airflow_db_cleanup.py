"""Metadata clean-up: every day, purge Airflow's own records older than ``retention_days`` (30 by default).

``failover_moves`` runs on every health-watch report, and every DAG run leaves its task instances, XComs
and logs; without this the metadata database only grows. Runs ``airflow db clean`` up to the run's logical
date minus the retention, without archive tables, on the database of the connection ``airflow_db`` (Airflow
3 hides its own from tasks); the platform's state database is not touched.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import Param, dag, task

from include.airflow.db_cleanup import CLEAN_TIMEOUT
from include.airflow.defaults import START_DATE, default_args


@dag(
    dag_id="airflow_db_cleanup",
    schedule="@daily",
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    tags=["platform", "maintenance"],
    doc_md=__doc__,
    default_args=default_args(retries=2, retry_delay=timedelta(minutes=5), max_retry_delay=timedelta(minutes=30)),
    params={
        "retention_days": Param(
            30,
            type="integer",
            minimum=1,
            title="Retention (days)",
            description="Keep this many days of DAG runs, task instances, XComs, logs and jobs before the run's "
            "logical date; older records are deleted (no archive).",
        ),
    },
)
def airflow_db_cleanup():
    @task(execution_timeout=CLEAN_TIMEOUT + timedelta(minutes=5))  # the command's own timeout, and a margin
    def clean(params: dict, logical_date=None, dag=None, dag_run=None) -> str:
        """``airflow db clean`` up to the logical date (a manual run without one: its run-after) minus the retention."""
        from include.airflow.db_cleanup import clean_metadata_db
        from include.airflow.failures import permanent_errors_fail_task
        from include.airflow.run_conf import check_conf_fields

        with permanent_errors_fail_task():
            check_conf_fields(dag_run.conf, dag.params)

        return clean_metadata_db(logical_date or dag_run.run_after, params["retention_days"])

    clean()


airflow_db_cleanup()
