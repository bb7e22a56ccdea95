"""The region catalogue: which regions exist, on which cloud, and which Airflow connections reach them.

One YAML file (``config/regions.yaml`` unless ``MLP_REGION_CATALOGUE`` names another) describes every
region. It is validated on load: a missing, unknown or malformed field raises ``CatalogueError`` naming
the file, the region and the field, so a typo never reaches a cloud call.
"""

from __future__ import annotations

import os
import re
from functools import cached_property
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import yaml
from pydantic import Field, ValidationError, model_validator

from include.catalogue.cost import CostConfig
from include.catalogue.fields import (
    BUCKET_PATTERNS,
    CLOUD_REGION_PATTERNS,
    ConnId,
    Hostname,
    Name,
    Percent,
    Provider,
    Strategy,
    StrictModel,
    Verification,
)
from include.errors import CatalogueError

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CATALOGUE = REPO_ROOT / "config" / "regions.yaml"
CATALOGUE_ENV = "MLP_REGION_CATALOGUE"


class RegionConnections(StrictModel):
    """Airflow connection ids a region uses."""

    storage: ConnId = Field(description="object store: aws (S3), google_cloud_platform (GCS) or wasb")
    kubernetes: ConnId | None = Field(default=None, description="the region's cluster (cncf-kubernetes)")
    serving: ConnId | None = Field(
        default=None,
        description="the bearer token of the region's serving /metrics, as the connection's password (any type); "
        "the health probes and the cost sampler send it",
    )


class Region(StrictModel):
    """One serving region on one cloud."""

    name: Name
    provider: Provider
    cloud_region: str
    primary: bool = False
    bucket: str = Field(description="model bucket (S3, GCS) or blob container (Azure)")
    serving_endpoint: str
    dns_record: Hostname = Field(description="the region's own name; the traffic records are CNAMEs to it")
    latency_region: str | None = Field(
        default=None, description="AWS region whose Route 53 latency record stands for this region (aws: its own)"
    )
    failover_strategy: Strategy | None = Field(default=None, description="overrides failover.strategy")
    verification: Verification = Field(
        default="provider_checksum",
        description="how a replica written here is verified: provider_checksum (the store's checksums of what "
        "it stored are checked before an object becomes visible; nothing is read back) or read_back (each file "
        "is also read back in full, for a store that completes uploads whatever checksums they carry, as moto)",
    )
    connections: RegionConnections

    @property
    def route53_latency_region(self) -> str:
        """The AWS region named in this region's Route 53 latency record."""
        return self.latency_region or self.cloud_region

    @model_validator(mode="after")
    def _check_provider_specific_names(self) -> Region:
        if not re.match(CLOUD_REGION_PATTERNS[self.provider], self.cloud_region):
            raise ValueError(f"cloud_region {self.cloud_region!r} is not a valid {self.provider} region name")
        if not re.match(BUCKET_PATTERNS[self.provider], self.bucket):
            kind = "container" if self.provider == "azure" else "bucket"
            raise ValueError(f"bucket {self.bucket!r} is not a valid {self.provider} {kind} name")
        url = urlsplit(self.serving_endpoint)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"serving_endpoint {self.serving_endpoint!r} is not an http(s) URL")
        if self.provider != "aws" and self.latency_region is None:
            raise ValueError("latency_region (the AWS region for its Route 53 latency record) is required off AWS")
        if self.latency_region is not None and not re.match(CLOUD_REGION_PATTERNS["aws"], self.latency_region):
            raise ValueError(f"latency_region {self.latency_region!r} is not an AWS region name")
        return self


