"""Replication audit: every hour, re-check every replica against its manifest, repair drift, measure lag.

Each model version's copy in every region is read back in full and classified ok, missing, stale or
corrupt; a drifted copy is repaired from a verified one. The ``report`` task logs the drift and the
replication lag (registry event to last replica verified) of each version, and fails loudly when a lag
exceeds the catalogue's RPO (``replication.rpo_minutes``, 15 by default) or a copy could not be repaired.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import Param, dag, task
from airflow.task.trigger_rule import TriggerRule

from include.airflow.defaults import REPLICATION_POOL, START_DATE, default_args

VERSIONS_PER_BATCH = 20  # keeps the map short: 100 batches cover 2,000 model versions


@dag(
    dag_id="replication_audit",
    schedule="@hourly",
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    tags=["replication", "audit"],
    doc_md=__doc__,
    default_args=default_args(retries=2, retry_delay=timedelta(minutes=1)),
    params={
        "repair": Param(True, type="boolean", title="Repair", description="Repair drifted copies (else only report)."),
    },
)
def replication_audit():
    @task
    def list_version_batches(dag=None, dag_run=None) -> list[list[dict]]:
        """Every registered model version, in batches."""
        from include.airflow.failures import permanent_errors_fail_task
        from include.airflow.run_conf import check_conf_fields
        from include.catalogue import load_catalogue
        from include.replication.audit import registered_versions

        with permanent_errors_fail_task():
            check_conf_fields(dag_run.conf, dag.params)

        versions = registered_versions(load_catalogue())
        print(f"{len(versions)} model version(s) registered")
        return [versions[i : i + VERSIONS_PER_BATCH] for i in range(0, len(versions), VERSIONS_PER_BATCH)]

    @task(pool=REPLICATION_POOL, execution_timeout=timedelta(hours=2))
    def audit(batch: list[dict], params: dict) -> list[dict]:
        """Read back every copy of each version in the batch; repair what drifted."""
        from dataclasses import asdict

        from include.catalogue import load_catalogue
        from include.replication.audit import audit_version

        catalogue = load_catalogue()
        findings = []
        for version in batch:
            findings += [asdict(f) for f in audit_version(catalogue, version, repair=params["repair"])]
        return findings

    @task(multiple_outputs=False, trigger_rule=TriggerRule.ALL_DONE, retries=0)
    def report(findings: list[list[dict]]) -> dict:
        """Log drift and lag; fail when a copy is still bad or a lag exceeds the RPO."""
        from datetime import UTC, datetime

        from airflow.sdk import get_current_context
        from airflow.sdk.exceptions import AirflowFailException

        if get_current_context()["ti"].xcom_pull(task_ids="list_version_batches") is None:
            raise AirflowFailException("listing the model versions failed: see list_version_batches")
        from include.catalogue import load_catalogue
        from include.replication.audit import replication_lag
        from include.replication.status import StatusStore

        catalogue = load_catalogue()
        flat = [finding for batch in findings if batch for finding in batch]
        drift = [f for f in flat if f["state"] != "ok"]
        for f in drift:
            outcome = "repaired" if f["repaired"] else "NOT repaired"
            print(f"drift: {f['model']}/{f['version']} in {f['region']}: {f['state']} ({f['detail']}), {outcome}")
        print(f"{len(flat)} copies checked, {len(drift)} drifted, {sum(f['repaired'] for f in drift)} repaired")

        rpo = timedelta(minutes=catalogue.replication.rpo_minutes)
        now = datetime.now(UTC)
        lags = replication_lag(StatusStore.from_connection(catalogue.replication.state_connection).rows())
        late = [lag for lag in lags if lag.exceeds(rpo, now)]
        for lag in lags:
            shown = f"{lag.lag_seconds:.0f} s" if lag.lag_seconds is not None else f"pending in {lag.pending_regions}"
            print(f"lag: {lag.model}/{lag.version}: {shown}{'  > RPO' if lag in late else ''}")
        unrepaired = [f"{f['model']}/{f['version']} in {f['region']}" for f in drift if not f["repaired"]]
        if late or unrepaired:
            raise AirflowFailException(
                f"replication RPO of {catalogue.replication.rpo_minutes} min exceeded by "
                f"{[f'{lag.model}/{lag.version}' for lag in late]}; unrepaired copies: {unrepaired}"
            )
        return {"checked": len(flat), "drifted": len(drift)}

    batches = list_version_batches()
    # report runs whatever happened upstream (ALL_DONE), also when there is nothing to audit: lag is checked.
    batches >> report(audit.expand(batch=batches))


replication_audit()
