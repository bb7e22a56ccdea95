"""Fixtures shared by the integration tests."""

from __future__ import annotations

import gc

import pytest


@pytest.fixture(scope="session")
def chaos_regions(local_clouds, tmp_path_factory):
    """A real serving process per region, each behind a chaos proxy (see ``failover_harness``)."""
    from tests.integration.failover_harness import ChaosRegions

    served = ChaosRegions(tmp_path_factory.mktemp("chaos"))
    # This process holds Airflow and three clouds' SDKs; a full garbage collection pauses it for ~200 ms,
    # which the probes it runs would count as the regions' latency. Freeze what exists now out of the GC.
    gc.collect()
    gc.freeze()
    yield served
    served.close()
