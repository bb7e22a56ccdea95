"""The steps of the replication DAG, as plain functions of the catalogue (the DAG file only wires them).

``plan`` turns a run's input (its ``conf``, or the registry events that started it) into one item per model
version, naming the target regions this run claimed, and only then acknowledges the events; ``copy`` and
``verify`` handle one item each and record the status of each of its targets. ``verify`` also moves the
rollout pointer (``include.replication.rollout``) of every region it published to, and of the source region.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from include.catalogue import Catalogue
from include.clouds.objectstore import ObjectStore, store_for
from include.errors import InvalidRequest, SourceMissing
from include.replication.events import acknowledge
from include.replication.manifest import Manifest
from include.replication.replicate import (
    Replica,
    copy_version,
    load_source_manifest,
    read_manifest,
    settings_of,
    verify_and_publish,
)
from include.replication.requests import ReplicationRequest, from_conf, from_registry_event, merge_requests
from include.replication.rollout import promote
from include.replication.status import StatusStore

log = logging.getLogger(__name__)

# A run takes at most this many event messages, each asking for one model version, so it maps copy and
# verify over at most this many items (well under Airflow's max_map_length); the rest stay on the queue.
MAX_EVENTS_PER_RUN = 256


def requests_of_run(catalogue: Catalogue, conf: dict, event_bodies: list[str]) -> list[ReplicationRequest]:
    """The requests of one run: from registry events if it was started by them, else from its conf.

    An event that cannot be understood is logged and skipped, so one bad message does not hold back the
    others in the batch; a bad conf fails the run, naming the field.
    """
    if not event_bodies:
        return [from_conf(catalogue, {k: v for k, v in conf.items() if v not in (None, "", [])})]
    requests = []
    for body in event_bodies:
        try:
            request = from_registry_event(catalogue, body)
        except InvalidRequest as exc:
            log.error("skipped a registry event: %s; body: %.500s", exc, body)
            continue
        if request is None:
            log.info("ignored a registry event that asks for no replication: %.200s", body)
        else:
            requests.append(request)
    merged = merge_requests(requests)
    if len(merged) < len(requests):
        log.info("%d duplicate event(s) merged", len(requests) - len(merged))
    return merged


def plan(
    catalogue: Catalogue, conf: dict, messages: list[dict], run_is_active: Callable[[str], bool], run_id: str
) -> list[dict]:
    """One item per model version with the targets this run claimed, then the run's event messages deleted.

    ``messages`` are the SQS messages that started the run (none for a run from its conf). Each target is
    claimed in the status table (``pending``, held by ``run_id``) before any message is acknowledged, so a
    request is on record before it leaves the queue. A target that already holds the same manifest is left
    alone, and so is one another run holds for the same content (``run_is_active`` tells whether that run is
    still going; a finished run's hold is taken over), so duplicate and redelivered events copy nothing. A
    request whose source is missing is rejected at once (recorded ``failed``); the others go ahead. Messages
    beyond ``MAX_EVENTS_PER_RUN`` are left on the queue for a later run.
    """
    status = StatusStore.from_connection(catalogue.replication.state_connection)
    stores = {region.name: store_for(region) for region in catalogue.regions}  # one client each, not one a check
    taken, left = messages[:MAX_EVENTS_PER_RUN], messages[MAX_EVENTS_PER_RUN:]
    if left:
        log.warning("%d event(s) left on the queue for a later run: a run takes %d", len(left), MAX_EVENTS_PER_RUN)
    items = []
    for request in requests_of_run(catalogue, conf, [message["Body"] for message in taken]):
        try:
            targets = _claim_targets(catalogue, stores, status, request, run_is_active, run_id)
        except SourceMissing as exc:
            log.error("rejected %s/%s: %s", request.model, request.version, exc)
            for target in request.targets:
                status.record(request.model, request.version, target, request.source_region, "failed",
                              run_id=run_id, message=str(exc))  # fmt: skip
            continue
        if targets:
            items.append(
                {
                    "model": request.model,
                    "version": request.version,
                    "source_region": request.source_region,
                    "targets": targets,
                    "event_time": request.event_time,
                }
            )
    if taken:
        acknowledge(catalogue, catalogue.events.queue_url, taken)
    log.info("planned %d replica(s): %s", len(items), [label(i) for i in items])
    return items


def _claim_targets(
    catalogue: Catalogue,
    stores: dict[str, ObjectStore],
    status: StatusStore,
    request: ReplicationRequest,
    run_is_active: Callable[[str], bool],
    run_id: str,
) -> list[str]:
    """The targets of ``request`` this run claimed; ``SourceMissing`` if the source lacks the version.

    The source's manifest is read first; the files it lists are checked (``load_source_manifest``) only once a
    target is claimed, so that an event for a version already replicated or claimed costs one read.
    """
    source = catalogue.region(request.source_region)
    # No manifest: load_source_manifest raises SourceMissing, naming the manifest it looked for.
    manifest = read_manifest(stores[source.name], request.model, request.version) or load_source_manifest(
        source, request.model, request.version
    )
    targets = [
        target
        for target in request.targets
        if _claim_target(stores[target], status, request, target, manifest, run_is_active, run_id)
    ]
    if targets:
        load_source_manifest(source, request.model, request.version)  # every listed file there, at its size
    return targets


def _claim_target(
    store: ObjectStore,
    status: StatusStore,
    request: ReplicationRequest,
    target: str,
    manifest: Manifest,
    run_is_active: Callable[[str], bool],
    run_id: str,
) -> bool:
    """Whether this run is to replicate ``request`` to ``target`` (whose object store is ``store``): the target
    lacks the manifest and the run holds its claim, won outright or taken over from a run that is over or
    whose verified copy has gone."""
    what = f"{request.model}/{request.version} -> {target}"
    if _holds_manifest(store, manifest):
        log.info("%s is already replicated: nothing to do", what)
        return False
    event_time = datetime.fromisoformat(request.event_time) if request.event_time else None
    claim = status.claim(request.model, request.version, target, request.source_region, manifest.total_sha256,
                         run_id, event_time=event_time)  # fmt: skip
    holder = claim.row
    if not claim.won:
        stale = (
            not _holds_manifest(store, manifest)  # a verified copy has gone since
            if holder.state == "verified"
            else holder.run_id is None or not run_is_active(holder.run_id)  # its run ended, not releasing it
        )
        if stale:
            log.warning("%s: taking over from run %s (%s, no longer going on)", what, holder.run_id, holder.state)
            claim = status.claim(request.model, request.version, target, request.source_region,
                                 manifest.total_sha256, run_id, event_time=event_time, replacing=holder)  # fmt: skip
    if not claim.won:
        log.info("%s is %s by run %s: nothing to do", what, claim.row.state, claim.row.run_id)
    return claim.won


def _holds_manifest(store: ObjectStore, manifest: Manifest) -> bool:
    """Whether ``store`` holds a finished replica of ``manifest`` (the same manifest total)."""
    existing = read_manifest(store, manifest.model, manifest.version)
    return existing is not None and existing.total_sha256 == manifest.total_sha256


def label(item: dict) -> str:
    return f"{item['model']}/{item['version']} -> {', '.join(item['targets'])}"


def _replicas(catalogue: Catalogue, item: dict) -> list[Replica]:
    """The item's version from its source to each of its targets, in the order of ``targets``."""
    source = catalogue.region(item["source_region"])
    manifest = load_source_manifest(source, item["model"], item["version"])
    source_store = store_for(source)
    return [Replica(manifest, source_store, store_for(catalogue.region(target))) for target in item["targets"]]


def copy(catalogue: Catalogue, item: dict, run_id: str) -> dict:
    """Stream the version's files to their final keys in every target, one read of the source feeding all;
    returns the item plus, per target, the files copied (the version is not a replica before ``verify``)."""
    status = StatusStore.from_connection(catalogue.replication.state_connection)
    for target in item["targets"]:
        status.record(item["model"], item["version"], target, item["source_region"], "copying", run_id=run_id)
    results = copy_version(_replicas(catalogue, item), settings_of(catalogue))
    for target, result in results.items():
        log.info("%s -> %s: copied %s, already published %s", item["model"], target, result["copied"],
                 result["skipped"])  # fmt: skip
    return {**item, "copied": {target: result["copied"] for target, result in results.items()}}


def verify(catalogue: Catalogue, item: dict, run_id: str) -> dict:
    """Check every file in each target (read back where the region says ``read_back``), publish the manifest,
    record each target ``verified`` and move the rollout pointers.

    Returns the item with ``rollouts``: the regions whose pointer now names this version.
    """
    status = StatusStore.from_connection(catalogue.replication.state_connection)
    rollouts = []
    replicas = _replicas(catalogue, item)
    for target, replica in zip(item["targets"], replicas, strict=True):
        result = verify_and_publish(replica, settings_of(catalogue))
        status.record(item["model"], item["version"], target, item["source_region"], "verified",
                      sha256=result["sha256"], size=result["bytes"], run_id=run_id)  # fmt: skip
        if promote(replica.target, replica.manifest, reason=f"verified by {run_id}"):
            rollouts.append(target)
    if promote(replicas[0].source, replicas[0].manifest, reason=f"registered; replicated by {run_id}"):
        rollouts.append(item["source_region"])
    return {**item, "rollouts": rollouts}


def record_failure(catalogue: Catalogue, item: dict, run_id: str, error: BaseException, final: bool) -> None:
    """Record a failed attempt for each target this run has not verified: ``failed`` when no retry follows,
    else still ``copying`` with the reason."""
    message = f"{type(error).__name__}: {error}"
    status = StatusStore.from_connection(catalogue.replication.state_connection)
    done = {row.region for row in status.rows(item["model"], item["version"])
            if row.state == "verified" and row.run_id == run_id}  # fmt: skip
    for target in item["targets"]:
        if target in done:
            continue
        status.record(
            item["model"],
            item["version"],
            target,
            item["source_region"],
            "failed" if final else "copying",
            run_id=run_id,
            message=message if final else f"attempt failed, retrying: {message}",
        )
