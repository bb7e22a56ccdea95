"""Region health: watch every region continuously and fail over automatically when one fails.

Each run defers ``watch_regions`` to the triggerer, which probes all regions from every vantage point every
``health.probe_interval_seconds`` and ends the watch as soon as a region changes state (or after
``health.watch_seconds``). ``record_observations`` persists the states and transitions, with their evidence,
and the branch then runs the failover strategy of each UNHEALTHY region (automatic, graceful or immediate,
from the catalogue) or the gradual failback of each RECOVERING one. ``@continuous``: the next run starts
when this one ends, so some run is always watching.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import dag, get_current_context, task
from failover_airflow.health import RegionHealthSensor
from failover_airflow.traffic import FailoverNotifier, add_traffic_moves

from include.catalogue import load_catalogue
from include.dag_defaults import START_DATE, default_args

CATALOGUE = load_catalogue()  # a local file: no network at parse time


@dag(
    dag_id="region_health",
    schedule="@continuous",
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    is_paused_upon_creation=True,  # `make demo` unpauses it once every region serves
    tags=["failover", "health"],
    doc_md=__doc__,
    default_args=default_args(retries=2, retry_delay=timedelta(seconds=5), max_retry_delay=timedelta(seconds=30)),
)
def region_health():
    watch = RegionHealthSensor(task_id="watch_regions")

    @task(multiple_outputs=False, on_success_callback=FailoverNotifier())
    def record_observations(event: dict) -> dict:
        """Persist the watch's states and transitions; list the moves they ask for."""
        from include.failover.store import FailoverStore
        from include.failover.watch import record_observations

        catalogue = load_catalogue()
        store = FailoverStore.from_connection(catalogue.replication.state_connection)
        return record_observations(catalogue, store, event, get_current_context()["run_id"])

    add_traffic_moves(record_observations(watch.output), CATALOGUE.dns.connection, CATALOGUE.dns.ttl)


region_health()
