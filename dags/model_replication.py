"""Model replication: copy a model version to every other region, verify it by SHA-256, then publish it.

Started three ways:

- the trigger form (model, version, source region, targets; targets default to every other region);
- the REST API, ``POST /api/v2/dags/model_replication/dagRuns`` with
  ``{"conf": {"model": "fraud-detector", "version": "3", "source_region": "aws-us-west-2"}}``;
- model-registry events on the SQS queue of the catalogue (MLflow ``model_version.created``, SageMaker
  "Model Package State Change" with ``Approved``), through an asset with an ``AssetWatcher``.

No event is lost and none replicates twice: the watcher leaves each message on the queue, ``plan`` claims each
(version, region) in the status table (one run wins a claim) and only then deletes the run's messages; a
message not deleted by then is delivered again after the queue's visibility timeout, and its run finds the
claims taken. ``summary`` releases what its run claimed but did not verify. See docs/replication.md, Events.

``copy`` and ``verify`` are mapped over model versions, each with its target regions. A replica is visible in
its region only after ``verify`` has checked every file against the manifest; ``verify`` then moves the rollout
pointer of each region it published to (and of the source), so serving there switches to the new version, and
records the move as an event of the ``model-rollouts`` asset.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import Param, dag, get_current_context, task
from airflow.task.trigger_rule import TriggerRule

from include.airflow.assets import MODEL_ROLLOUTS, model_events_asset
from include.airflow.defaults import REPLICATION_POOL, START_DATE, default_args
from include.airflow.failures import permanent_errors_fail_task
from include.catalogue import load_catalogue
from include.replication.requests import MODEL_NAME_RULES, VERSION_RULES

CATALOGUE = load_catalogue()  # a local file: no network at parse time
REGION_NAMES = [region.name for region in CATALOGUE.regions]
MODEL_EVENTS = model_events_asset(CATALOGUE)


def _run_step(step: str, *args, item: dict | None = None):
    """Run ``include.replication.pipeline.<step>(catalogue, *args, run_id)`` for the current task instance.

    Failures of an item are recorded in the status store; bad input fails at once, without retries.
    """
    from include.errors import PermanentError
    from include.replication import pipeline

    context = get_current_context()
    catalogue = load_catalogue()
    if item is not None:
        context["replica_label"] = pipeline.label(item)
    with permanent_errors_fail_task():
        try:
            return getattr(pipeline, step)(catalogue, *args, context["run_id"])
        except Exception as exc:
            if item is not None:
                final = isinstance(exc, PermanentError) or context["ti"].try_number > context["task"].retries
                pipeline.record_failure(catalogue, item, context["run_id"], exc, final=final)
            raise


@dag(
    dag_id="model_replication",
    schedule=[MODEL_EVENTS] if MODEL_EVENTS else None,
    start_date=START_DATE,
    catchup=False,
    max_active_runs=4,
    tags=["replication", "models"],
    doc_md=__doc__,
    default_args=default_args(retries=3, retry_delay=timedelta(seconds=10)),
    params={
        "model": Param(
            None,
            type=["null", "string"],
            **MODEL_NAME_RULES,
            title="Model",
            description="Registered model name, e.g. fraud-detector. Required for a manual run.",
        ),
        "version": Param(
            None,
            type=["null", "string"],
            **VERSION_RULES,
            title="Version",
            description="Model version, e.g. 3. Required for a manual run.",
        ),
        "source_region": Param(
            CATALOGUE.primary.name,
            type="string",
            enum=REGION_NAMES,
            title="Source region",
            description="Where the version was registered.",
        ),
        "targets": Param(
            [],
            type="array",
            items={"type": "string", "enum": REGION_NAMES},
            uniqueItems=True,
            title="Target regions",
            description="Leave empty for every region except the source.",
        ),
    },
)
def model_replication():
    @task(multiple_outputs=False, retries=1)
    def plan() -> list[dict]:
        """Read the request (conf or registry events), claim the (version, target) pairs still to do, then
        acknowledge the events."""
        import functools

        from include.airflow.assets import queue_messages

        context = get_current_context()
        # The form's fields arrive validated through params; anything else in the conf (a typo such as
        # "modle") is passed on, so that the request parser refuses it by name.
        fields = ("model", "version", "source_region", "targets")
        extra = {k: v for k, v in (context["dag_run"].conf or {}).items() if k not in fields}
        conf = {name: context["params"].get(name) for name in fields} | extra
        ti = context["ti"]

        @functools.cache
        def run_is_active(run_id: str) -> bool:
            """Whether the run of this DAG that holds a claim is still queued or running."""
            return ti.get_dr_count(dag_id=ti.dag_id, run_ids=[run_id], states=["queued", "running"]) > 0

        return _run_step("plan", conf, queue_messages(context["triggering_asset_events"]), run_is_active)

    @task(
        multiple_outputs=False,
        map_index_template="{{ replica_label }}",
        pool=REPLICATION_POOL,
        execution_timeout=timedelta(hours=2),
    )
    def copy(item: dict) -> dict:
        """Stream the version's files to their final keys in every target, one read of the source feeding all,
        hashed in the same pass and checked by each store's checksums (still no replica: no manifest yet)."""
        return _run_step("copy", item, item=item)

    @task(
        multiple_outputs=False,
        map_index_template="{{ replica_label }}",
        execution_timeout=timedelta(hours=2),
        outlets=[MODEL_ROLLOUTS],
    )
    def verify(item: dict) -> dict:
        """Check every file (read back where the region says so), write the manifest last, move the rollout pointers."""
        result = _run_step("verify", item, item=item)
        get_current_context()["outlet_events"][MODEL_ROLLOUTS].extra = {
            "model": result["model"],
            "version": result["version"],
            "regions": result["rollouts"],
            "set_by": "replication",
        }
        return result

    @task(multiple_outputs=False, trigger_rule=TriggerRule.ALL_DONE, retries=0)
    def summary(verified: list[dict]) -> dict:
        """Release this run's claims it did not finish, log the replication status of its versions; fail if
        any was rejected or not verified."""
        from airflow.sdk.exceptions import AirflowFailException

        from include.replication.status import StatusStore, format_table

        context = get_current_context()
        store = StatusStore.from_connection(load_catalogue().replication.state_connection)
        run_id = context["run_id"]
        released = store.release_claims(run_id, f"run {run_id} ended before verifying it; free to claim again")
        if released:
            print(f"released {len(released)} claim(s) this run did not finish")
        if context["ti"].xcom_pull(task_ids="plan") is None:
            raise AirflowFailException("plan did not succeed: see its log for the request that was refused")
        rows = [row for row in store.rows() if row.run_id == run_id]
        print(format_table(rows) if rows else "nothing to replicate in this run")
        failed = [f"{r.model}/{r.version} -> {r.region}" for r in rows if r.state != "verified"]
        if failed:
            raise AirflowFailException(f"not verified: {', '.join(failed)} (see the table above)")
        return {"verified": [f"{r.model}/{r.version} -> {r.region}" for r in rows]}

    planned = plan()
    # summary runs whatever happened upstream (ALL_DONE), also when nothing was mapped, and reads plan's result.
    planned >> summary(verify.expand(item=copy.expand(item=planned)))


model_replication()