class DnsConfig(StrictModel):
    """The hosted zone and the three traffic records failover steers (each a CNAME set to region names).

    ``record`` is weighted (one record per region; the strategies move its weights), ``latency_record`` has
    one latency record per serving region, and ``failover_record`` a PRIMARY (the primary region) and a
    SECONDARY (the first other region in catalogue order) record. Every record carries its region's health check.
    """

    provider: Literal["route53"] = "route53"
    zone: Hostname
    record: Hostname = Field(description="weighted records: the name clients resolve")
    latency_record: Hostname
    failover_record: Hostname
    ttl: int = Field(default=60, ge=1, le=86400)
    health_check_interval: Literal[10, 30] = 10  # seconds; Route 53 allows only these two
    health_check_failure_threshold: int = Field(default=3, ge=1, le=10)
    connection: ConnId

    @model_validator(mode="after")
    def _check_records_in_zone(self) -> DnsConfig:
        names = {"record": self.record, "latency_record": self.latency_record, "failover_record": self.failover_record}
        for field_name, record in names.items():
            if not record.endswith("." + self.zone):
                raise ValueError(f"{field_name} {record!r} is not inside zone {self.zone!r}")
        if len(set(names.values())) != len(names):
            raise ValueError("record, latency_record and failover_record must be three different names")
        return self


QUEUE_URL = r"^https?://[^/]+/\d+/[A-Za-z0-9_-]{1,80}(\.fifo)?$"


class EventsConfig(StrictModel):
    """The SQS queues of the platform's events: model-registry events, and serving's reports of bad replicas."""

    queue_url: str = Field(pattern=QUEUE_URL, description="model-registry events: start the replication DAG")
    reports_queue_url: str | None = Field(
        default=None, pattern=QUEUE_URL, description="serving's reports of corrupt replicas: start the audit"
    )
    connection: ConnId


class ReplicationConfig(StrictModel):
    """How model versions are replicated and audited."""

    state_connection: ConnId = "mlp_state"
    rpo_minutes: int = Field(default=15, ge=1)
    part_size_mib: int = Field(default=8, ge=5, le=512)  # S3 parts are at least 5 MiB
    workers: int = Field(default=4, ge=1, le=32)
    stream_source: bool = False  # one GET per source file instead of parallel ranged GETs


class VantagePoint(StrictModel):
    """A place health probes run from. ``endpoints`` overrides a region's serving endpoint as seen from here
    (a regional egress or probe proxy); regions not listed are probed at their ``serving_endpoint``."""

    name: Name
    endpoints: dict[str, str] = {}


class HealthConfig(StrictModel):
    """How regions are probed and when the state machine moves (thresholds and hysteresis)."""

    probe_interval_seconds: float = Field(default=5, gt=0, le=300)
    timeout_seconds: float = Field(default=2, gt=0, le=60)
    slow_ms: int = Field(default=500, ge=1, description="a /ready answer slower than this is degraded")
    max_utilisation: float = Field(default=0.85, gt=0, le=1, description="in-flight / capacity from /metrics")
    vantage_points: list[VantagePoint] = Field(
        default=[VantagePoint(name="probe-a"), VantagePoint(name="probe-b"), VantagePoint(name="probe-c")],
        min_length=1,
    )
    quorum: int | None = Field(default=None, ge=1, description="vantage points that must agree; default majority")
    unhealthy_after_failures: int = Field(default=3, ge=1, description="failed rounds in a row before UNHEALTHY")
    unhealthy_after_seconds: float = Field(default=10, ge=0, description="...and failing at least this long")
    healthy_after_successes: int = Field(default=3, ge=1, description="good rounds in a row to leave DEGRADED")
    rerequest_seconds: int = Field(
        default=300, ge=10, description="while a state asks for a move not made yet, request it again this often"
    )

    @property
    def required_quorum(self) -> int:
        return self.quorum or len(self.vantage_points) // 2 + 1

    @model_validator(mode="after")
    def _check_quorum(self) -> HealthConfig:
        names = [v.name for v in self.vantage_points]
        if len(set(names)) != len(names):
            raise ValueError(f"vantage point names must be unique: {names}")
        if self.required_quorum > len(self.vantage_points):
            raise ValueError(f"quorum {self.quorum} is more than the {len(self.vantage_points)} vantage points")
        return self


