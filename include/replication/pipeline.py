"""The steps of the replication DAG, as plain functions of the catalogue (the DAG file only wires them).

``plan`` turns a run's input (its ``conf``, or the registry events that started it) into one item per model
version, naming the target regions still to do; ``copy`` and ``verify`` handle one item each and record the
status of each of its targets. ``verify`` also moves the rollout pointer (``include.replication.rollout``) of
every region it published to, and of the source region.
"""

from __future__ import annotations

import logging
from datetime import datetime

from include.catalogue import Catalogue
from include.clouds.objectstore import store_for
from include.errors import InvalidRequest, SourceMissing
from include.replication.replicate import (
    Replica,
    copy_to_staging,
    load_source_manifest,
    read_manifest,
    settings_of,
    verify_and_publish,
)
from include.replication.requests import ReplicationRequest, from_conf, from_registry_event, merge_requests
from include.replication.rollout import promote
from include.replication.status import StatusStore

log = logging.getLogger(__name__)

# Each run maps copy and verify over model versions; keep well under Airflow's max_map_length.
MAX_ITEMS_PER_RUN = 256


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


def plan(catalogue: Catalogue, conf: dict, event_bodies: list[str], run_id: str) -> list[dict]:
    """One item per model version with targets still to replicate, each target recorded as ``pending``.

    A target that already holds the same manifest is left alone, so duplicate events copy nothing. A request
    whose source is missing is rejected at once (recorded ``failed``, no copy attempted); the others go ahead.
    """
    status = StatusStore.from_connection(catalogue.replication.state_connection)
    items = []
    for request in requests_of_run(catalogue, conf, event_bodies):
        try:
            manifest = load_source_manifest(catalogue.region(request.source_region), request.model, request.version)
        except SourceMissing as exc:
            log.error("rejected %s/%s: %s", request.model, request.version, exc)
            for target in request.targets:
                status.record(request.model, request.version, target, request.source_region, "failed",
                              run_id=run_id, message=str(exc))  # fmt: skip
            continue
        targets = []
        for target in request.targets:
            existing = read_manifest(store_for(catalogue.region(target)), request.model, request.version)
            if existing is not None and existing.total_sha256 == manifest.total_sha256:
                log.info("%s/%s is already replicated to %s: nothing to do", request.model, request.version, target)
                continue
            targets.append(target)
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
    if len(items) > MAX_ITEMS_PER_RUN:
        raise InvalidRequest(f"{len(items)} model versions in one run; at most {MAX_ITEMS_PER_RUN} are mapped per run")
    for item in items:
        for target in item["targets"]:
            status.record(
                item["model"],
                item["version"],
                target,
                item["source_region"],
                "pending",
                event_time=datetime.fromisoformat(item["event_time"]) if item["event_time"] else None,
                run_id=run_id,
            )
    log.info("planned %d replica(s): %s", len(items), [label(i) for i in items])
    return items


def label(item: dict) -> str:
    return f"{item['model']}/{item['version']} -> {', '.join(item['targets'])}"


def _replica(catalogue: Catalogue, item: dict, target: str) -> Replica:
    source = catalogue.region(item["source_region"])
    manifest = load_source_manifest(source, item["model"], item["version"])
    return Replica(manifest, store_for(source), store_for(catalogue.region(target)))


def copy(catalogue: Catalogue, item: dict, run_id: str) -> dict:
    """Stream the version's files into each target's staging area; returns the item plus what was staged."""
    status = StatusStore.from_connection(catalogue.replication.state_connection)
    staged = {}
    for target in item["targets"]:
        status.record(item["model"], item["version"], target, item["source_region"], "copying", run_id=run_id)
        result = copy_to_staging(_replica(catalogue, item, target), settings_of(catalogue))
        log.info("%s -> %s: staged %s, already published %s", item["model"], target, result["staged"],
                 result["skipped"])  # fmt: skip
        staged[target] = result["staged"]
    return {**item, "staged": staged}


def verify(catalogue: Catalogue, item: dict, run_id: str) -> dict:
    """Check every staged file, publish, record each target ``verified`` and move the rollout pointers.

    Returns the item with ``rollouts``: the regions whose pointer now names this version.
    """
    status = StatusStore.from_connection(catalogue.replication.state_connection)
    rollouts = []
    for target in item["targets"]:
        replica = _replica(catalogue, item, target)
        result = verify_and_publish(replica, item["staged"][target], settings_of(catalogue))
        status.record(item["model"], item["version"], target, item["source_region"], "verified",
                      sha256=result["sha256"], size=result["bytes"], run_id=run_id)  # fmt: skip
        if promote(replica.target, replica.manifest, reason=f"verified by {run_id}"):
            rollouts.append(target)
    if promote(replica.source, replica.manifest, reason=f"registered; replicated by {run_id}"):
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
