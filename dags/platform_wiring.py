"""Wiring check: in every region, write, read back and SHA-256 a small object through the provider's hook.

Run it after pointing the platform at new clouds or connections. Each region is probed by its own mapped
task (retried on transient errors); the ``report`` task then logs a reachability table and fails the run if
any region could not be reached.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import Param, dag, get_current_context, task
from airflow.task.trigger_rule import TriggerRule

from include.airflow.defaults import START_DATE, default_args
from include.catalogue import load_catalogue

REGION_NAMES = [region.name for region in load_catalogue().regions]  # a local file: no network at parse time


@dag(
    dag_id="platform_wiring",
    schedule=None,
    start_date=START_DATE,
    catchup=False,
    tags=["platform", "wiring"],
    doc_md=__doc__,
    default_args=default_args(retries=2, retry_delay=timedelta(seconds=5)),
    params={
        "regions": Param(
            [],
            type="array",
            items={"type": "string", "enum": REGION_NAMES},
            uniqueItems=True,
            title="Regions",
            description="Region names from the catalogue to check; leave empty to check all of them.",
        ),
    },
)
def platform_wiring():
    @task(retries=0)
    def select_regions(params: dict, dag=None, dag_run=None) -> list[str]:
        """The regions to probe (the form's enum keeps them to the catalogue's); a conf field not declared fails."""
        from include.airflow.failures import permanent_errors_fail_task
        from include.airflow.run_conf import check_conf_fields

        with permanent_errors_fail_task():
            check_conf_fields(dag_run.conf, dag.params)
        return params["regions"] or REGION_NAMES

    @task(multiple_outputs=False, map_index_template="{{ region_name }}")
    def probe(region_name: str) -> dict:
        from include.wiring import probe_region

        context = get_current_context()
        context["region_name"] = region_name
        result = probe_region(load_catalogue().region(region_name), run_id=context["run_id"])
        print(f"{region_name}: wrote and read back {result['size']} bytes, SHA-256 {result['sha256']}")
        return result

    @task(multiple_outputs=False, trigger_rule=TriggerRule.ALL_DONE_MIN_ONE_SUCCESS, retries=0)
    def report(region_names: list[str], results: list[dict]) -> dict:
        from airflow.sdk.exceptions import AirflowFailException

        from include.wiring import reachability_report

        table, unreachable = reachability_report(region_names, [r for r in results if r])
        print(table)
        if unreachable:
            raise AirflowFailException(f"unreachable regions: {', '.join(unreachable)}")
        return {"reachable": region_names, "unreachable": unreachable}

    region_names = select_regions()
    report(region_names, probe.expand(region_name=region_names))


platform_wiring()
