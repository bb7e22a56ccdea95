"""The deferrable wait for Route 53 propagation: the trigger against moto, the sensor's defer and resume."""

from __future__ import annotations

import asyncio
import importlib
import time

import pytest
from airflow.sdk.exceptions import AirflowException, TaskDeferred

from include.airflow.dns_propagation import DnsPropagationSensor, DnsPropagationTrigger
from include.clouds.route53 import Route53Traffic
from tests.integration.dns_zone import catalogue_in_fresh_zone


async def events_of(trigger: DnsPropagationTrigger) -> list:
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
def test_trigger_waits_for_insync_then_one_ttl(change_id):
    change, conn_id = change_id
    trigger = DnsPropagationTrigger(change_id=change, aws_conn_id=conn_id, ttl_seconds=1, poll_interval=0.1)

    started = time.monotonic()
    events = asyncio.run(events_of(trigger))
    elapsed = time.monotonic() - started

    assert len(events) == 1
    payload = events[0].payload
    assert payload["status"] == "success" and payload["change_id"] == change
    assert payload["waited_ttl_seconds"] == 1
    assert 0 <= payload["insync_after_seconds"] < 5  # moto reports every change INSYNC at once
    assert 1 <= elapsed < 1 + payload["insync_after_seconds"] + 1


@pytest.mark.integration
def test_a_bad_change_id_gives_an_error_event_naming_it(local_clouds, change_id):
    _, conn_id = change_id
    trigger = DnsPropagationTrigger(change_id="/change/", aws_conn_id=conn_id, ttl_seconds=1)

    (event,) = asyncio.run(events_of(trigger))

    assert event.payload["status"] == "error"
    assert "'/change/'" in event.payload["message"] and "Invalid length for parameter Id" in event.payload["message"]


@pytest.mark.integration
def test_not_insync_in_time_gives_an_error_event(change_id):
    change, conn_id = change_id
    trigger = DnsPropagationTrigger(change_id=change, aws_conn_id=conn_id, ttl_seconds=1, timeout_seconds=0)

    (event,) = asyncio.run(events_of(trigger))

    assert event.payload == {
        "status": "error",
        "change_id": change,
        "message": f"Route 53 change {change!r} not INSYNC after 0s",
    }


def test_trigger_serializes_to_an_importable_classpath():
    trigger = DnsPropagationTrigger(
        change_id="/change/C1", aws_conn_id="aws_route53", ttl_seconds=60, poll_interval=2, timeout_seconds=30
    )

    classpath, kwargs = trigger.serialize()

    module, name = classpath.rsplit(".", 1)
    assert classpath == "include.airflow.dns_propagation.DnsPropagationTrigger"
    assert getattr(importlib.import_module(module), name)(**kwargs).serialize() == (classpath, kwargs)


@pytest.mark.parametrize("nothing", [None, "", "None"])
def test_sensor_with_no_change_returns_at_once(nothing):
    sensor = DnsPropagationSensor(task_id="wait_dns", change_id=nothing, aws_conn_id="aws_route53")

    assert sensor.execute({}) is None


def test_sensor_defers_to_the_trigger():
    sensor = DnsPropagationSensor(
        task_id="wait_dns", change_id="/change/C1", aws_conn_id="aws_route53", ttl_seconds="45", poke_interval=3
    )

    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute({})

    assert deferred.value.method_name == "execute_complete"
    assert deferred.value.trigger.serialize()[1] == {
        "change_id": "/change/C1",
        "aws_conn_id": "aws_route53",
        "ttl_seconds": 45.0,
        "poll_interval": 3.0,
        "timeout_seconds": 600.0,
    }
    assert set(DnsPropagationSensor.template_fields) == {"change_id", "aws_conn_id", "ttl_seconds"}


def test_sensor_resumes_with_the_event_or_fails_with_its_message():
    sensor = DnsPropagationSensor(task_id="wait_dns", change_id="/change/C1", aws_conn_id="aws_route53")
    success = {"status": "success", "change_id": "/change/C1", "insync_after_seconds": 0.2, "waited_ttl_seconds": 60}

    assert sensor.execute_complete({}, success) == success
    with pytest.raises(AirflowException, match="change '/change/C1' not INSYNC"):
        sensor.execute_complete(
            {}, {"status": "error", "change_id": "/change/C1", "message": "change '/change/C1' not INSYNC"}
        )
