"""The control plane is not a single point of failure: the hourly backup DAG against the local regions, and the
Route 53 records that keep steering traffic with no Airflow process at all."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from include.catalogue import load_catalogue
from include.clouds.objectstore import store_for
from include.clouds.route53 import Route53Traffic
from include.failover.store import FailoverStore
from include.replication.status import StatusStore
from include.state.backup import OBJECT_PREFIX, backup_key, backup_regions, fetch_backup, restore_state
from include.state.engine import state_engine
from include.state.schema import metadata
from tests.integration.dns_zone import catalogue_in_fresh_zone
from tests.integration.helpers import parse_dag, task_states

pytestmark = pytest.mark.integration


def every_row(engine: sa.Engine) -> dict[str, list[tuple]]:
    with engine.connect() as conn:
        return {
            table.name: [tuple(row) for row in conn.execute(sa.select(table).order_by(*table.primary_key.columns))]
            for table in metadata.sorted_tables
        }


def test_platform_backup_keeps_the_state_in_two_regions_and_prunes_old_backups(local_clouds, airflow_db, tmp_path):
    catalogue = load_catalogue()
    conn_id = catalogue.replication.state_connection
    FailoverStore.from_connection(conn_id).load([region.name for region in catalogue.regions])
    StatusStore.from_connection(conn_id).record("backed-up", "1", "gcp-europe-west1", "aws-us-west-2", "verified")
    regions = backup_regions(catalogue)
    at = datetime(2026, 12, 7, 13, 20, tzinfo=UTC)
    expired, kept = backup_key(at - timedelta(days=14, hours=1)), backup_key(at - timedelta(days=13))
    unrelated = f"{OBJECT_PREFIX}README.txt"
    for region in regions:
        for key in (expired, kept, unrelated):
            store_for(region).put_bytes(key, b"an older object")

    dag_run = parse_dag("platform_backup.py", "platform_backup").test(logical_date=at)

    assert dag_run.state == "success", task_states(dag_run)
    summary = dag_run.get_task_instances()[0].xcom_pull(task_ids="back_up_state")
    assert (summary["key"], summary["regions"]) == (backup_key(at), [region.name for region in regions])
    assert summary["deleted"] == {region.name: [expired] for region in regions}
    live = state_engine(conn_id)
    try:
        for region in regions:
            assert sorted(store_for(region).list_keys(OBJECT_PREFIX)) == sorted([kept, backup_key(at), unrelated])
            copy = tmp_path / f"{region.name}.jsonl.gz"
            assert fetch_backup(region, copy) == backup_key(at)  # the newest
            restored = sa.create_engine(f"sqlite:///{tmp_path / region.name}.db")
            restore_state(restored, copy)
            assert every_row(restored) == every_row(live)
            restored.dispose()
    finally:
        live.dispose()

    again = parse_dag("platform_backup.py", "platform_backup").test(logical_date=at + timedelta(minutes=30))
    assert again.state == "success", task_states(again)
    for region in regions:  # the same hour: the same key, written again
        assert sorted(store_for(region).list_keys(OBJECT_PREFIX)) == sorted([kept, backup_key(at), unrelated])


def test_every_traffic_record_carries_a_route53_health_check_without_airflow(local_clouds):
    """Only the emulators run (no scheduler, triggerer or worker): the records ``ensure_baseline`` writes each
    carry their region's health check with the catalogue's timing, which is what Route 53 fails over on alone."""
    assert not [name for name in local_clouds.table.names() if name.startswith("airflow")]
    catalogue = catalogue_in_fresh_zone()
    traffic = Route53Traffic(catalogue)
    traffic.ensure_baseline()

    checks = traffic.health_check_ids()
    names = {catalogue.dns.record, catalogue.dns.latency_record, catalogue.dns.failover_record}
    records = [
        record
        for record in traffic.client.list_resource_record_sets(HostedZoneId=traffic.zone_id)["ResourceRecordSets"]
        if record["Name"].rstrip(".") in names
    ]
    assert len(records) == 2 * len(catalogue.regions) + 2  # weighted and latency per region, PRIMARY and SECONDARY
    assert all(record["HealthCheckId"] in checks.values() for record in records), records
    assert {record["TTL"] for record in records} == {catalogue.dns.ttl}
    for check_id in checks.values():
        config = traffic.client.get_health_check(HealthCheckId=check_id)["HealthCheck"]["HealthCheckConfig"]
        assert (config["RequestInterval"], config["FailureThreshold"]) == (
            catalogue.dns.health_check_interval,
            catalogue.dns.health_check_failure_threshold,
        )
