"""Savings: workloads that could run on spot capacity, and requests that could be right-sized.

Pure functions of the catalogue's workloads, unit prices and measured utilisation; each docstring states its
rule and the numbers it uses.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import NamedTuple

from include.catalogue import Catalogue
from include.catalogue.cost import UnitPrice, Workload
from include.errors import CostDataError

HOURS_PER_MONTH = 730  # 8760 hours in a 365-day year / 12: the month cloud price lists use


class Utilisation(NamedTuple):
    """What one replica of a workload uses: a peak or high percentile over the sampling window."""

    cpu_cores: float
    memory_gib: float


# Savings


def region_providers(catalogue: Catalogue) -> dict[str, str]:
    """Catalogue region name -> its provider (aws, gcp or azure)."""
    return {region.name: region.provider for region in catalogue.regions}


def _unit_price(workload: Workload, providers: Mapping[str, str], unit_prices: Mapping[str, UnitPrice]) -> UnitPrice:
    if workload.region not in providers:
        raise ValueError(f"workload {workload.name!r}: region {workload.region!r} is not in the catalogue")
    provider = providers[workload.region]
    if provider not in unit_prices:
        raise ValueError(f"workload {workload.name!r} runs on {provider}, which has no unit price")
    return unit_prices[provider]


def monthly_capacity_cost(replicas: int, cpu: float, memory_gib: float, price: UnitPrice) -> float:
    """replicas x (cpu x vcpu_hour + memory_gib x gib_hour) x 730 hours, at on-demand unit prices."""
    return replicas * (cpu * price.vcpu_hour + memory_gib * price.gib_hour) * HOURS_PER_MONTH


def spot_candidates(
    workloads: Iterable[Workload],
    unit_prices: Mapping[str, UnitPrice],
    spot_discount: float,
    providers: Mapping[str, str],
) -> list[dict]:
    """Workloads that could run on spot capacity, and what moving them saves per month.

    Rule: a workload is a candidate when it is stateless AND interruptible AND on on-demand capacity.
    Its monthly cost = replicas x (cpu_request x vcpu_hour + memory_request_gib x gib_hour) x 730 h, at its
    provider's on-demand unit prices (``providers`` maps catalogue region -> provider); the saving is
    cost x ``spot_discount`` (``cost.spot_discount``: spot price = on-demand x (1 - discount)).
    Sorted by saving, largest first.
    """
    candidates = []
    for workload in workloads:
        if not (workload.stateless and workload.interruptible and workload.capacity == "on_demand"):
            continue
        price = _unit_price(workload, providers, unit_prices)
        monthly = monthly_capacity_cost(workload.replicas, workload.cpu_request, workload.memory_request_gib, price)
        candidates.append(
            {
                "workload": workload.name,
                "region": workload.region,
                "provider": providers[workload.region],
                "replicas": workload.replicas,
                "cpu_request": workload.cpu_request,
                "memory_request_gib": workload.memory_request_gib,
                "monthly_cost": monthly,
                "monthly_saving": monthly * spot_discount,
            }
        )
    return sorted(candidates, key=lambda row: (-row["monthly_saving"], row["workload"], row["region"]))


def parse_utilisation(data: Mapping) -> dict[tuple[str, str], Utilisation]:
    """Utilisation keyed by (workload, catalogue region), from that form or the JSON form XCom carries.

    The JSON form is ``include.cost.utilisation``'s: ``{"<workload>@<region>": {"cpu_cores": .., "memory_gib": ..}}``
    (names never contain ``@``). Values may also be ``(cpu_cores, memory_gib)`` pairs. Anything else raises
    ``CostDataError``.
    """
    parsed = {}
    for key, value in data.items():
        name_and_region = tuple(key.split("@")) if isinstance(key, str) else tuple(key)
        if len(name_and_region) != 2:
            raise CostDataError(f"utilisation key {key!r} is not (workload, region) or 'workload@region'")
        if isinstance(value, Mapping):
            if not {"cpu_cores", "memory_gib"} <= value.keys():
                raise CostDataError(f"utilisation of {key!r} lacks cpu_cores or memory_gib: {value!r}")
            value = (value["cpu_cores"], value["memory_gib"])
        parsed[name_and_region] = Utilisation(*value)
    return parsed


def round_up_to_step(value: float, step: float) -> float:
    """``value`` rounded up to a whole number of ``step`` (a hair over a step, from float error, is not a step)."""
    return math.ceil(round(value / step, 9)) * step


def right_sizing(
    workloads: Iterable[Workload],
    utilisation: Mapping[tuple[str, str], Utilisation],
    unit_prices: Mapping[str, UnitPrice],
    providers: Mapping[str, str],
    spot_discount: float,
    *,
    headroom: float = 0.15,
    cpu_step: float = 0.25,
    memory_step_gib: float = 0.25,
    cpu_floor: float = 0.25,
    memory_floor_gib: float = 0.5,
    min_reduction: float = 0.2,
) -> list[dict]:
    """Smaller CPU and memory requests for workloads that use much less than they request.

    ``utilisation`` maps (workload name, catalogue region) to what one replica uses: a peak or high percentile
    of CPU cores and memory GiB over the sampling window. Rule, per resource:

    - recommended = used x (1 + headroom), rounded up to a step, and at least the floor. Headroom 15 % is the
      Kubernetes VPA recommender's default safety margin; steps of 0.25 vCPU / 0.25 GiB give values people
      write as they are; floors of 0.25 vCPU / 0.5 GiB keep a Python serving process alive through start-up
      (imports, model load) however idle it is later.
    - the recommendation replaces the request only when it is at least ``min_reduction`` (20 %) below it:
      a smaller cut is within the noise of a week's peak and not worth a rollout. Otherwise the request stays.

    Monthly saving = replicas x (CPU cut x vcpu_hour + memory cut x gib_hour) x 730 h at the provider's
    on-demand unit prices, times (1 - ``spot_discount``) for a workload already on spot capacity.

    Every workload gets one row with ``status``: ``resize`` (a cut is recommended), ``keep`` (no meaningful
    cut) or ``no_data`` (no utilisation: skipped, never read as zero use). Utilisation that is negative or not
    finite raises ``CostDataError``. Sorted: resizes by saving, largest first, then keeps, then no data.
    """
    rows = []
    for workload in workloads:
        price = _unit_price(workload, providers, unit_prices)
        row = {
            "workload": workload.name,
            "region": workload.region,
            "provider": providers[workload.region],
            "capacity": workload.capacity,
            "replicas": workload.replicas,
            "cpu_request": workload.cpu_request,
            "memory_request_gib": workload.memory_request_gib,
        }
        used = utilisation.get((workload.name, workload.region))
        if used is None:
            rows.append(row | {"status": "no_data"})
            continue
        used = Utilisation(*used)
        if not all(math.isfinite(value) and value >= 0 for value in used):
            raise CostDataError(f"workload {workload.name!r} in {workload.region}: utilisation {used} is not usable")
        cpu = _recommended(used.cpu_cores, workload.cpu_request, headroom, cpu_step, cpu_floor, min_reduction)
        memory = _recommended(
            used.memory_gib, workload.memory_request_gib, headroom, memory_step_gib, memory_floor_gib, min_reduction
        )
        price_factor = 1 - spot_discount if workload.capacity == "spot" else 1.0
        saving = price_factor * monthly_capacity_cost(
            workload.replicas, workload.cpu_request - cpu, workload.memory_request_gib - memory, price
        )
        resize = cpu < workload.cpu_request or memory < workload.memory_request_gib
        rows.append(
            row
            | {
                "status": "resize" if resize else "keep",
                "cpu_used": used.cpu_cores,
                "memory_used_gib": used.memory_gib,
                "cpu_recommended": cpu,
                "memory_recommended_gib": memory,
                "monthly_saving": saving,
            }
        )
    order = {"resize": 0, "keep": 1, "no_data": 2}
    return sorted(rows, key=lambda r: (order[r["status"]], -r.get("monthly_saving", 0.0), r["workload"], r["region"]))


def _recommended(
    used: float, request: float, headroom: float, step: float, floor: float, min_reduction: float
) -> float:
    candidate = max(floor, round_up_to_step(used * (1 + headroom), step))
    return candidate if candidate <= request * (1 - min_reduction) + 1e-9 else request


def savings_total(spot: list[dict], sizing: list[dict], spot_discount: float) -> dict[str, float]:
    """Monthly savings of both analyses together, without counting twice what they share.

    Rule: total = spot savings + right-sizing savings - overlap. A workload in both is right-sized first,
    then moved to spot; the spot saving then applies to the smaller cost, so its spot saving shrinks by
    (right-sizing saving x spot_discount): that is the overlap.
    """
    spot_total = sum(row["monthly_saving"] for row in spot)
    resized = {(row["workload"], row["region"]): row["monthly_saving"] for row in sizing if row["status"] == "resize"}
    sizing_total = sum(resized.values())
    overlap = sum(resized.get((row["workload"], row["region"]), 0.0) * spot_discount for row in spot)
    return {
        "spot_monthly": spot_total,
        "right_sizing_monthly": sizing_total,
        "overlap_monthly": overlap,
        "monthly": spot_total + sizing_total - overlap,
    }
