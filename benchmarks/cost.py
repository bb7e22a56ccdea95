"""Cost benchmark: normalising GCP billing-export rows to FOCUS, ours (pyarrow) beside DuckDB, in one run.

Generates ``--rows`` rows (default 10 million) of the BigQuery billing export with
``localdev.synthetic_billing.gcp_export_rows`` (nested service, sku, location, usage, a credits array and labels
on every row, billed in EUR) and writes them once to a Parquet file. Then, each in a fresh subprocess so that
its peak RSS is its own, for 1 thread and for every core:

- ours: ``include.cost.focus.normalise_gcp`` (credits netted, EUR converted, labels to Tags, categories);
- reference: DuckDB running the same normalisation as SQL over the same Arrow table.

Both read the Parquet file first (not timed), normalise once (timed, cold: the first pass in the process), and
report rows per second, the RSS once the input is read, the peak RSS of the process and the total BilledCost,
which must agree. The goal is at least a million rows per second per
core. Run from the repository root:

    .venv/bin/python benchmarks/cost.py [--rows 10000000]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

GOAL_ROWS_PER_SECOND_PER_CORE = 1_000_000
EUR_RATE = 1.08

DUCKDB_NORMALISATION = """
SELECT
    (cost + coalesce(list_sum([c.amount for c in credits]), 0)) * rate AS BilledCost,
    (cost + coalesce(list_sum([c.amount for c in credits]), 0)) * rate AS EffectiveCost,
    coalesce(cost_at_list, cost) * rate AS ListCost,
    cost * rate AS ContractedCost,
    'USD' AS BillingCurrency,
    billing_account_id AS BillingAccountId,
    usage_start_time AS ChargePeriodStart,
    usage_end_time AS ChargePeriodEnd,
    CASE cost_type WHEN 'regular' THEN 'Usage' WHEN 'tax' THEN 'Tax' ELSE 'Adjustment' END AS ChargeCategory,
    sku.description AS ChargeDescription,
    'Google Cloud' AS ProviderName,
    service.description AS ServiceName,
    coalesce(categories.category, 'Other') AS ServiceCategory,
    CASE WHEN lower(location.region) IN ('', 'global', 'noregion', 'unassigned', 'unknown') THEN NULL
         ELSE lower(location.region) END AS RegionId,
    location.location AS RegionName,
    location.zone AS AvailabilityZone,
    resource.global_name AS ResourceId,
    resource.name AS ResourceName,
    project.id AS SubAccountId,
    project.name AS SubAccountName,
    usage.amount_in_pricing_units AS PricingQuantity,
    usage.pricing_unit AS PricingUnit,
    usage.amount AS ConsumedQuantity,
    usage.unit AS ConsumedUnit,
    CASE WHEN cost_type <> 'regular' THEN NULL
         WHEN sku.description LIKE '%Spot%' OR sku.description LIKE '%Preemptible%' THEN 'Dynamic'
         WHEN sku.description LIKE 'Commitment%' THEN 'Committed' ELSE 'Standard' END AS PricingCategory,
    sku.id AS SkuId,
    map_from_entries(labels) AS Tags,
    'gcp' AS x_Provider,
    currency AS x_SourceCurrency,
    rate AS x_ExchangeRate,
    cost + coalesce(list_sum([c.amount for c in credits]), 0) AS x_SourceBilledCost,
    coalesce(list_sum([c.amount for c in credits]), 0) * rate AS x_Credits,
    cost_at_list IS NOT NULL AS x_ListCostKnown,
    sku.description AS x_SkuDescription
