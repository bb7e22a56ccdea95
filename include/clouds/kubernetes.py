"""The Kubernetes side of region health and failover warm-up: probe a region's cluster, scale its serving deployment.

Both go through the cncf-kubernetes provider's hooks, so the cluster and its credentials come from the region's
Airflow connection (``connections.kubernetes`` in the catalogue; ``in_cluster``, ``kube_config_path`` or
``kube_config`` in its extra):

- ``probe_cluster`` reads the API server's ``/readyz``, the nodes' ``Ready`` conditions and the serving
  deployment's replicas concurrently through ``AsyncKubernetesHook``, within a time limit, and never raises: a
  cluster that cannot be read is a ``ClusterHealth`` with ``error`` set.
- ``scale_for_warmup`` raises the serving deployment's replicas through ``KubernetesHook`` (the ``scale``
  subresource, never lowering them) and waits until that many are available, or raises ``WarmupError``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import asdict, dataclass

from airflow.providers.cncf.kubernetes.hooks.kubernetes import AsyncKubernetesHook, KubernetesHook
from airflow.providers.common.compat.connection import get_async_connection, get_async_extra_dejson
from kubernetes.client import AppsV1Api, V1Deployment
from kubernetes.client.exceptions import ApiException
from kubernetes_asyncio import client as async_client
from kubernetes_asyncio.client.exceptions import ApiException as AsyncApiException
from urllib3.exceptions import HTTPError

from include.errors import WarmupError

MIN_REQUEST_TIMEOUT = 0.1  # seconds; a request made right at the deadline still gets this long


@dataclass(frozen=True)
class ClusterHealth:
    """One look at a region's cluster: its API server, its nodes and the serving deployment's replicas.

    ``latency_ms`` is how long the probe took (its three reads run concurrently); ``error`` says what could not
    be read, if anything (the counts of what could not be read are 0).
    """

    api_ready: bool
    nodes_ready: int
    nodes_total: int
    available_replicas: int
    desired_replicas: int
    latency_ms: float
    error: str | None = None

    @property
    def healthy(self) -> bool:
        """The cluster can serve: API server ready, at least one node ready, at least one replica available."""
        return self.api_ready and self.nodes_ready >= 1 and self.available_replicas >= 1

    def degraded_reasons(self) -> list[str]:
        """What is short of full health: the API server, nodes not ready, replicas not available."""
        reasons = []
        if not self.api_ready:
            reasons.append("API server not ready")
        if self.nodes_ready < self.nodes_total or self.nodes_ready == 0:
            reasons.append(f"only {self.nodes_ready} of {self.nodes_total} nodes ready")
        if self.available_replicas < self.desired_replicas or self.available_replicas == 0:
            reasons.append(f"only {self.available_replicas} of {self.desired_replicas} replicas available")
        return reasons

    def as_dict(self) -> dict:
        """JSON-ready fields, with ``healthy``."""
        return {**asdict(self), "healthy": self.healthy}


async def probe_cluster(conn_id: str, namespace: str, deployment: str, timeout: float) -> ClusterHealth:
    """Read the health of the cluster behind connection ``conn_id`` within ``timeout`` seconds; never raises.

    Three concurrent reads: ``GET /readyz``, the nodes (``Ready`` condition) and ``namespace/deployment``
    (``spec.replicas`` against ``status.availableReplicas``). No retries: the next probe round is the retry.
    """
    loop = asyncio.get_running_loop()
    started = loop.time()
    deadline = started + timeout

    def elapsed_ms() -> float:
        return round((loop.time() - started) * 1000, 1)

    try:
        async with contextlib.AsyncExitStack() as stack:
            async with asyncio.timeout_at(deadline):
                # The extras are read here, asynchronously, and handed to the hook: the hook would read them
                # synchronously, which inside an async task can deadlock on the supervisor while another region's
                # connection lookup is in flight on the same event loop.
                connection = await get_async_connection(conn_id, hook=AsyncKubernetesHook)
                extras = await get_async_extra_dejson(connection)
                hook = AsyncKubernetesHook(conn_id=conn_id, connection_extras=extras)
                api = await stack.enter_async_context(hook.get_conn())
            reads = (_api_ready(api), _nodes(api), _replicas(api, namespace, deployment))
            readyz, nodes, serving = await asyncio.gather(
                *(asyncio.wait_for(read, deadline - loop.time()) for read in reads), return_exceptions=True
            )
    except TimeoutError:
        error = f"connection {conn_id!r}: no cluster configuration within {timeout:g}s"
        return ClusterHealth(False, 0, 0, 0, 0, elapsed_ms(), error)
    except Exception as exc:  # a missing connection, a bad kubeconfig: findings about the region, not crashes
        return ClusterHealth(False, 0, 0, 0, 0, elapsed_ms(), f"connection {conn_id!r}: {_describe(exc)}")

    errors = [
        f"{what}: " + (f"no answer within {timeout:g}s" if isinstance(result, TimeoutError) else _describe(result))
        for what, result in (("readyz", readyz), ("nodes", nodes), (f"deployment {namespace}/{deployment}", serving))
        if isinstance(result, BaseException)
    ]
    nodes_ready, nodes_total = (0, 0) if isinstance(nodes, BaseException) else nodes
    available, desired = (0, 0) if isinstance(serving, BaseException) else serving
    return ClusterHealth(
        api_ready=readyz is True,
        nodes_ready=nodes_ready,
        nodes_total=nodes_total,
        available_replicas=available,
        desired_replicas=desired,
        latency_ms=elapsed_ms(),
        error="; ".join(errors) or None,
    )


async def _api_ready(api: async_client.ApiClient) -> bool:
    """True when ``GET /readyz`` answers 200; False when it answers 500 (some readiness check fails)."""
    try:
        await api.call_api(
            "/readyz",
            "GET",
            auth_settings=["BearerToken"],
            response_types_map={200: "str"},
            _return_http_data_only=True,
        )
    except AsyncApiException as exc:
        if exc.status == 500:
            return False
        raise
    return True


async def _nodes(api: async_client.ApiClient) -> tuple[int, int]:
    """(nodes whose ``Ready`` condition is ``True``, all nodes)."""
    node_list = await async_client.CoreV1Api(api).list_node()
    ready = sum(
        any(c.type == "Ready" and c.status == "True" for c in (node.status.conditions or []))
        for node in node_list.items
    )
    return ready, len(node_list.items)


async def _replicas(api: async_client.ApiClient, namespace: str, deployment: str) -> tuple[int, int]:
    """(available replicas, desired replicas) of the deployment."""
    found = await async_client.AppsV1Api(api).read_namespaced_deployment(deployment, namespace)
    return _available(found), found.spec.replicas or 0


def _available(deployment: V1Deployment) -> int:
    # The API server leaves zero-valued status fields out: a missing availableReplicas is 0.
    return (deployment.status.available_replicas if deployment.status else None) or 0


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ApiException | AsyncApiException):
        described = f"HTTP {exc.status} {exc.reason}".rstrip()
        message = _status_message(exc.body)
        return f"{described}: {message}" if message else described
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _status_message(body: str | bytes | None) -> str | None:
    """The ``message`` of the API server's ``Status`` answer (e.g. which RBAC permission is missing), if any."""
    try:
        status = json.loads(body or "null")
    except ValueError:
        return None
    return status.get("message") if isinstance(status, dict) else None


