"""Used CPU and memory of the catalogue's workloads, for right-sizing.

A workload with ``utilisation: serving_metrics`` is sampled from its region's serving endpoint: ``/metrics``
is read twice, ``window_seconds`` apart; used CPU is the growth of ``process_cpu_seconds_total`` over that
time, used memory the larger ``process_resident_memory_bytes`` of the two reads. Behind a load balancer the
two reads may reach different replicas, so one sample is one replica's use, not an average. A workload whose
endpoint does not answer gets no figure (and no recommendation), never a zero. ``/metrics`` needs the serving
service's bearer token: the password of the region's ``connections.serving`` connection.
"""

from __future__ import annotations

import logging
import time

import httpx

from include.catalogue import Catalogue, Region
from include.health.probes import metric_samples

log = logging.getLogger(__name__)

PROCESS_METRICS = ("process_cpu_seconds_total", "process_resident_memory_bytes")


def serving_token(region: Region) -> str | None:
    """The bearer token of ``region``'s serving endpoint: its ``connections.serving`` password; None without the
    connection, or when it is not defined (logged: the read then fails with 401 and the workload gets no figure)."""
    if region.connections.serving is None:
        return None
    from airflow.sdk.bases.hook import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        return BaseHook.get_connection(region.connections.serving).password or None
    except AirflowNotFoundException as exc:
        log.warning("no serving token for %s: %s", region.name, exc)
        return None


def read_process_metrics(endpoint: str, token: str | None, timeout: float = 5.0) -> dict[str, float]:
    """``process_cpu_seconds_total`` and ``process_resident_memory_bytes`` from an endpoint's ``/metrics``,
    sending ``token`` as the bearer token.

    ``ValueError`` if either is missing; ``MetricsFormatError`` (a ``ValueError``) if the answer is not
    Prometheus text.
    """
    url = endpoint.rstrip("/") + "/metrics"
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    answer = httpx.get(url, timeout=timeout, headers=headers)
    answer.raise_for_status()
    found = {sample.name: sample.value for sample in metric_samples(answer.text, url) if sample.name in PROCESS_METRICS}
    if len(found) != len(PROCESS_METRICS):
        missing = " and ".join(name for name in PROCESS_METRICS if name not in found)
        raise ValueError(f"{url} has no {missing}")
    return found


def sample_workloads(catalogue: Catalogue, window_seconds: float = 10.0) -> dict[str, dict]:
    """Used CPU cores and memory GiB per replica, keyed ``"<workload>@<region>"``, for every sampled workload."""
    workloads = [w for w in (catalogue.cost.workloads if catalogue.cost else []) if w.utilisation]
    first: dict[str, tuple[float, dict[str, float]]] = {}
    tokens: dict[str, str | None] = {}
    for workload in workloads:
        region = catalogue.region(workload.region)
        try:
            if region.name not in tokens:
                tokens[region.name] = serving_token(region)
            sample = read_process_metrics(region.serving_endpoint, tokens[region.name])
            first[f"{workload.name}@{workload.region}"] = (time.monotonic(), sample)
        except (httpx.HTTPError, ValueError) as error:
            log.warning("no utilisation for %s in %s: %s", workload.name, workload.region, error)
    if first:
        time.sleep(window_seconds)
    used: dict[str, dict] = {}
    for workload in workloads:
        key = f"{workload.name}@{workload.region}"
        if key not in first:
            continue
        started, before = first[key]
        try:
            after = read_process_metrics(catalogue.region(workload.region).serving_endpoint, tokens[workload.region])
        except (httpx.HTTPError, ValueError) as error:
            log.warning("no utilisation for %s in %s: %s", workload.name, workload.region, error)
            continue
        elapsed = time.monotonic() - started
        cpu = max(0.0, after["process_cpu_seconds_total"] - before["process_cpu_seconds_total"]) / elapsed
        memory = max(after["process_resident_memory_bytes"], before["process_resident_memory_bytes"]) / 2**30
        used[key] = {"cpu_cores": round(cpu, 4), "memory_gib": round(memory, 4), "window_seconds": round(elapsed, 1)}
    return used
