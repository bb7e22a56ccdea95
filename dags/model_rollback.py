"""Model rollback: point one region, or every region, back at an earlier version of a model.

The version must be a finished replica in each region named (its manifest there, every file at its verified
size and checksum); every region is checked before any pointer moves, so a refused rollback changes nothing.
Serving in each region then loads that version, verifies it (checksums and signature) beside the one it
serves, and switches. Until a version registered after the rollback is verified, replication leaves the
pointer where the rollback put it. ``POST /api/v2/dags/model_rollback/dagRuns`` with
``{"conf": {"model": "iris-classifier", "version": "1", "regions": [], "reason": "v2 misclassifies"}}``;
the same move without Airflow: ``python -m include.replication rollback --model M --version V``.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import Param, dag, get_current_context, task

from include.airflow.assets import MODEL_ROLLOUTS
from include.airflow.defaults import START_DATE, default_args
from include.catalogue import load_catalogue
from include.replication.requests import MODEL_NAME_RULES, VERSION_RULES

CATALOGUE = load_catalogue()  # a local file: no network at parse time


@dag(
    dag_id="model_rollback",
    schedule=None,
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    tags=["models", "operations"],
    doc_md=__doc__,
    default_args=default_args(retries=1, retry_delay=timedelta(seconds=10)),
    params={
        "model": Param(type="string", **MODEL_NAME_RULES, title="Model", description="e.g. iris-classifier"),
        "version": Param(
            type="string",
            **VERSION_RULES,
            title="Version",
            description="The version to serve again: a finished replica in every region named.",
        ),
        "regions": Param(
            [],
            type="array",
            items={"type": "string", "enum": [region.name for region in CATALOGUE.regions]},
            uniqueItems=True,
            title="Regions",
            description="Leave empty to roll back every region.",
        ),
        "reason": Param(
            type="string", minLength=3, maxLength=500, title="Reason", description="Why; kept in the rollout pointer."
        ),
    },
)
def model_rollback():
    @task(multiple_outputs=False, outlets=[MODEL_ROLLOUTS])
    def roll_back() -> list[dict]:
        """Check the version in every region named, then move their rollout pointers to it."""
        from dataclasses import asdict

        from include.airflow.failures import permanent_errors_fail_task
        from include.airflow.run_conf import check_conf_fields
        from include.clouds.objectstore import store_for
        from include.replication.rollout import rollback

        context = get_current_context()
        params = context["params"]
        catalogue = load_catalogue()
        regions = [catalogue.region(name) for name in params["regions"]] or list(catalogue.regions)
        reason = f"{params['reason']} (rollback by {context['run_id']})"
        with permanent_errors_fail_task():
            check_conf_fields(context["dag_run"].conf, context["dag"].params)
            pointers = rollback([store_for(r) for r in regions], params["model"], str(params["version"]), reason)
        context["outlet_events"][MODEL_ROLLOUTS].extra = {
            "model": params["model"],
            "version": str(params["version"]),
            "regions": [region.name for region in regions],
            "set_by": "rollback",
        }
        for region, pointer in zip(regions, pointers, strict=True):
            print(f"{region.name}: {pointer.model} points at version {pointer.version}")
        return [{"region": region.name, **asdict(pointer)} for region, pointer in zip(regions, pointers, strict=True)]

    roll_back()


model_rollback()
