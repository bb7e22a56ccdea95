"""What every DAG of the platform shares: its owner, a fixed start date, retries with backoff, and pools."""

from __future__ import annotations

from datetime import timedelta

import pendulum

OWNER = "ml-platform"
START_DATE = pendulum.datetime(2026, 1, 1, tz="UTC")

REPLICATION_POOL = "model_replication"
COST_API_POOL = "cost_api"
DNS_MOVES_POOL = "mlp_dns_moves"
# Airflow pools the platform's tasks run in: name -> (slots, description). Created by the local platform and
# by docker-compose's airflow-init; create them the same way in other deployments.
POOLS = {
    REPLICATION_POOL: (4, "Concurrent model copies: bounds load on the cloud storage APIs"),
    COST_API_POOL: (2, "Concurrent billing-API extracts: Cost Explorer and Cost Management throttle per account"),
    DNS_MOVES_POOL: (1, "Traffic moves, one step at a time (with the state database's traffic lock)"),
}


def default_args(retries: int, retry_delay: timedelta, max_retry_delay: timedelta = timedelta(minutes=5)) -> dict:
    """Task defaults: the platform's owner and ``retries`` retries, each delay doubling up to ``max_retry_delay``."""
    return {
        "owner": OWNER,
        "retries": retries,
        "retry_delay": retry_delay,
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": max_retry_delay,
    }
