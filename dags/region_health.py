"""Region health: watch every region continuously; when one fails or recovers, request the traffic move.

Each run defers ``watch_regions`` to the triggerer, which probes all regions from every vantage point every
``health.probe_interval_seconds`` and ends the watch as soon as a region changes state (or after
``health.watch_seconds``). ``record_observations`` persists the states and transitions, with their evidence,
and sends each transition to the notifier. If a state asks for a move (an UNHEALTHY region to fail over, a
RECOVERING one to fail back), the branch takes ``request_moves``, which updates the ``failover-moves`` asset:
the ``failover_moves`` DAG then makes the moves with each region's strategy, while the next run of this one
is already watching. ``@continuous``: a new run starts as soon as one ends, so the regions are always watched.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import dag, get_current_context, task

from include.airflow.assets import FAILOVER_MOVES
from include.airflow.defaults import START_DATE, default_args
from include.airflow.health import RegionHealthSensor
from include.airflow.traffic import FailoverNotifier


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
        from include.catalogue import load_catalogue
        from include.failover.store import FailoverStore
        from include.failover.watch import record_observations

        catalogue = load_catalogue()
        store = FailoverStore.from_connection(catalogue.replication.state_connection)
        return record_observations(catalogue, store, event, get_current_context()["run_id"])

    @task.branch
    def choose(observed: dict) -> str:
        """``request_moves`` if a state asks for a move, else ``no_move``."""
        return "request_moves" if observed["actions"] else "no_move"

    @task(outlets=[FAILOVER_MOVES])
    def request_moves(observed: dict) -> None:
        """Update the failover-moves asset (its extra lists the moves, for the record)."""
        get_current_context()["outlet_events"][FAILOVER_MOVES].extra = {"actions": observed["actions"]}

    observed = record_observations(watch.output)
    choose(observed) >> [request_moves(observed), EmptyOperator(task_id="no_move")]


region_health()
