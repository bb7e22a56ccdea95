"""Every Airflow asset of the platform, and how to read the events they carry.

``model_events_asset``: model-registry events; an ``AssetWatcher`` long-polls the SQS queue in the triggerer.
Each batch of messages the watcher receives becomes one asset event whose ``extra.payload.message_batch``
holds the SQS messages; a DAG scheduled on the asset gets every event queued since its last run. This watcher
leaves the messages on the queue (hidden for its visibility timeout): the replication DAG deletes them once
it has recorded them (``include.replication.events``), so a triggerer killed after receiving loses nothing.

``replica_reports_asset``: serving's reports of corrupt replicas (``include.replication.reports``), watched on
the catalogue's reports queue the same way; the replica_repair DAG runs on it and deletes what it recorded.

``region_health_asset``: the health watch's reports (``extra.payload``: transitions, DNS switches, refusals,
moves due), fired by ``RegionHealthWatcher`` in the triggerer; the failover_moves DAG runs on it.

``MODEL_ROLLOUTS``: a region's rollout pointer moved (``extra``: model, version, region, set_by); written by
the replication DAG after it verified a version in a region, and by the rollback DAG.
"""

from __future__ import annotations

from airflow.sdk import Asset, AssetWatcher

from include.catalogue import Catalogue

# A plain name, no URI scheme: a scheme makes Airflow load every provider's URI handlers at parse time
# (about 0.7 s here).
MODEL_EVENTS_ASSET = "model-registry-events"
REPLICA_REPORTS_ASSET = "replica-reports"
REGION_HEALTH_ASSET = "region-health"
MODEL_ROLLOUTS = Asset(name="model-rollouts")


def model_events_asset(catalogue: Catalogue) -> Asset | None:
    """The asset fed by the catalogue's event queue, or None when the catalogue names no queue."""
    if catalogue.events is None:
        return None
    watcher = _queue_watcher("model_registry_queue", catalogue.events.queue_url, catalogue.events.connection)
    return Asset(name=MODEL_EVENTS_ASSET, watchers=[watcher])


def replica_reports_asset(catalogue: Catalogue) -> Asset | None:
    """The asset fed by the catalogue's reports queue, or None when the catalogue names none."""
    if catalogue.events is None or catalogue.events.reports_queue_url is None:
        return None
    watcher = _queue_watcher("replica_reports_queue", catalogue.events.reports_queue_url, catalogue.events.connection)
    return Asset(name=REPLICA_REPORTS_ASSET, watchers=[watcher])


def region_health_asset(catalogue_path: str) -> Asset:
    """The asset the health watch feeds; ``catalogue_path`` is the catalogue file the watch reads."""
    from include.airflow.health import RegionHealthWatcher

    watcher = AssetWatcher(name="region_health_watch", trigger=RegionHealthWatcher(catalogue_path))
    return Asset(name=REGION_HEALTH_ASSET, watchers=[watcher])


def _queue_watcher(name: str, queue_url: str, connection: str) -> AssetWatcher:
    """A watcher that long-polls an SQS queue in the triggerer, leaving each message on the queue: the DAG
    deletes it once it has recorded it (``include.replication.events.acknowledge``)."""
    from airflow.providers.amazon.aws.triggers.sqs import SqsSensorTrigger

    trigger = SqsSensorTrigger(
        sqs_queue=queue_url,
        aws_conn_id=connection,
        max_messages=10,
        num_batches=1,
        wait_time_seconds=10,  # long polling: an event is seen within a second of arriving
        waiter_delay=1,
        delete_message_on_reception=False,
    )
    return AssetWatcher(name=name, trigger=trigger)


def queue_messages(triggering_asset_events) -> list[dict]:
    """The distinct SQS messages carried by the asset events that started a run (several events per run), in
    the order first received.

    A message received more than once (delivered again after its visibility timeout) is listed once, with the
    receipt handle of its latest reception, the one SQS deletes it by.
    """
    latest: dict[str, dict] = {}
    for event in _oldest_first(triggering_asset_events):
        payload = (event.extra or {}).get("payload") or {}
        for message in payload.get("message_batch", []):
            latest[message["MessageId"]] = message  # keeps its first position, takes the latest reception
    return list(latest.values())


def watch_reports_of(triggering_asset_events) -> list[dict]:
    """The health watch's reports carried by the asset events that started a run, oldest first."""
    return [(event.extra or {}).get("payload") or {} for event in _oldest_first(triggering_asset_events)]


def _oldest_first(triggering_asset_events) -> list:
    return sorted((event for events in triggering_asset_events.values() for event in events),
                  key=lambda event: event.timestamp)  # fmt: skip
