"""The deferrable wait for Route 53 propagation: the waiter trigger against moto, the sensor's two deferrals."""

from __future__ import annotations

import asyncio
import importlib
import time

import pytest
from airflow.providers.standard.triggers.temporal import DateTimeTrigger
from airflow.sdk import timezone
from airflow.sdk.exceptions import AirflowException, TaskDeferred
from botocore.exceptions import WaiterError

from include.airflow.dns_propagation import DnsPropagationSensor, Route53ChangeInsyncTrigger
from include.clouds.route53 import Route53Traffic
from tests.integration.dns_zone import catalogue_in_fresh_zone


async def events_of(trigger) -> list:
    return [event async for event in trigger.run()]


@pytest.fixture(scope="module")
def change_id(local_clouds) -> tuple[str, str]:
    """A real change: the primary drained in a zone of this module's own. Returns (change id, connection)."""
    catalogue = catalogue_in_fresh_zone()
    traffic = Route53Traffic(catalogue)
    traffic.ensure_baseline()
    names = [region.name for region in catalogue.regions]
    change = traffic.apply({names[0]: 0}, set(names[1:]))
    assert change
    return change, catalogue.dns.connection


@pytest.mark.integration
def test_trigger_fires_once_the_change_is_insync(change_id):
    change, conn_id = change_id
    trigger = Route53ChangeInsyncTrigger(change_id=change, aws_conn_id=conn_id, waiter_delay=0.1)

    (event,) = asyncio.run(events_of(trigger))

    assert event.payload == {"status": "success", "change_id": change}  # moto reports every change INSYNC at once


@pytest.mark.integration
def test_a_change_never_insync_gives_an_error_event_naming_it(change_id, monkeypatch):
    """Route 53 answering PENDING at every poll: after the last attempt, an error event, not an exception."""
    change, conn_id = change_id

    class PendingWaiter:
        async def wait(self, **kwargs):
            raise WaiterError(
                "ResourceRecordSetsChanged", "Max attempts exceeded", {"ChangeInfo": {"Status": "PENDING"}}
            )

    monkeypatch.setattr(
        "airflow.providers.amazon.aws.hooks.base_aws.AwsGenericHook.get_waiter", lambda *a, **k: PendingWaiter()
    )
    trigger = Route53ChangeInsyncTrigger(
        change_id=change, aws_conn_id=conn_id, waiter_delay=0.05, waiter_max_attempts=3
    )

    started = time.monotonic()
    (event,) = asyncio.run(events_of(trigger))

    assert event.payload == {"status": "error", "change_id": change, "message": "Waiter error: max attempts reached"}
    assert time.monotonic() - started >= 2 * 0.05  # three polls, two delays between them


@pytest.mark.integration
def test_sensor_waits_for_insync_then_one_ttl(change_id):
    """The whole wait, both deferrals run for real: INSYNC on moto, then the TTL in the time trigger."""
    change, conn_id = change_id
    sensor = DnsPropagationSensor(
        task_id="wait_dns", change_id=change, aws_conn_id=conn_id, ttl_seconds=1, poke_interval=0.1
    )

    with pytest.raises(TaskDeferred) as insync:
        sensor.execute({})
    (event,) = asyncio.run(events_of(insync.value.trigger))
    started = time.monotonic()
    with pytest.raises(TaskDeferred) as ttl:
        getattr(sensor, insync.value.method_name)({}, event.payload)
    asyncio.run(events_of(ttl.value.trigger))

    assert 0.9 <= time.monotonic() - started < 3
    assert getattr(sensor, ttl.value.method_name)({}, None) is None


def test_trigger_serializes_to_an_importable_classpath():
    trigger = Route53ChangeInsyncTrigger(
        change_id="/change/C1", aws_conn_id="aws_route53", waiter_delay=2, waiter_max_attempts=15
    )

    classpath, kwargs = trigger.serialize()

    module, name = classpath.rsplit(".", 1)
    assert classpath == "include.airflow.dns_propagation.Route53ChangeInsyncTrigger"
    assert kwargs == {
        "change_id": "/change/C1",
        "aws_conn_id": "aws_route53",
        "waiter_delay": 2,
        "waiter_max_attempts": 15,
    }
    assert getattr(importlib.import_module(module), name)(**kwargs).serialize() == (classpath, kwargs)


def test_trigger_talks_to_route53_through_the_airflow_connection():
    hook = Route53ChangeInsyncTrigger(change_id="/change/C1", aws_conn_id="aws_route53").hook()

    assert (hook.aws_conn_id, hook.client_type) == ("aws_route53", "route53")


@pytest.mark.parametrize("nothing", [None, "", "None"])
def test_sensor_with_no_change_returns_at_once(nothing):
    sensor = DnsPropagationSensor(task_id="wait_dns", change_id=nothing, aws_conn_id="aws_route53")

    assert sensor.execute({}) is None


def test_sensor_defers_to_the_waiter_trigger():
    sensor = DnsPropagationSensor(
        task_id="wait_dns", change_id="/change/C1", aws_conn_id="aws_route53", poke_interval=3, timeout=100
    )

    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute({})

    assert deferred.value.method_name == "wait_one_ttl"
    assert deferred.value.trigger.serialize() == (
        "include.airflow.dns_propagation.Route53ChangeInsyncTrigger",
        {"change_id": "/change/C1", "aws_conn_id": "aws_route53", "waiter_delay": 3.0, "waiter_max_attempts": 34},
    )
    assert set(DnsPropagationSensor.template_fields) == {"change_id", "aws_conn_id", "ttl_seconds"}


def test_sensor_waits_one_ttl_once_insync():
    sensor = DnsPropagationSensor(
        task_id="wait_dns", change_id="/change/C1", aws_conn_id="aws_route53", ttl_seconds="45"
    )

    with pytest.raises(TaskDeferred) as deferred:
        sensor.wait_one_ttl({}, {"status": "success", "change_id": "/change/C1"})

    assert deferred.value.method_name == "execute_complete"
    assert isinstance(deferred.value.trigger, DateTimeTrigger)
    assert 44 < (deferred.value.trigger.moment - timezone.utcnow()).total_seconds() <= 45


def test_sensor_fails_naming_the_change_when_it_is_not_insync_in_time():
    sensor = DnsPropagationSensor(
        task_id="wait_dns", change_id="/change/C1", aws_conn_id="aws_route53", poke_interval=2, timeout=30
    )
    error = {"status": "error", "change_id": "/change/C1", "message": "Waiter error: max attempts reached"}

    with pytest.raises(AirflowException) as failed:
        sensor.wait_one_ttl({}, error)

    assert str(failed.value) == (
        "Route 53 change '/change/C1' not INSYNC (polled every 2s for up to 30s): Waiter error: max attempts reached"
    )
