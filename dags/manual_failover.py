"""Manual failover and failback: an operator moves one region's traffic from the trigger form or the API.

A manual failover uses the chosen strategy and holds the region out (no automatic failback) until a manual
failback brings it back, gradually. The same safety rules apply as to automatic moves: the last healthy
region is never drained, and the circuit breaker refuses a failover past its hourly limit unless the operator
overrides it. ``POST /api/v2/dags/manual_failover/dagRuns`` with
``{"conf": {"region": "aws-us-west-2", "action": "failover", "strategy": "graceful", "reason": "maintenance"}}``.

Every move waits for a person's approval (``approve_move``, human-in-the-loop: Required Actions in the UI, or
``PATCH .../taskInstances/approve_move/-1/hitlDetails``), holding no worker or pool slot while it waits. After
``failover.approval_timeout_seconds`` with no answer, ``failover.approval_default`` applies. ``apply_approval``
lets an approved move through with its approval record, or drops a rejected one with an alert.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.providers.standard.operators.hitl import HITLOperator
from airflow.sdk import Param, dag, get_current_context, task

from include.airflow.defaults import START_DATE, default_args
from include.airflow.traffic import FailoverNotifier, add_traffic_moves
from include.catalogue import load_catalogue
from include.failover.approval import OPTIONS

CATALOGUE = load_catalogue()  # a local file: no network at parse time


@dag(
    dag_id="manual_failover",
    schedule=None,
    start_date=START_DATE,
    catchup=False,
    max_active_runs=1,
    tags=["failover", "operations"],
    doc_md=__doc__,
    default_args=default_args(retries=1, retry_delay=timedelta(seconds=10)),
    params={
        "region": Param(
            CATALOGUE.primary.name,
            type="string",
            enum=[region.name for region in CATALOGUE.regions],
            title="Region",
            description="The region whose traffic moves.",
        ),
        "action": Param(
            "failover",
            type="string",
            enum=["failover", "failback"],
            title="Action",
            description="failover: drain the region; failback: bring it back gradually.",
        ),
        "strategy": Param(
            "graceful",
            type="string",
            enum=["automatic", "graceful", "immediate"],
            title="Strategy (failover)",
            description="automatic: one DNS change, then wait for propagation; graceful: weighted drain in "
            "steps; immediate: emergency switch. A failback is always gradual.",
        ),
        "reason": Param(
            type="string",
            minLength=3,
            maxLength=500,
            title="Reason",
            description="Why; logged with the transition and sent with the alert.",
        ),
        "override_circuit_breaker": Param(
            False,
            type="boolean",
            title="Override the circuit breaker",
            description="Fail over even if the hourly failover limit is reached.",
        ),
    },
)
def manual_failover():
    @task(multiple_outputs=False, on_success_callback=FailoverNotifier())
    def check_move() -> dict:
        """Check the requested move against the region's state; list it for the strategy branch."""
        from include.airflow.failures import permanent_errors_fail_task
        from include.airflow.run_conf import check_conf_fields
        from include.failover.store import FailoverStore
        from include.failover.watch import manual_move

        context = get_current_context()
        with permanent_errors_fail_task():
            check_conf_fields(context["dag_run"].conf, context["dag"].params)
        catalogue = load_catalogue()
        store = FailoverStore.from_connection(catalogue.replication.state_connection)
        return manual_move(catalogue, store, dict(context["params"]), context["run_id"])

    @task.short_circuit(ignore_downstream_trigger_rules=False, multiple_outputs=True)
    def ask_approval(listed: dict) -> dict:
        """The approval's subject and body; with no move to approve, skip ``approve_move``."""
        from include.failover.approval import approval_request
        from include.failover.store import FailoverStore

        if not listed["actions"]:
            return {}
        catalogue = load_catalogue()
        store = FailoverStore.from_connection(catalogue.replication.state_connection)
        return approval_request(catalogue, store, listed["actions"][0])

    @task(trigger_rule="none_failed", multiple_outputs=False, on_success_callback=FailoverNotifier())
    def apply_approval(listed: dict, answer: dict | None) -> dict:
        """The moves the approval lets through, each with its approval record; alerts for a rejection."""
        from include.failover import approval

        return approval.apply_approval(listed, answer, get_current_context()["run_id"])

    listed = check_move()
    request = ask_approval(listed)
    approve_move = HITLOperator(
        task_id="approve_move",
        subject=request["subject"],
        body=request["body"],
        options=list(OPTIONS.values()),
        defaults=OPTIONS[CATALOGUE.failover.approval_default],
        response_timeout=timedelta(seconds=CATALOGUE.failover.approval_timeout_seconds),
    )
    decided = apply_approval(listed, approve_move.output)
    add_traffic_moves(decided, CATALOGUE.dns.connection, CATALOGUE.dns.ttl)


manual_failover()
