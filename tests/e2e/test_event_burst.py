"""Registry events lose nothing under a real scheduler: a burst of 100 events (distinct versions and duplicates),
the triggerer killed (SIGKILL) mid-burst and started again, events sent while the replication DAG is paused;
then every version is verified in every target, each (version, target) was copied by exactly one successful
``copy`` task across all runs, every run succeeded, the queue is empty (every message acknowledged), and a
claim left by a run that died was taken over.

The platform is the local one cut down to what replication needs: the emulated regions and queue (the
``local_clouds`` fixture) and Airflow's four components, with a DAG folder holding ``model_replication``
alone (the health, cost and other DAGs, and the serving processes, would only compete for the two cores).
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import time
import urllib.request
from collections import Counter
from datetime import UTC, datetime

import pytest

from include.airflow.assets import MODEL_EVENTS_ASSET
from include.catalogue import catalogue_path, load_catalogue
from include.clouds.objectstore import store_for
from include.replication.__main__ import registry_event, send_event
from include.replication.replicate import read_manifest, register_model_version
from include.replication.status import StatusStore
from localdev.airflow_local import (
    ADMIN_USER,
    AirflowSettings,
    airflow_env,
    component_commands,
    local_secrets,
    start_airflow,
)
from localdev.api import AirflowClient
from localdev.processes import ProcessTable, free_port
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.e2e

DAG_ID = "model_replication"
MODEL = "burst"
BURST_VERSIONS = 25  # distinct versions in the burst of 100 events; the other 75 events are duplicates
BURST_EVENTS = 100
PAUSED_VERSIONS = 10  # sent while the DAG is paused
SEND_INTERVAL = 0.1  # seconds between two events of the burst
DRAIN_TIMEOUT = 360
TRIGGERER = "airflow-triggerer"
DEAD_RUN = "asset_triggered__2026-01-01T00:00:00+00:00_dead"
FIRED = "Trigger fired event"  # the triggerer's log line of an event, with the messages it carries


def wait_for(condition, timeout: float, what: str, interval: float = 2):
    """Poll ``condition`` until it returns something truthy; return that."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := condition():
            return result
        time.sleep(interval)
    raise TimeoutError(f"{what}: not within {timeout:.0f} s")


def pages(client: AirflowClient, path: str, key: str) -> list[dict]:
    """Every entry of a paginated list endpoint of the REST API (at most 100 a page)."""
    entries: list[dict] = []
    while True:
        separator = "&" if "?" in path else "?"
        page = client.get(f"{path}{separator}limit=100&offset={len(entries)}")
        entries += page[key]
        if not page[key] or len(entries) >= page["total_entries"]:
            return entries


def watcher_events(client: AirflowClient) -> list[dict]:
    """The asset events the model-events watcher made (not the model-rollouts events ``verify`` emits)."""
    events = pages(client, "/api/v2/assets/events", "asset_events")
    return [event for event in events if event["name"] == MODEL_EVENTS_ASSET]


def set_paused(client: AirflowClient, paused: bool) -> None:
    """``PATCH /api/v2/dags/{dag_id}`` with ``is_paused``."""
    request = urllib.request.Request(
        f"{client.api_url}/api/v2/dags/{DAG_ID}?update_mask=is_paused",
        data=json.dumps({"is_paused": paused}).encode(),
        headers={"Authorization": f"Bearer {client.token}", "Content-Type": "application/json"},
        method="PATCH",
    )
    urllib.request.urlopen(request, timeout=30).close()


def queue_depth(catalogue) -> int:
    """Messages on the event queue, visible or received and not yet deleted."""
    from airflow.providers.amazon.aws.hooks.sqs import SqsHook

    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    client = SqsHook(aws_conn_id=catalogue.events.connection).conn
    attributes = client.get_queue_attributes(QueueUrl=catalogue.events.queue_url, AttributeNames=names)["Attributes"]
    return sum(int(attributes[name]) for name in names)


def kill_triggerer_on_reception(table: ProcessTable, log_from: int) -> set[str]:
    """SIGKILL the triggerer's process group as soon as its log, past offset ``log_from``, shows the watcher
    firing on a batch it received: the batch is in flight, not yet an asset event. Return the id of every
    message the killed triggerer had received."""
    log = table.log_file(TRIGGERER)
    wait_for(lambda: FIRED in log.read_text()[log_from:], timeout=120, what="the watcher receiving", interval=0.02)
    os.killpg(table.pid(TRIGGERER), signal.SIGKILL)
    wait_for(lambda: table.pid(TRIGGERER) is None, timeout=30, what="the killed triggerer gone", interval=0.2)
    return set(re.findall(r"MessageId\\?': \\?'([0-9a-f-]+)", log.read_text()))


def copied_pairs(client: AirflowClient) -> Counter:
    """(version, target) of every successful ``copy`` task instance of every run, from its map label."""
    copies = pages(client, f"/api/v2/dags/{DAG_ID}/dagRuns/~/taskInstances?task_id=copy", "task_instances")
    pairs: Counter = Counter()
    for ti in copies:
        if ti["state"] == "success":
            version, targets = re.fullmatch(rf"{MODEL}/(\S+) -> (.+)", ti["rendered_map_index"]).groups()
            pairs.update((version, target) for target in targets.split(", "))
    return pairs


