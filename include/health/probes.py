"""Health probes of every region from every vantage point, and the quorum verdict per region.

One probe is three concurrent HTTP GETs against a region's serving endpoint as a vantage point sees it:
``/health`` (liveness), ``/ready`` (a verified model is loaded; its latency is the one judged) and
``/metrics`` (utilisation = in-flight requests / capacity; unknown, as the probe's detail says, when the
answer is not 200 or not Prometheus text). ``/metrics`` needs the serving service's bearer token: the password
of the region's ``connections.serving`` connection, read once per round (so a rotated token is sent from the
next round on); a region without one is probed without a token, and its utilisation is unknown. A probe is

- ``failed``: no answer within ``health.timeout_seconds``, or ``/health`` or ``/ready`` not 200;
- ``slow``: answered, but ``/ready`` took more than ``health.slow_ms`` or utilisation is above
  ``health.max_utilisation``;
- ``ok`` otherwise.

A region's verdict for one round needs a quorum (``health.quorum`` vantage points, a majority by default):
``failed`` when a quorum of probes failed, ``degraded`` when a quorum failed or was slow, or when its
Kubernetes cluster reports a problem, ``ok`` otherwise. One vantage point's bad network therefore never fails
a region on its own; it is kept in the evidence as outvoted.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import asdict, dataclass
from typing import Literal

import httpx
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from include.catalogue import Catalogue, Region
from include.errors import MetricsFormatError, quoted

# Probes in flight at once in a round (three requests each). With every probe of 30 regions at once, the
# connection pool's queue (httpcore) took most of the round's CPU and its wait counted as /ready latency, so
# every region looked slow (benchmarks/health_scale.py); a probe's clock starts once it has a slot.
PROBES_IN_FLIGHT = 16

log = logging.getLogger(__name__)

ProbeOutcome = Literal["ok", "slow", "failed"]
Verdict = Literal["ok", "degraded", "failed"]


@dataclass(frozen=True)
class ProbeResult:
    """One vantage point's view of one region in one round."""

    vantage: str
    region: str
    outcome: ProbeOutcome
    detail: str
    ready_ms: float | None = None
    utilisation: float | None = None


@dataclass(frozen=True)
class RegionVerdict:
    """The quorum verdict on one region for one round, with the probes behind it."""

    region: str
    verdict: Verdict
    reasons: list[str]
    probes: list[ProbeResult]
    cluster: dict | None = None

    def evidence(self) -> dict:
        """JSON-ready evidence: the verdict, reasons and every probe."""
        return {
            "verdict": self.verdict,
            "reasons": self.reasons,
            "probes": [asdict(p) for p in self.probes],
            "cluster": self.cluster,
        }


def endpoint_from(catalogue: Catalogue, vantage: str, region: Region) -> str:
    """The serving endpoint of ``region`` as the vantage point ``vantage`` reaches it."""
    point = next(v for v in catalogue.health.vantage_points if v.name == vantage)
    return point.endpoints.get(region.name, region.serving_endpoint).rstrip("/")


def metric_samples(text: str, source: str = "/metrics") -> list[Sample]:
    """Every sample (name, labels, value) of Prometheus text, in order, parsed by ``prometheus_client``.

    ``MetricsFormatError`` if the text is not Prometheus text; its message names ``source`` (where the text
    came from) and what the parser refused.
    """
    try:
        return [sample for family in text_string_to_metric_families(text) for sample in family.samples]
    except ValueError as exc:
        reason = str(exc) or "a malformed line"
        raise MetricsFormatError(f"{source} is not Prometheus text ({reason}); it begins {quoted(text)}") from None


def utilisation_from_metrics(text: str) -> float | None:
    """In-flight requests / capacity from the serving service's Prometheus text, or None if absent.

    The service exports one series of each; ``MetricsFormatError`` if the text is not Prometheus text.
    """
    values = {sample.name: sample.value for sample in metric_samples(text)}
    try:
        inflight, capacity = values["mlp_serving_inflight_requests"], values["mlp_serving_capacity"]
    except KeyError:
        return None
    return inflight / capacity if capacity > 0 else None


async def serving_tokens(regions: list[Region]) -> dict[str, str | None]:
    """Each region's serving bearer token (its ``connections.serving`` password), one lookup per connection;
    None for a region without the connection, or whose connection cannot be read (logged)."""
    from airflow.providers.common.compat.connection import get_async_connection

    conn_ids = sorted({r.connections.serving for r in regions if r.connections.serving})

    async def password(conn_id: str) -> str | None:
        try:
            return (await get_async_connection(conn_id)).password or None
        except Exception as exc:  # a missing connection: the probe goes on, without the token
            log.warning("no serving token from connection %r: %s", conn_id, exc)
            return None

    passwords = dict(zip(conn_ids, await asyncio.gather(*(password(c) for c in conn_ids)), strict=True))
    return {r.name: passwords.get(r.connections.serving) if r.connections.serving else None for r in regions}


