"""Unit tests of replication lag per model version and the RPO check, over status rows built directly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from include.replication.audit import LagReport, replication_lag
from include.replication.status import StatusRow

EVENT = datetime(2026, 5, 1, 12, tzinfo=UTC)
RPO = timedelta(minutes=15)


def row(region: str, state: str, verified_after: timedelta | None = None, *, version="1", event=EVENT) -> StatusRow:
    verified_at = event + verified_after if verified_after is not None and event is not None else None
    return StatusRow(
        model="fraud",
        version=version,
        region=region,
        source_region="aws-us-west-2",
        state=state,
        sha256=None,
        bytes=None,
        event_time=event,
        updated_at=EVENT + timedelta(hours=1),
        verified_at=verified_at,
        run_id=None,
        message=None,
    )


def test_lag_is_max_over_targets():
    rows = [
        row("gcp-europe-west1", "verified", timedelta(minutes=3)),
        row("azure-eastus", "verified", timedelta(minutes=7)),
    ]
    assert replication_lag(rows) == [LagReport("fraud", "1", EVENT, 420.0, [])]


def test_pending_target_means_no_lag_yet():
    rows = [row("gcp-europe-west1", "verified", timedelta(minutes=3)), row("azure-eastus", "pending")]
    (report,) = replication_lag(rows)
    assert report.lag_seconds is None
    assert report.pending_regions == ["azure-eastus"]


def test_failed_and_copying_targets_count_as_pending():
    rows = [row("gcp-europe-west1", "failed"), row("azure-eastus", "copying")]
    assert replication_lag(rows)[0].pending_regions == ["gcp-europe-west1", "azure-eastus"]


def test_versions_reported_separately_and_sorted():
    rows = [
        row("azure-eastus", "verified", timedelta(minutes=2), version="2"),
        row("azure-eastus", "verified", timedelta(minutes=1), version="1"),
    ]
    assert [(r.version, r.lag_seconds) for r in replication_lag(rows)] == [("1", 60.0), ("2", 120.0)]


def test_naive_times_from_sqlite_are_utc():
    naive = EVENT.replace(tzinfo=None)
    (report,) = replication_lag([row("azure-eastus", "verified", timedelta(minutes=1), event=naive)])
    assert (report.event_time, report.lag_seconds) == (EVENT, 60.0)


def test_rows_without_event_time_ignored():
    assert replication_lag([row("azure-eastus", "verified", event=None)]) == []


@pytest.mark.parametrize(
    ("rows", "now", "exceeds"),
    [
        pytest.param([row("azure-eastus", "verified", timedelta(minutes=10))], EVENT + timedelta(hours=1), False,
                     id="verified-within-rpo"),
        pytest.param([row("azure-eastus", "verified", timedelta(minutes=20))], EVENT + timedelta(hours=1), True,
                     id="verified-after-20-min"),
        pytest.param([row("azure-eastus", "pending")], EVENT + timedelta(minutes=20), True,
                     id="pending-20-min-after-event"),
        pytest.param([row("azure-eastus", "pending")], EVENT + timedelta(minutes=1), False,
                     id="pending-1-min-after-event"),
    ],
)  # fmt: skip
def test_exceeds_rpo(rows, now, exceeds):
    (report,) = replication_lag(rows)
    assert report.exceeds(RPO, now) is exceeds


def test_exactly_at_rpo_does_not_exceed():
    (report,) = replication_lag([row("azure-eastus", "verified", RPO)])
    assert report.exceeds(RPO, EVENT + timedelta(days=1)) is False