def drained(client: AirflowClient, catalogue, status: StatusStore, expected: set[tuple[str, str]]) -> bool:
    """Every expected (version, target) verified, no run queued or running, nothing left on the queue."""
    verified = {(row.version, row.region) for row in status.rows(MODEL) if row.state == "verified"}
    if not expected <= verified:
        return False
    runs = pages(client, f"/api/v2/dags/{DAG_ID}/dagRuns", "dag_runs")
    return all(run["state"] in ("success", "failed") for run in runs) and queue_depth(catalogue) == 0


def test_burst_triggerer_restart_and_pause_lose_nothing_and_copy_once(local_clouds, tmp_path):
    catalogue = load_catalogue()
    source = catalogue.primary
    targets = [region.name for region in catalogue.regions if region.name != source.name]
    versions = [str(v) for v in range(1, BURST_VERSIONS + PAUSED_VERSIONS + 1)]
    burst, paused = versions[:BURST_VERSIONS], versions[BURST_VERSIONS:]
    manifests = [
        register_model_version(source, MODEL, version, {"weights.bin": f"{MODEL} {version}\n".encode()})
        for version in versions
    ]
    status = StatusStore.from_connection(catalogue.replication.state_connection)
    # A claim left by a run that died without releasing it (no such run exists): plan must take it over.
    stale = status.claim(MODEL, "1", targets[0], source.name, manifests[0].total_sha256, DEAD_RUN)
    assert stale.won
    rng = random.Random(7)
    burst_events = burst + rng.choices(burst, k=BURST_EVENTS - BURST_VERSIONS)
    rng.shuffle(burst_events)

    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "model_replication.py").symlink_to(REPO_ROOT / "dags" / "model_replication.py")
    settings = AirflowSettings(state_dir=tmp_path / "platform", api_port=free_port())
    env = airflow_env(settings, local_clouds.connections, catalogue_path().resolve())
    env["AIRFLOW__CORE__DAGS_FOLDER"] = str(dags)
    table = ProcessTable(settings.state_dir / "run", settings.state_dir / "logs")
    try:
        started = time.monotonic()
        start_airflow(table, settings, env)
        client = AirflowClient(settings.api_url, ADMIN_USER, local_secrets(settings.state_dir)["admin_password"])
        client.wait_for_dag(DAG_ID)
        print(f"\nAirflow up in {time.monotonic() - started:.1f} s")

        burst_started = time.monotonic()
        for sent, version in enumerate(burst_events, start=1):
            send_event(catalogue, registry_event(catalogue, MODEL, version, source.name))
            if sent == BURST_EVENTS // 2:
                received_by_killed = kill_triggerer_on_reception(table, table.log_file(TRIGGERER).stat().st_size)
                killed_at, killed_after = datetime.now(UTC), time.monotonic() - burst_started
                table.start(TRIGGERER, component_commands(settings)[TRIGGERER], env=env, cwd=settings.home)
            time.sleep(SEND_INTERVAL)
        print(f"burst: {BURST_EVENTS} events, {BURST_VERSIONS} distinct versions; triggerer killed "
              f"{killed_after:.1f} s in, right after receiving a batch, and started again")  # fmt: skip

        set_paused(client, True)
        for version in paused:
            send_event(catalogue, registry_event(catalogue, MODEL, version, source.name))
        time.sleep(15)  # the watcher is dropped at the DAG file's next parse; until then it still receives
        set_paused(client, False)
        unpaused = time.monotonic()
        print(f"paused: {PAUSED_VERSIONS} events sent while model_replication was paused, then unpaused")

        expected = {(version, target) for version in versions for target in targets}
        wait_for(lambda: drained(client, catalogue, status, expected), DRAIN_TIMEOUT, "every event replicated")
        print(f"drained {time.monotonic() - burst_started:.1f} s after the burst began, "
              f"{time.monotonic() - unpaused:.1f} s after unpausing")  # fmt: skip

        runs = pages(client, f"/api/v2/dags/{DAG_ID}/dagRuns", "dag_runs")
        asset_events = watcher_events(client)
        received = Counter(
            message["MessageId"] for event in asset_events for message in event["extra"]["payload"]["message_batch"]
        )
        copies = copied_pairs(client)
        recorded_before_kill = {
            message["MessageId"]
            for event in asset_events
            if datetime.fromisoformat(event["timestamp"]) < killed_at
            for message in event["extra"]["payload"]["message_batch"]
        }
        in_flight = received_by_killed - recorded_before_kill
        print(f"in flight when the triggerer was killed: {len(in_flight)} message(s) received, not yet recorded")
        print(f"runs: {len(runs)}; asset events: {len(asset_events)}; messages: {len(received)}, "
              f"{sum(n > 1 for n in received.values())} received more than once; copy task instances "
              f"succeeded for {sum(copies.values())} (version, target) pairs")  # fmt: skip

        assert in_flight, "the kill was to catch a received batch before it became an asset event"
        assert in_flight <= set(received), "a message in flight at the kill never came back"
        assert len(received) == BURST_EVENTS + PAUSED_VERSIONS  # every message sent reached a run
        assert [run for run in runs if run["state"] != "success"] == []
        assert copies == Counter(dict.fromkeys(expected, 1)), "a pair copied twice, or never"
        assert DEAD_RUN not in {row.run_id for row in status.rows(MODEL)}, "the dead run's claim was not taken over"
        for version in versions:
            for target in targets:
                assert read_manifest(store_for(catalogue.region(target)), MODEL, version) is not None
    finally:
        table.stop_all()
