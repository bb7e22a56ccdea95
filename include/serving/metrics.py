"""The serving service's Prometheus metrics, in a registry of its own so that several apps in one process never collide.

Every ``mlp_*`` series carries ``region`` and ``model``. The version appears where it means something across a
switch of version:

- ``mlp_predict_requests_total``, ``mlp_predict_errors_total`` and ``mlp_predict_latency_seconds`` are per
  version that answered (``version=""`` for requests refused while nothing was served), so a rollout's
  versions can be compared; the served version's series exist from the moment it is served;
- ``mlp_model_info{version, sha256, signed_by}`` is 1 for the version served now, and only for it: after a
  switch the old version's series is gone;
- ``mlp_model_refused{version}`` is 1 while the version the rollout pointer names is refused.

The process-wide gauges (``mlp_model_loaded``, ``mlp_serving_inflight_requests``, ``mlp_serving_capacity``,
``mlp_model_last_verified_timestamp_seconds``) have no version label, so they are one series each through
every switch. ``mlp_serving_rejected_requests_total{reason}`` counts the requests refused before a prediction
(``REJECTION_REASONS``), every reason present from the start at 0. The registry also holds the standard
``process_*`` metrics (CPU seconds, resident memory, which the cost pipeline's right-sizing samples).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector, generate_latest
from prometheus_client.core import GaugeMetricFamily

from include.serving.state import ServingState

# Why a request was refused before any prediction: no or no bearer token (401), a token not accepted (403),
# over the rate limit (429), a body or instance count over its limit (413), a body not of the schema (422).
REJECTION_REASONS = (
    "unauthenticated",
    "forbidden",
    "rate_limited",
    "body_too_large",
    "too_many_instances",
    "invalid_body",
)


class VersionCollector:
    """``mlp_model_info`` for the version served and ``mlp_model_refused`` for a refused one, read at scrape time."""

    def __init__(self, state: ServingState):
        self.state = state

    def collect(self):
        status, base = self.state.status, [self.state.region.name, self.state.model]
        info = GaugeMetricFamily(
            "mlp_model_info", "1 for the version served", labels=["region", "model", "version", "sha256", "signed_by"]
        )
        if status.served is not None:
            served = status.served
            info.add_metric([*base, served.version, served.manifest.total_sha256, served.signed_by], 1)
        refused = GaugeMetricFamily(
            "mlp_model_refused", "1 while the version rolled out is refused", labels=["region", "model", "version"]
        )
        if status.refused is not None:
            refused.add_metric([*base, status.refused.version], 1)
        return [info, refused]


class ServingMetrics:
    """The counters, histogram and gauges of one serving app (see the module docstring for their labels)."""

    def __init__(self, state: ServingState, capacity: int):
        self.state = state
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        self.registry.register(VersionCollector(state))
        base = (state.region.name, state.model)
        by_version = ("region", "model", "version")

        def gauge(name: str, documentation: str) -> Gauge:
            return Gauge(name, documentation, ("region", "model"), registry=self.registry).labels(*base)

        registry = self.registry
        self._requests = Counter("mlp_predict_requests", "Predict requests answered, failed ones included",
                                 by_version, registry=registry)  # fmt: skip
        self._errors = Counter("mlp_predict_errors", "Predict requests that failed", by_version, registry=registry)
        self._latency = Histogram("mlp_predict_latency_seconds", "Time to answer a predict request",
                                  by_version, registry=registry)  # fmt: skip
        self._rejected = Counter("mlp_serving_rejected_requests", "Requests refused before a prediction, by reason",
                                 ("region", "model", "reason"), registry=registry)  # fmt: skip
        for reason in REJECTION_REASONS:
            self._rejected.labels(*base, reason)
        self.inflight = gauge("mlp_serving_inflight_requests", "Predict requests running or waiting")
        gauge("mlp_serving_capacity", "Predictions that run at once").set(capacity)
        loaded = gauge("mlp_model_loaded", "1 while a verified version is served, else 0")
        loaded.set_function(lambda: float(state.status.served is not None))
        verified = gauge("mlp_model_last_verified_timestamp_seconds", "Unix time of the last verification")
        verified.set_function(lambda: state.status.last_verified)

    def request_started(self) -> None:
        """Count a predict request in flight (running, or waiting for a prediction slot)."""
        self.inflight.inc()

    def request_finished(self, seconds: float, failed: bool, version: str) -> None:
        """Count a request answered by ``version`` ("" if none) after ``seconds``, as an error if it ``failed``."""
        self.inflight.dec()
        labels = (self.state.region.name, self.state.model, version)
        self._requests.labels(*labels).inc()
        if failed:
            self._errors.labels(*labels).inc()
        self._latency.labels(*labels).observe(seconds)

    def request_rejected(self, reason: str) -> None:
        """Count a request refused before a prediction, for ``reason`` (one of ``REJECTION_REASONS``)."""
        self._rejected.labels(self.state.region.name, self.state.model, reason).inc()

    def exposition(self) -> bytes:
        """The registry in the Prometheus text format, with the served version's request series present."""
        served = self.state.status.served
        if served is not None:
            labels = (self.state.region.name, self.state.model, served.version)
            for metric in (self._requests, self._errors, self._latency):
                metric.labels(*labels)
        return generate_latest(self.registry)