FROM export
JOIN rates USING (currency)
LEFT JOIN categories ON categories.service_name = export.service.description
"""


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_engine(engine: str, path: str, threads: int) -> dict:
    """One measurement, in this process: read the file, normalise it, report time, peak RSS and the total."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    pa.set_cpu_count(threads)
    pa.set_io_thread_count(threads)
    table = pq.read_table(path)
    rss_with_input = _peak_rss_mib()
    if engine == "ours":
        from include.cost.focus import ExchangeRates, normalise_gcp

        started = time.perf_counter()
        result = normalise_gcp(table, ExchangeRates("USD", {"EUR": EUR_RATE})).table
        seconds = time.perf_counter() - started
    else:
        import duckdb

        from include.cost.focus import SERVICE_CATEGORIES

        connection = duckdb.connect(config={"threads": threads})
        rates = pa.table({"currency": ["USD", "EUR"], "rate": [1.0, EUR_RATE]})
        categories = pa.table({"service_name": list(SERVICE_CATEGORIES), "category": list(SERVICE_CATEGORIES.values())})
        connection.register("export", table)
        connection.register("rates", rates)
        connection.register("categories", categories)
        started = time.perf_counter()
        result = connection.sql(DUCKDB_NORMALISATION).to_arrow_table()
        seconds = time.perf_counter() - started
    return {
        "engine": engine,
        "threads": threads,
        "rows": result.num_rows,
        "columns": result.num_columns,
        "seconds": seconds,
        "billed_cost": pc.sum(result["BilledCost"]).as_py(),
        "peak_rss_mib": _peak_rss_mib(),
        "rss_with_input_mib": rss_with_input,
    }


def measure(engine: str, path: Path, threads: int) -> dict:
    """``run_engine`` in a fresh interpreter, so that its peak RSS is its own."""
    answer = subprocess.run(
        [sys.executable, __file__, "--measure", engine, "--file", str(path), "--threads", str(threads)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(answer.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000, help="rows to generate (default 10 million)")
    parser.add_argument("--measure", choices=["ours", "duckdb"], help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(run_engine(args.measure, args.file, args.threads)))
        return 0

    import pyarrow.parquet as pq

    from localdev.synthetic_billing import gcp_export_rows, gcp_min_rows_per_hour

    fewest = gcp_min_rows_per_hour()
    if args.rows < fewest:
        parser.error(f"--rows must be at least {fewest} (one hour of the generated export), not {args.rows}")
    cores = os.cpu_count() or 1
    hours = min(90 * 24, args.rows // fewest)  # 90 days, fewer hours when the rows do not fill them
    with tempfile.TemporaryDirectory(prefix="mlp-bench-cost-") as tmp:
        path = Path(tmp) / "export.parquet"
        started = time.perf_counter()
        table = gcp_export_rows(datetime(2026, 8, 1, tzinfo=UTC), hours, -(-args.rows // hours), seed=7)
        table = table.slice(0, args.rows)
        pq.write_table(table, path)
        print(
            f"generated {table.num_rows:,} GCP billing-export rows ({path.stat().st_size / 2**20:,.0f} MiB Parquet) "
            f"in {time.perf_counter() - started:.1f}s; {cores} core(s)"
        )
        table_rows = table.num_rows
        del table
        results = [measure(engine, path, threads) for threads in sorted({1, cores}) for engine in ("ours", "duckdb")]
    print()
    print(
        f"{'engine':<8}{'threads':>8}{'seconds':>10}{'rows/s':>14}{'rows/s/core':>14}"
        f"{'RSS with input':>16}{'peak RSS':>12}{'BilledCost':>16}"
    )
    for r in results:
        rate = r["rows"] / r["seconds"]
        print(
            f"{r['engine']:<8}{r['threads']:>8}{r['seconds']:>10.2f}{rate:>14,.0f}{rate / r['threads']:>14,.0f}"
            f"{r['rss_with_input_mib']:>12,.0f} MiB{r['peak_rss_mib']:>8,.0f} MiB{r['billed_cost']:>16,.2f}"
        )
    totals = {round(r["billed_cost"], 2) for r in results}
    by = {(r["engine"], r["threads"]): r["rows"] / r["seconds"] for r in results}
    single = by[("ours", 1)]
    print()
    print(f"totals agree: {'yes' if len(totals) == 1 else 'NO: ' + str(sorted(totals))}")
    print(
        f"ours vs DuckDB, 1 thread: {single / by[('duckdb', 1)]:.2f}x; {cores} threads: "
        f"{by[('ours', cores)] / by[('duckdb', cores)]:.2f}x (above 1: ours is faster)"
    )
    met = single >= GOAL_ROWS_PER_SECOND_PER_CORE
    print(
        f"Headline: {single:,.0f} rows/s normalised on one core, {table_rows:,} rows "
        f"(goal: at least {GOAL_ROWS_PER_SECOND_PER_CORE:,}): {'met' if met else 'NOT met'}"
    )
    return 0 if len(totals) == 1 else 1


if __name__ == "__main__":
    sys.exit(main())