def scale_for_warmup(
    conn_id: str, namespace: str, deployment: str, replicas: int, timeout: float, poll_interval: float = 1.0
) -> dict:
    """Scale ``namespace/deployment`` up to ``replicas`` (never down) and wait until that many are available.

    Uses the ``scale`` subresource with the resourceVersion it read, so a concurrent change (the HPA's) is never
    overwritten: on a conflict it reads again, and leaves the deployment alone once it has enough replicas.
    Transient API errors while waiting are retried until ``timeout`` seconds have passed. Returns the evidence
    (``before``, ``target``, ``scaled``, ``available``, ``seconds``); raises ``WarmupError`` naming the
    deployment, the connection and the API server when it fails or the replicas are not available in time.
    """
    started = time.monotonic()
    deadline = started + timeout
    try:
        apps = KubernetesHook(conn_id=conn_id).apps_v1_client  # loads the connection's cluster configuration
    except Exception as exc:  # a missing connection or a bad kubeconfig
        raise WarmupError(f"cannot scale deployment {namespace}/{deployment}: connection {conn_id!r}: {exc}") from exc
    where = f"deployment {namespace}/{deployment} (connection {conn_id!r}, {apps.api_client.configuration.host})"
    try:
        before, scaled = _scale_up(apps, namespace, deployment, replicas, deadline)
    except (ApiException, HTTPError) as exc:
        raise WarmupError(f"cannot scale {where} to {replicas} replicas: {_describe(exc)}") from exc

    available, last_error = 0, None
    while True:
        try:
            found = apps.read_namespaced_deployment(deployment, namespace, _request_timeout=_remaining(deadline))
            available, last_error = _available(found), None
        except ApiException as exc:
            if exc.status not in (429, 500, 502, 503, 504):
                raise WarmupError(f"cannot read {where}: {_describe(exc)}") from exc
            last_error = exc
        except HTTPError as exc:
            last_error = exc
        if available >= replicas:
            break
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            seen = f"; last read failed: {_describe(last_error)}" if last_error else ""
            raise WarmupError(
                f"{where}: only {available} of {replicas} replicas available after {timeout:g}s "
                f"(scaled from {before}){seen}"
            )
        time.sleep(min(poll_interval, remaining))
    return {
        "deployment": f"{namespace}/{deployment}",
        "before": before,
        "target": replicas,
        "scaled": scaled,
        "available": available,
        "seconds": round(time.monotonic() - started, 3),
    }


def _scale_up(apps: AppsV1Api, namespace: str, deployment: str, replicas: int, deadline: float) -> tuple[int, bool]:
    """Set ``spec.replicas`` to ``replicas`` unless it is already at least that; (replicas before, changed)."""
    while True:
        scale = apps.read_namespaced_deployment_scale(deployment, namespace, _request_timeout=_remaining(deadline))
        before = scale.spec.replicas or 0
        if before >= replicas:
            return before, False
        scale.spec.replicas = replicas  # the read's metadata.resourceVersion makes this a compare-and-set
        try:
            apps.replace_namespaced_deployment_scale(
                deployment, namespace, scale, _request_timeout=_remaining(deadline)
            )
        except ApiException as exc:
            if exc.status == 409 and time.monotonic() < deadline:
                continue  # changed since the read (the HPA?): read it again
            raise
        return before, True


def _remaining(deadline: float) -> float:
    return max(deadline - time.monotonic(), MIN_REQUEST_TIMEOUT)
