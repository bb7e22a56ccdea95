"""The catalogue's ``cost`` section: billing sources, currency, budgets, anomaly rules and workloads."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, model_validator

from include.catalogue.fields import ConnId, Name, Provider, StrictModel


class AwsCostSource(StrictModel):
    """AWS Cost Explorer, read through an aws connection (the account's payer or member account)."""

    connection: ConnId


class GcpCostSource(StrictModel):
    """The Cloud Billing export to BigQuery, read through a google_cloud_platform connection."""

    connection: ConnId
    table: str = Field(
        pattern=r"^[a-z][a-z0-9-]{4,29}\.[A-Za-z0-9_]{1,1024}\.[A-Za-z0-9_]{1,1024}$",
        description="project.dataset.gcp_billing_export_v1_<account>: the standard or detailed export table",
    )
    location: str = "US"


class AzureCostSource(StrictModel):
    """Azure Cost Management ``Query`` on a scope, with credentials from an azure connection."""

    connection: ConnId
    scope: str = Field(pattern=r"^/subscriptions/[0-9a-fA-F-]{36}(/resourceGroups/[^/]+)?$")


class CostSources(StrictModel):
    aws: AwsCostSource | None = None
    gcp: GcpCostSource | None = None
    azure: AzureCostSource | None = None

    @property
    def providers(self) -> list[Provider]:
        """The clouds that have a billing source, in a fixed order (aws, gcp, azure)."""
        return [provider for provider in ("aws", "gcp", "azure") if getattr(self, provider) is not None]


class AnomalyRules(StrictModel):
    """When a service's cost in a region is anomalous (see ``include/cost/anomalies.py``)."""

    min_daily_cost: float = Field(default=5.0, ge=0, description="smaller daily costs are never anomalies")
    day_over_day_ratio: float = Field(default=1.5, gt=1, description="today over yesterday")
    baseline_days: int = Field(default=14, ge=3, le=90, description="trailing days of the baseline")
    baseline_sigmas: float = Field(default=3.0, gt=0, description="standard deviations above the baseline mean")


class Budget(StrictModel):
    """A monthly budget for one cloud, in one of its regions or (``region`` unset) all of them."""

    provider: Provider
    region: str | None = Field(default=None, description="the cloud's region id, as in FOCUS RegionId")
    monthly: float = Field(gt=0, description="in the reporting currency")


class Workload(StrictModel):
    """A workload the savings analysis looks at: what it requests, on which capacity, and whether it may move."""

    name: Name
    region: Name = Field(description="a region of this catalogue")
    replicas: int = Field(ge=1)
    cpu_request: float = Field(gt=0, description="vCPU per replica")
    memory_request_gib: float = Field(gt=0, description="GiB per replica")
    capacity: Literal["on_demand", "spot"] = "on_demand"
    stateless: bool = False
    interruptible: bool = Field(default=False, description="survives losing a replica at two minutes' notice")
    utilisation: Literal["serving_metrics"] | None = Field(
        default=None, description="where its used CPU and memory come from: the region's serving /metrics"
    )


class UnitPrice(StrictModel):
    """What one vCPU-hour and one GiB-hour of node capacity cost, in the reporting currency."""

    vcpu_hour: float = Field(gt=0)
    gib_hour: float = Field(gt=0)


class CostConfig(StrictModel):
    """The daily cost pipeline: sources, currency, restatement window, savings rules, budgets."""

    start_date: date = Field(description="the first day the daily DAG covers (catchup starts here)")
    catchup: bool = Field(default=True, description="run every missed day since start_date when unpaused")
    reporting_currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")
    exchange_rates: dict[Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")], float] = Field(
        default={}, description="units of the reporting currency for one unit of each other currency"
    )
    restatement_days: int = Field(default=3, ge=1, le=45, description="recent days re-pulled by every run")
    history_days: int = Field(
        default=90, ge=1, le=400, description="what the first run loads, when no FOCUS data is stored yet"
    )
    store_region: Name | None = Field(default=None, description="whose bucket holds cost data; default primary")
    prefix: str = Field(default="cost", pattern=r"^[a-z0-9][a-z0-9/_-]*[a-z0-9]$")
    sources: CostSources = CostSources()
    spot_discount: float = Field(default=0.6, gt=0, lt=1, description="spot price = on-demand x (1 - discount)")
    unit_prices: dict[Provider, UnitPrice] = {}
    anomalies: AnomalyRules = AnomalyRules()
    budgets: list[Budget] = []
    budget_alert_percents: list[Annotated[int, Field(ge=1, le=500)]] = [50, 80, 100]
    workloads: list[Workload] = []
    utilisation_window_seconds: float = Field(default=10, gt=0, le=600, description="between two /metrics reads")
    notify_connection: ConnId | None = Field(default=None, description="an http connection to a webhook")

    @model_validator(mode="after")
    def _check_rates(self) -> CostConfig:
        if self.reporting_currency in self.exchange_rates:
            raise ValueError(f"exchange_rates must not list the reporting currency {self.reporting_currency}")
        return self