class FailoverConfig(StrictModel):
    """How traffic moves away from a failed region and back, and the circuit breaker that limits it."""

    strategy: Strategy = "automatic"
    max_failovers_per_hour: int = Field(default=3, ge=1)
    stable_seconds: float = Field(default=300, ge=0, description="healthy this long before failback starts")
    drain_steps: list[Percent] = Field(default=[75, 50, 25, 0], min_length=1)
    failback_steps: list[Percent] = Field(default=[25, 50, 75, 100], min_length=1)
    step_pause_seconds: float = Field(default=30, ge=0)
    warmup_replicas: int = Field(default=3, ge=1, description="serving replicas a receiving region scales to")
    kubernetes_namespace: str = "mlp-serving"
    serving_deployment: str = "model-serving"
    notify_connection: ConnId | None = Field(default=None, description="an http connection to a webhook")
    approval_timeout_seconds: float = Field(
        default=1800,
        ge=1,
        le=7 * 86400,
        description="how long a manual move waits for a person's approval before approval_default applies",
    )
    approval_default: Literal["reject", "approve"] = Field(
        default="reject", description="what a manual move's approval becomes when nobody answers in time"
    )
    move_budget_seconds: float = Field(
        default=900, gt=0, description="a failover_moves run still going this long after it was queued is alerted"
    )

    @model_validator(mode="after")
    def _check_steps(self) -> FailoverConfig:
        if self.drain_steps != sorted(self.drain_steps, reverse=True) or self.drain_steps[-1] != 0:
            raise ValueError(f"drain_steps must go down and end at 0, got {self.drain_steps}")
        if self.failback_steps != sorted(self.failback_steps) or self.failback_steps[-1] != 100:
            raise ValueError(f"failback_steps must go up and end at 100, got {self.failback_steps}")
        pauses = max(len(self.drain_steps), len(self.failback_steps)) * self.step_pause_seconds
        if self.move_budget_seconds <= pauses:
            raise ValueError(
                f"move_budget_seconds {self.move_budget_seconds:g} is not longer than a gradual move's pauses "
                f"alone ({pauses:g} s: steps x step_pause_seconds); every such move would miss its deadline"
            )
        return self


class Catalogue(StrictModel):
    """All regions plus the DNS they are served under, the event queue and replication settings."""

    dns: DnsConfig
    regions: list[Region] = Field(min_length=1)
    events: EventsConfig | None = None
    replication: ReplicationConfig = ReplicationConfig()
    health: HealthConfig = HealthConfig()
    failover: FailoverConfig = FailoverConfig()
    cost: CostConfig | None = None

    @model_validator(mode="after")
    def _check_regions_together(self) -> Catalogue:
        names = [r.name for r in self.regions]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"region names must be unique; repeated: {', '.join(duplicates)}")
        primaries = [r.name for r in self.regions if r.primary]
        if len(primaries) != 1:
            raise ValueError(f"exactly one region must be primary: true; found {len(primaries)}: {primaries}")
        providers_by_conn: dict[str, set[str]] = {self.dns.connection: {"aws"}}
        if self.events:
            providers_by_conn.setdefault(self.events.connection, set()).add("aws")
        for region in self.regions:
            providers_by_conn.setdefault(region.connections.storage, set()).add(region.provider)
        for conn_id, providers in providers_by_conn.items():
            if len(providers) > 1:
                raise ValueError(
                    f"connection {conn_id!r} is used for {' and '.join(sorted(providers))}; "
                    "one connection reaches one cloud (the DNS connection is an AWS one)"
                )
        for region in self.regions:
            if not region.dns_record.endswith("." + self.dns.zone):
                raise ValueError(
                    f"region {region.name!r}: dns_record {region.dns_record!r} is not inside zone {self.dns.zone!r}"
                )
        if self.cost is not None:
            self._check_cost_against_regions(self.cost, names)
        for point in self.health.vantage_points:
            unknown = sorted(set(point.endpoints) - set(names))
            if unknown:
                raise ValueError(f"vantage point {point.name!r} names unknown regions: {', '.join(unknown)}")
        return self

    def _check_cost_against_regions(self, cost: CostConfig, names: list[str]) -> None:
        if cost.store_region is not None and cost.store_region not in names:
            raise ValueError(f"cost.store_region {cost.store_region!r} is not a region of this catalogue")
        providers = {r.name: r.provider for r in self.regions}
        for workload in cost.workloads:
            if workload.region not in names:
                raise ValueError(f"cost workload {workload.name!r}: unknown region {workload.region!r}")
            if providers[workload.region] not in cost.unit_prices:
                raise ValueError(
                    f"cost workload {workload.name!r} runs on {providers[workload.region]}, "
                    "which has no cost.unit_prices entry"
                )

    @cached_property
    def by_name(self) -> dict[str, Region]:
        return {r.name: r for r in self.regions}

    def region(self, name: str) -> Region:
        """Return the region called ``name``, or raise ``CatalogueError`` listing the known ones."""
        try:
            return self.by_name[name]
        except KeyError:
            raise CatalogueError(f"unknown region {name!r}; the catalogue has: {', '.join(self.by_name)}") from None

    @property
    def primary(self) -> Region:
        return next(r for r in self.regions if r.primary)

    @property
    def secondary(self) -> Region | None:
        """The failover record's SECONDARY: the first region after the primary in catalogue order."""
        return next((r for r in self.regions if not r.primary), None)

    @property
    def cost_store_region(self) -> Region:
        """The region whose bucket holds cost data and reports (the primary unless ``cost.store_region``)."""
        if self.cost is None or self.cost.store_region is None:
            return self.primary
        return self.region(self.cost.store_region)

    def strategy_of(self, region: Region) -> str:
        """The failover strategy for ``region``: its own, or the catalogue's default."""
        return region.failover_strategy or self.failover.strategy

    def region_of_bucket(self, provider: str, bucket: str) -> Region | None:
        """The region whose model bucket (or container) is ``bucket`` on ``provider``."""
        return next((r for r in self.regions if r.provider == provider and r.bucket == bucket), None)


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a mapping with the same key twice (PyYAML would keep the last silently)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, str | int | float | bool | None):
                raise CatalogueError(f"line {key_node.start_mark.line + 1}: a key must be a plain name, not {key!r}")
            if key in seen:
                raise CatalogueError(f"line {key_node.start_mark.line + 1}: key {key!r} appears twice")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def catalogue_path() -> Path:
    """The catalogue file in use: ``$MLP_REGION_CATALOGUE`` or the embedded default."""
    return Path(os.environ.get(CATALOGUE_ENV) or DEFAULT_CATALOGUE)


