"""Cluster health probes and failover warm-up (``include.clouds.kubernetes``) against a kube-apiserver stand-in.

No Kubernetes API server can run here, so ``tests.faults.kube_api.KubeApiStandIn`` stands in for one on
loopback. It fakes only the endpoints the module uses: ``GET /readyz``, ``GET /api/v1/nodes``,
``GET /apis/apps/v1/namespaces/{ns}/deployments/{name}`` and ``GET``/``PUT``/``PATCH`` of that deployment's
``/scale`` subresource. The code under test reaches it the way it reaches a real cluster: through the
cncf-kubernetes hooks and an ``AIRFLOW_CONN_*`` connection whose ``kube_config`` extra names the server and a
bearer token the stand-in insists on.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from include.clouds.kubernetes import ClusterHealth, probe_cluster, scale_for_warmup
from include.errors import WarmupError
from tests.faults.kube_api import KubeApiStandIn

pytestmark = pytest.mark.integration

CONN_ID = "k8s_test_region"
NAMESPACE = "mlp-serving"
DEPLOYMENT = "model-serving"
SCALE_PATH = f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/{DEPLOYMENT}/scale"


@pytest.fixture
def kube(monkeypatch) -> KubeApiStandIn:
    """A running stand-in with 3 ready nodes and 2 of 2 replicas available, and the connection to it."""
    with KubeApiStandIn(namespace=NAMESPACE, deployment=DEPLOYMENT, replicas=2, lifetime=60) as stand_in:
        for name, value in stand_in.connection_env(CONN_ID).items():
            monkeypatch.setenv(name, value)
        yield stand_in


def probe(timeout: float = 5.0, deployment: str = DEPLOYMENT) -> ClusterHealth:
    return asyncio.run(probe_cluster(CONN_ID, NAMESPACE, deployment, timeout))


def test_healthy_cluster(kube):
    health = probe()

    assert health == ClusterHealth(
        api_ready=True,
        nodes_ready=3,
        nodes_total=3,
        available_replicas=2,
        desired_replicas=2,
        latency_ms=health.latency_ms,
        error=None,
    )
    assert health.healthy
    assert health.degraded_reasons() == []
    assert health.as_dict()["healthy"] is True
    assert {path for _, path in kube.requests} == {
        "/readyz",
        "/api/v1/nodes",
        f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/{DEPLOYMENT}",
    }


def test_api_server_not_ready(kube):
    kube.api_ready = False

    health = probe()

    assert not health.api_ready
    assert not health.healthy
    assert health.error is None  # the API server answered: it is not ready, not unreachable
    assert health.degraded_reasons() == ["API server not ready"]


def test_a_node_not_ready_degrades_but_still_serves(kube):
    kube.nodes["node-b"] = False

    health = probe()

    assert (health.nodes_ready, health.nodes_total) == (2, 3)
    assert health.healthy
    assert health.degraded_reasons() == ["only 2 of 3 nodes ready"]


def test_fewer_replicas_available_than_desired(kube):
    kube.available_replicas = 1

    health = probe()

    assert health.healthy
    assert health.degraded_reasons() == ["only 1 of 2 replicas available"]


def test_zero_available_replicas_is_not_healthy(kube):
    kube.available_replicas = 0  # the stand-in then leaves availableReplicas out, as the API server does

    health = probe()

    assert (health.available_replicas, health.desired_replicas) == (0, 2)
    assert not health.healthy
    assert health.degraded_reasons() == ["only 0 of 2 replicas available"]


def test_slow_api_beyond_the_timeout_is_an_error_not_an_exception(kube):
    kube.latency = 3.0

    started = time.monotonic()
    health = probe(timeout=0.5)

    assert time.monotonic() - started < 2.0
    assert not health.healthy
    assert health.error is not None and "no answer within 0.5s" in health.error
    assert health.latency_ms >= 500


def test_api_errors_are_reported(kube):
    kube.fail_with_status = 503

    health = probe()

    assert not health.healthy
    assert "nodes: HTTP 503 Service Unavailable: injected by the stand-in" in health.error
    assert f"deployment {NAMESPACE}/{DEPLOYMENT}: HTTP 503" in health.error


def test_missing_deployment_is_reported(kube):
    health = probe(deployment="not-there")

    assert health.api_ready and health.nodes_ready == 3
    assert not health.healthy
    assert health.error == (
        f'deployment {NAMESPACE}/not-there: HTTP 404 Not Found: deployments.apps "not-there" not found'
    )


def test_undefined_connection_is_reported():
    health = asyncio.run(probe_cluster("k8s_nowhere", NAMESPACE, DEPLOYMENT, 2.0))

    assert not health.healthy
    assert "k8s_nowhere" in health.error


def test_warmup_scales_up_and_waits_for_availability(kube):
    kube.available_delay = 0.5

    evidence = scale_for_warmup(CONN_ID, NAMESPACE, DEPLOYMENT, 3, timeout=10, poll_interval=0.1)

    assert evidence["before"] == 2 and evidence["target"] == 3 and evidence["scaled"] is True
    assert evidence["available"] >= 3
    assert evidence["seconds"] >= 0.5  # it waited for the new replica to become available
    assert kube.scale_writes == [3]
    assert ("PUT", SCALE_PATH) in kube.requests
    assert probe().available_replicas == 3


def test_warmup_never_scales_down(kube):
    kube.replicas = kube.available_replicas = 5

    evidence = scale_for_warmup(CONN_ID, NAMESPACE, DEPLOYMENT, 3, timeout=5, poll_interval=0.1)

    assert evidence["before"] == 5 and evidence["scaled"] is False and evidence["available"] == 5
    assert kube.scale_writes == []
    assert kube.replicas == 5


def test_warmup_does_not_overwrite_a_concurrent_scale_up(kube):
    kube.concurrent_scale_to = 6  # the HPA scales to 6 between our read of the scale and our write

    evidence = scale_for_warmup(CONN_ID, NAMESPACE, DEPLOYMENT, 3, timeout=10, poll_interval=0.1)

    assert evidence["scaled"] is False  # our write was refused (409), and on reading again 6 >= 3
    assert kube.scale_writes == []
    assert kube.replicas == 6
    assert [method for method, path in kube.requests if path == SCALE_PATH] == ["GET", "PUT", "GET"]


def test_warmup_times_out_with_a_clear_error(kube):
    kube.available_delay = None  # the new replicas never become available (no capacity, image pull failing...)

    started = time.monotonic()
    with pytest.raises(WarmupError) as caught:
        scale_for_warmup(CONN_ID, NAMESPACE, DEPLOYMENT, 3, timeout=1.0, poll_interval=0.2)

    assert time.monotonic() - started < 3.0
    message = str(caught.value)
    assert f"deployment {NAMESPACE}/{DEPLOYMENT}" in message
    assert CONN_ID in message and kube.url in message
    assert "only 2 of 3 replicas available after 1s" in message
    assert kube.replicas == 3  # the scale-up itself was made


def test_warmup_through_an_undefined_connection_fails_clearly():
    with pytest.raises(WarmupError, match=rf"deployment {NAMESPACE}/{DEPLOYMENT}: connection 'k8s_nowhere'"):
        scale_for_warmup("k8s_nowhere", NAMESPACE, DEPLOYMENT, 3, timeout=5)


def test_warmup_of_a_missing_deployment_fails_at_once(kube):
    with pytest.raises(WarmupError, match=rf"cannot scale deployment {NAMESPACE}/not-there .*HTTP 404"):
        scale_for_warmup(CONN_ID, NAMESPACE, "not-there", 3, timeout=10, poll_interval=0.1)
