"""Daily multi-cloud cost: extract from each cloud's billing API, normalise to FOCUS 1.2, analyse, report.

- ``sources``: the table each extractor returns, one schema per cloud, in the source's own terms;
- ``extract``: AWS Cost Explorer, the GCP BigQuery billing export, Azure Cost Management ``Query``;
- ``focus``: the FOCUS 1.2 schema and the normalisers from each source table to it;
- ``store``: day-and-provider Parquet partitions in the platform's object store, written atomically;
- ``analysis``: spot candidates, right-sizing, anomalies, budgets;
- ``report``: the daily HTML and JSON report;
- ``synthetic``: realistic generated billing data for the local stand-ins, the demo and the benchmark.
"""