def _describe_location(data: object, loc: tuple) -> str:
    """Render a pydantic error location, naming regions by name: ``regions[1] (gcp-x).bucket``."""
    parts: list[str] = []
    node = data
    for item in loc:
        if isinstance(item, int) and parts:
            name = node[item].get("name") if isinstance(node, list) and isinstance(node[item], dict) else None
            parts[-1] += f"[{item}]" + (f" ({name})" if name else "")
        else:
            parts.append(str(item))
        try:
            node = node[item]
        except (KeyError, IndexError, TypeError):
            node = None
    return ".".join(parts) or "(top level)"


def parse_catalogue(data: object, source: str = "<catalogue>") -> Catalogue:
    """Validate already-loaded catalogue data; raise ``CatalogueError`` naming each bad field."""
    try:
        return Catalogue.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            # Model-level checks carry their own message; field checks get the field's location.
            message = error["msg"].removeprefix("Value error, ")
            where = _describe_location(data, tuple(loc for loc in error["loc"]))
            if error["type"] == "missing":
                message = "required field is missing"
            elif error["type"] == "extra_forbidden":
                message = "unknown field (a typo?)"
            elif "input" in error and error["type"] not in ("value_error", "model_type"):
                message += f" (got {error['input']!r})"
            problems.append(f"  {where}: {message}")
        raise CatalogueError(f"{source}: invalid region catalogue:\n" + "\n".join(problems)) from None


def load_catalogue(path: str | Path | None = None) -> Catalogue:
    """Read and validate the catalogue at ``path`` (default: ``catalogue_path()``)."""
    path = Path(path) if path else catalogue_path()
    try:
        text = path.read_text()
    except OSError as exc:
        raise CatalogueError(f"cannot read region catalogue {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise CatalogueError(f"{path}: not UTF-8 text (byte {exc.start}): {exc.reason}") from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except CatalogueError as exc:
        raise CatalogueError(f"{path}: {exc}") from None
    except yaml.YAMLError as exc:
        raise CatalogueError(f"{path}: not valid YAML: {exc}") from None
    return parse_catalogue(data, source=str(path))
