"""Failover moves: fail over the UNHEALTHY regions and fail back the RECOVERING ones, with their strategies.

The health watch (``RegionHealthWatcher``, an asset watcher in the triggerer, on while this DAG is unpaused)
probes every region every ``health.probe_interval_seconds`` and persists what it sees. The moment a region
turns UNHEALTHY with the ``automatic`` or ``immediate`` strategy it switches DNS away itself, then reports;
each report is an event of the ``region-health`` asset, and this DAG runs on it (several reports may start
one run). ``list_moves`` alerts on the reports and reads the persisted states (the reports only wake it up),
so a move is never made twice, and the branch runs the strategy of each region from the catalogue:

- ``automatic_failover``: warm up and check the receivers, move all of the region's weight in one Route 53
  change (already made by the watch: then nothing changes), record FAILOVER, then
  ``wait_for_dns_propagation`` (the change INSYNC, then the TTL), deferred;
- ``graceful_failover``: warm up, then drain 100 -> 75 -> 50 -> 25 -> 0, deferring between steps and pausing
  while the receivers are degraded;
- ``immediate_failover``: no warm-up, no waiting (the watch made the change; this records it);
- ``failback``: the weight back up in steps, checking the region before each.

Every DNS change takes the state database's traffic lock (and these tasks the one-slot ``mlp_dns_moves``
pool), so moves never undo each other; the last healthy region is never drained and the circuit breaker
limits failovers per hour (``include/failover/traffic.py``). A run still going
``failover.move_budget_seconds`` after it was queued raises a ``deadline_missed`` alert (a DeadlineAlert,
``include/airflow/deadlines.py``). Pause this DAG to turn automatic failover off.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import dag, get_current_context, task

from include.airflow.assets import region_health_asset
from include.airflow.deadlines import move_deadline
from include.airflow.defaults import START_DATE, default_args
from include.airflow.traffic import FailoverNotifier, add_traffic_moves
from include.catalogue import catalogue_path, load_catalogue

CATALOGUE = load_catalogue()  # a local file: no network at parse time


@dag(
    dag_id="failover_moves",
    schedule=[region_health_asset(str(catalogue_path().resolve()))],
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    is_paused_upon_creation=True,  # `make demo` unpauses it once every region serves
    tags=["failover", "health"],
    doc_md=__doc__,
    default_args=default_args(retries=1, retry_delay=timedelta(seconds=10)),
    deadline=move_deadline(CATALOGUE),  # an alert when a run is still going past failover.move_budget_seconds
)
def failover_moves():
    @task(multiple_outputs=False, on_success_callback=FailoverNotifier())
    def list_moves() -> dict:
        """Alert on the watch's reports; list the moves the persisted states ask for now."""
        from include.airflow.assets import watch_reports_of
        from include.failover.store import FailoverStore
        from include.failover.watch import moves_due

        context = get_current_context()
        catalogue = load_catalogue()
        store = FailoverStore.from_connection(catalogue.replication.state_connection)
        reports = watch_reports_of(context["triggering_asset_events"])
        return moves_due(catalogue, store, reports, context["run_id"])

    add_traffic_moves(list_moves(), CATALOGUE.dns.connection, CATALOGUE.dns.ttl)


failover_moves()
