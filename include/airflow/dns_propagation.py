"""Wait for a Route 53 change to propagate, deferred: the trigger polls the change, the sensor holds no worker.

A change is propagated when Route 53 reports it ``INSYNC`` on all its name servers and, after that, one
record TTL has passed, so resolvers' cached answers from before the change have expired.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.providers.amazon.aws.hooks.base_aws import AwsGenericHook
from airflow.sdk import BaseSensorOperator
from airflow.sdk.exceptions import AirflowException
from airflow.triggers.base import BaseTrigger, TriggerEvent

NO_CHANGE = (None, "", "None")  # "None": a templated XCom of a call that changed nothing


class DnsPropagationTrigger(BaseTrigger):
    """Poll ``get_change`` until the change is INSYNC, then wait one TTL; fire ``success`` or ``error``."""

    def __init__(
        self,
        *,
        change_id: str,
        aws_conn_id: str,
        ttl_seconds: float,
        poll_interval: float = 5,
        timeout_seconds: float = 600,
    ):
        super().__init__()
        self.change_id = change_id
        self.aws_conn_id = aws_conn_id
        self.ttl_seconds = ttl_seconds
        self.poll_interval = poll_interval
        self.timeout_seconds = timeout_seconds

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            "include.airflow.dns_propagation.DnsPropagationTrigger",
            {
                "change_id": self.change_id,
                "aws_conn_id": self.aws_conn_id,
                "ttl_seconds": self.ttl_seconds,
                "poll_interval": self.poll_interval,
                "timeout_seconds": self.timeout_seconds,
            },
        )

    async def _wait_insync(self) -> None:
        hook = AwsGenericHook(aws_conn_id=self.aws_conn_id, client_type="route53")
        async with await hook.get_async_conn() as client:
            while (await client.get_change(Id=self.change_id))["ChangeInfo"]["Status"] != "INSYNC":
                await asyncio.sleep(self.poll_interval)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        started = time.monotonic()
        try:
            async with asyncio.timeout(self.timeout_seconds):
                await self._wait_insync()
        except TimeoutError:
            message = f"Route 53 change {self.change_id!r} not INSYNC after {self.timeout_seconds:g}s"
            yield TriggerEvent({"status": "error", "change_id": self.change_id, "message": message})
            return
        except Exception as exc:  # any failure must reach the task as an event naming the change
            message = f"cannot read Route 53 change {self.change_id!r}: {type(exc).__name__}: {exc}"
            yield TriggerEvent({"status": "error", "change_id": self.change_id, "message": message})
            return
        insync_after = time.monotonic() - started
        self.log.info(
            "Route 53 change %s INSYNC after %.1fs; waiting one TTL (%ss)",
            self.change_id,
            insync_after,
            self.ttl_seconds,
        )
        await asyncio.sleep(self.ttl_seconds)
        yield TriggerEvent(
            {
                "status": "success",
                "change_id": self.change_id,
                "insync_after_seconds": round(insync_after, 3),
                "waited_ttl_seconds": self.ttl_seconds,
            }
        )


class DnsPropagationSensor(BaseSensorOperator):
    """Wait, deferred, until Route 53 change ``change_id`` has propagated (INSYNC plus one TTL).

    An empty ``change_id`` (the traffic call changed nothing) returns at once. ``poke_interval`` is how often
    the trigger polls and ``timeout`` how long it waits for INSYNC.
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
            trigger=DnsPropagationTrigger(
                change_id=self.change_id,
                aws_conn_id=self.aws_conn_id,
                ttl_seconds=float(self.ttl_seconds),
                poll_interval=self.poke_interval,
                timeout_seconds=self.timeout,
            ),
            method_name="execute_complete",
        )

    def execute_complete(self, context, event: dict[str, Any]) -> dict[str, Any]:
        if event["status"] != "success":
            raise AirflowException(event["message"])
        self.log.info("Route 53 change %s propagated", event["change_id"])
        return event
