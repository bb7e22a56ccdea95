"""What every DAG of the platform shares: its owner, a fixed start date, and retries with backoff."""

from __future__ import annotations

from datetime import timedelta

import pendulum

OWNER = "ml-platform"
START_DATE = pendulum.datetime(2026, 1, 1, tz="UTC")


def default_args(retries: int, retry_delay: timedelta, max_retry_delay: timedelta = timedelta(minutes=5)) -> dict:
    """Task defaults: the platform's owner and ``retries`` retries, each delay doubling up to ``max_retry_delay``."""
    return {
        "owner": OWNER,
        "retries": retries,
        "retry_delay": retry_delay,
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": max_retry_delay,
    }
