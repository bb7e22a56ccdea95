"""Failover moves: fail over the UNHEALTHY regions and fail back the RECOVERING ones, with their strategies.

Started by the ``failover-moves`` asset, which the health DAG updates when a state asks for a move; several
requests may start one run. ``list_moves`` reads the persisted states (the requests only wake it up), so a
move is never made twice, and the branch runs the strategy of each region from the catalogue:

- ``automatic_failover``: warm up the receivers, move all of the region's weight in one Route 53 change, then
  ``wait_for_dns_propagation`` (the change INSYNC, then the TTL), deferred;
- ``graceful_failover``: warm up, then drain 100 -> 75 -> 50 -> 25 -> 0, deferring between steps and pausing
  while the receivers are degraded;
- ``immediate_failover``: one change, no warm-up, no waiting;
- ``failback``: the weight back up in steps, checking the region before each.

One run at a time, so moves never interleave; the last healthy region is never drained and the circuit
breaker limits failovers per hour (``include/failover/traffic.py``).
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import dag, task

from include.airflow.assets import FAILOVER_MOVES
from include.airflow.defaults import START_DATE, default_args
from include.airflow.traffic import add_traffic_moves
from include.catalogue import load_catalogue

CATALOGUE = load_catalogue()  # a local file: no network at parse time


@dag(
    dag_id="failover_moves",
    schedule=[FAILOVER_MOVES],
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    tags=["failover"],
    doc_md=__doc__,
    default_args=default_args(retries=1, retry_delay=timedelta(seconds=10)),
)
def failover_moves():
    @task(multiple_outputs=False)
    def list_moves() -> dict:
        """The moves the persisted states ask for now."""
        from include.failover.store import FailoverStore
        from include.failover.watch import moves_due

        catalogue = load_catalogue()
        return moves_due(catalogue, FailoverStore.from_connection(catalogue.replication.state_connection))

    add_traffic_moves(list_moves(), CATALOGUE.dns.connection, CATALOGUE.dns.ttl)


failover_moves()
