"""The object stores import only their own cloud's client: a replica's memory is its parts, not unused libraries."""

from __future__ import annotations

import subprocess
import sys

from tests.test_layers import REPO_ROOT

IMPORTED_BY_A_GCS_STORE = """
import sys
from include.clouds.hooks.gcs import GCSEndpointHook
import include.clouds.objectstore
bigquery = {name for name in sys.modules if "bigquery" in name}
print(" ".join(sorted({name.split(".")[0] for name in sys.modules} | bigquery)))
"""


def test_a_gcs_object_store_imports_neither_bigquery_nor_pandas():
    """BigQuery's hook pulls in pandas (about 80 MiB resident); the GCS store must not load it."""
    done = subprocess.run(
        [sys.executable, "-c", IMPORTED_BY_A_GCS_STORE], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    top_level = set(done.stdout.split())
    assert "google" in top_level
    assert "pandas" not in top_level
    assert not [name for name in top_level if "bigquery" in name]
