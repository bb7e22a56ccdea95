"""Wait for a Route 53 change to propagate, deferred: the triggers poll and wait, the sensor holds no worker.

A change is propagated when Route 53 reports it ``INSYNC`` on all its name servers and, after that, one
record TTL has passed, so resolvers' cached answers from before the change have expired. The first wait is
the amazon provider's waiter trigger on boto3's ``resource_record_sets_changed`` waiter, the second the
standard provider's ``TimeDeltaTrigger``.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

from airflow.providers.amazon.aws.hooks.base_aws import AwsGenericHook
from airflow.providers.amazon.aws.triggers.base import AwsBaseWaiterTrigger
from airflow.providers.standard.triggers.temporal import TimeDeltaTrigger
from airflow.sdk import BaseSensorOperator
from airflow.sdk.exceptions import AirflowException

NO_CHANGE = (None, "", "None")  # "None": a templated XCom of a call that changed nothing


class Route53ChangeInsyncTrigger(AwsBaseWaiterTrigger):
    """Fire when Route 53 reports change ``change_id`` INSYNC, polling every ``waiter_delay`` seconds.

    The event is ``{"status": "success" | "error", "change_id": ..., "message": ...}`` (``message`` on error:
    the change failed, or was still not INSYNC after ``waiter_max_attempts`` polls).
    """

    aws_hook_class = AwsGenericHook

    def __init__(
        self,
        *,
        change_id: str,
        aws_conn_id: str | None,
        waiter_delay: float = 5,
        waiter_max_attempts: int = 120,
    ):
        super().__init__(
            serialized_fields={"change_id": change_id},
            waiter_name="resource_record_sets_changed",
            waiter_args={"Id": change_id},
            failure_message=f"cannot read Route 53 change {change_id!r}",
            status_message=f"Route 53 change {change_id!r} is",
            status_queries=["ChangeInfo.Status"],
            return_key="change_id",
            return_value=change_id,
            waiter_delay=waiter_delay,
            waiter_max_attempts=waiter_max_attempts,
            aws_conn_id=aws_conn_id,
        )

    @property
    def _hook_parameters(self) -> dict[str, Any]:
        return {**super()._hook_parameters, "client_type": "route53"}


class DnsPropagationSensor(BaseSensorOperator):
    """Wait, deferred, until Route 53 change ``change_id`` has propagated (INSYNC plus one TTL).

    An empty ``change_id`` (the traffic call changed nothing) returns at once. ``poke_interval`` is how often
    the change is polled and ``timeout`` how long it may take to be INSYNC; the credentials are those of the
    Airflow connection ``aws_conn_id``.
    """

    template_fields = ("change_id", "aws_conn_id", "ttl_seconds")

    def __init__(
        self,
        *,
        change_id: str | None,
        aws_conn_id: str,
        ttl_seconds: float = 60,
        poke_interval: float = 5,
        timeout: float = 600,
        **kwargs: Any,
    ):
        super().__init__(poke_interval=poke_interval, timeout=timeout, **kwargs)
        self.change_id = change_id
        self.aws_conn_id = aws_conn_id
        self.ttl_seconds = ttl_seconds

    def execute(self, context) -> None:
        if self.change_id in NO_CHANGE:
            self.log.info("No Route 53 change to wait for")
            return
        self.defer(
            trigger=Route53ChangeInsyncTrigger(
                change_id=self.change_id,
                aws_conn_id=self.aws_conn_id,
                waiter_delay=self.poke_interval,
                waiter_max_attempts=max(1, math.ceil(self.timeout / self.poke_interval)),
            ),
            method_name="wait_one_ttl",
        )

    def wait_one_ttl(self, context, event: dict[str, Any]) -> None:
        """The change is INSYNC: wait one TTL, deferred. Fails naming the change if it never got INSYNC."""
        if event["status"] != "success":
            raise AirflowException(
                f"Route 53 change {self.change_id!r} not INSYNC (polled every {self.poke_interval:g}s for up to "
                f"{self.timeout:g}s): {event['message']}"
            )
        ttl = float(self.ttl_seconds)
        self.log.info("Route 53 change %s INSYNC; waiting one TTL (%gs)", self.change_id, ttl)
        self.defer(trigger=TimeDeltaTrigger(timedelta(seconds=ttl)), method_name="execute_complete")

    def execute_complete(self, context, event: Any = None) -> None:
        """One TTL has passed since the change was INSYNC."""
        self.log.info("Route 53 change %s propagated", self.change_id)