async def probe_endpoint(
    client: httpx.AsyncClient, catalogue: Catalogue, vantage: str, region: Region, token: str | None = None
) -> ProbeResult:
    """Probe one region from one vantage point: /health, /ready and /metrics (with ``token``, if any) at once."""
    settings = catalogue.health
    base = endpoint_from(catalogue, vantage, region)
    authorization = {"Authorization": f"Bearer {token}"} if token else {}

    async def timed_get(path: str) -> tuple[httpx.Response, float]:
        started = time.perf_counter()
        headers = authorization if path == "/metrics" else {}
        response = await client.get(base + path, timeout=settings.timeout_seconds, headers=headers)
        return response, (time.perf_counter() - started) * 1000

    try:
        (health, _), (ready, ready_ms), (metrics, _) = await asyncio.wait_for(
            asyncio.gather(timed_get("/health"), timed_get("/ready"), timed_get("/metrics")),
            timeout=settings.timeout_seconds,
        )
    except (httpx.HTTPError, TimeoutError, OSError) as exc:
        reason = type(exc).__name__ if isinstance(exc, TimeoutError) else f"{type(exc).__name__}: {exc}"
        return ProbeResult(vantage, region.name, "failed", f"no answer within {settings.timeout_seconds}s ({reason})")
    if health.status_code != 200:
        return ProbeResult(vantage, region.name, "failed", f"/health answered {health.status_code}", ready_ms)
    if ready.status_code != 200:
        reason = _reason_of(ready)
        return ProbeResult(vantage, region.name, "failed", f"/ready answered {ready.status_code}: {reason}", ready_ms)
    utilisation, unknown_utilisation = None, ""
    if metrics.status_code == 200:
        try:
            utilisation = utilisation_from_metrics(metrics.text)
        except MetricsFormatError as exc:
            unknown_utilisation = f"; utilisation unknown: {exc}"
    else:
        unknown_utilisation = f"; utilisation unknown: /metrics answered {metrics.status_code}"
    if ready_ms > settings.slow_ms:
        detail = f"/ready took {ready_ms:.0f} ms (slow above {settings.slow_ms} ms){unknown_utilisation}"
        return ProbeResult(vantage, region.name, "slow", detail, ready_ms, utilisation)
    if utilisation is not None and utilisation > settings.max_utilisation:
        detail = f"utilisation {utilisation:.0%} above {settings.max_utilisation:.0%}"
        return ProbeResult(vantage, region.name, "slow", detail, ready_ms, utilisation)
    detail = f"ready in {ready_ms:.0f} ms{unknown_utilisation}"
    return ProbeResult(vantage, region.name, "ok", detail, ready_ms, utilisation)


def _reason_of(response: httpx.Response) -> str:
    try:
        return str(response.json().get("reason", response.text))[:300]
    except ValueError:
        return response.text[:300]


def decide(region: str, probes: list[ProbeResult], quorum: int, cluster: dict | None = None) -> RegionVerdict:
    """The quorum verdict on ``region`` from its probes (and its cluster's health, if probed)."""
    failed = [p for p in probes if p.outcome == "failed"]
    slow = [p for p in probes if p.outcome == "slow"]
    cluster_problems = list(cluster.get("problems", [])) if cluster else []
    if len(failed) >= quorum:
        verdict: Verdict = "failed"
        reasons = [f"{len(failed)} of {len(probes)} vantage points failed (quorum {quorum})"]
        reasons += [f"{p.vantage}: {p.detail}" for p in failed]
    elif len(failed) + len(slow) >= quorum or cluster_problems:
        verdict = "degraded"
        reasons = [f"{p.vantage}: {p.detail}" for p in failed + slow] + [f"cluster: {c}" for c in cluster_problems]
    else:
        verdict = "ok"
        reasons = [f"{p.vantage}: {p.detail} (outvoted: below quorum {quorum})" for p in failed + slow]
    return RegionVerdict(region, verdict, reasons, probes, cluster)


async def probe_round(
    catalogue: Catalogue, client: httpx.AsyncClient, only: set[str] | None = None
) -> dict[str, RegionVerdict]:
    """Probe every region (or those in ``only``) from every vantage point, and their clusters, concurrently;
    a verdict per region."""
    from include.clouds.kubernetes import probe_cluster

    settings = catalogue.health
    regions = [r for r in catalogue.regions if only is None or r.name in only]
    slots = asyncio.Semaphore(PROBES_IN_FLIGHT)
    tokens = await serving_tokens(regions)

    async def probe(point: str, region: Region) -> ProbeResult:
        async with slots:
            return await probe_endpoint(client, catalogue, point, region, tokens[region.name])

    probes = [probe(point.name, region) for region in regions for point in settings.vantage_points]
    clustered = [r for r in regions if r.connections.kubernetes]
    clusters = [
        probe_cluster(
            r.connections.kubernetes,
            catalogue.failover.kubernetes_namespace,
            catalogue.failover.serving_deployment,
            settings.timeout_seconds,
        )
        for r in clustered
    ]
    results = await asyncio.gather(*probes, *clusters)
    probe_results: list[ProbeResult] = list(results[: len(probes)])
    cluster_by_region = {
        region.name: {**health.as_dict(), "problems": _cluster_problems(health)}
        for region, health in zip(clustered, results[len(probes) :], strict=True)
    }
    return {
        region.name: decide(
            region.name,
            [p for p in probe_results if p.region == region.name],
            settings.required_quorum,
            cluster_by_region.get(region.name),
        )
        for region in regions
    }


def probe_now(catalogue: Catalogue, only: set[str] | None = None) -> dict[str, RegionVerdict]:
    """One probe round from synchronous code (a task checking regions between traffic steps)."""

    async def run() -> dict[str, RegionVerdict]:
        async with httpx.AsyncClient() as client:
            return await probe_round(catalogue, client, only)

    return asyncio.run(run())


def _cluster_problems(health) -> list[str]:
    """What the cluster probe found wrong: its error (a failed read) and what is short of full health."""
    return ([health.error] if health.error else []) + health.degraded_reasons()
