"""Each benchmark runs on a fresh clone as benchmarks/README.md says, at a small size, and ends on its headline.

The figures at these sizes say nothing about performance (that is benchmarks/README.md's job); what is tested
is that each script provides what it needs itself (emulators, state database, connections) and finishes with
one line naming its figure and whether its goal is met.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.integration

HEADLINE = re.compile(r"^Headline: .+\(goal: .+\): (met|NOT met)$")


def run_benchmark(*argv: str) -> list[str]:
    """Run a benchmark as its README does, in an environment without the tests' Airflow settings."""
    env = {name: value for name, value in os.environ.items() if not name.startswith(("AIRFLOW", "MLP_"))}
    done = subprocess.run(
        [sys.executable, *argv], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return done.stdout.strip().splitlines()


def test_replication_sizes_run_without_a_platform():
    lines = run_benchmark("benchmarks/replication.py", "--sizes", "4,8")
    assert re.match(r"^\s+8\s", lines[-2]), lines[-3:]  # the table's last row is the largest size
    assert HEADLINE.match(lines[-1]), lines[-1]
    assert "for 4, 8 MiB" in lines[-1]


def test_replication_sizes_with_every_region_on_azurite():
    lines = run_benchmark("benchmarks/replication.py", "--sizes", "4", "--azurite-only")
    assert any(line.startswith("every region on Azurite: ") for line in lines), lines
    assert HEADLINE.match(lines[-1]), lines[-1]
    assert "for 4 MiB" in lines[-1]


@pytest.mark.skipif(shutil.which("rclone") is None, reason="needs rclone on PATH (.ci/run installs it from Debian)")
def test_replication_against_rclone_runs_without_a_platform():
    lines = run_benchmark("benchmarks/replication.py", "--size-mib", "8")
    assert any(line.startswith("rclone ") for line in lines), lines
    assert HEADLINE.match(lines[-1]), lines[-1]
    assert "for 8 MiB to 2 regions" in lines[-1]


def test_cost_runs_at_a_small_size():
    lines = run_benchmark("benchmarks/cost.py", "--rows", "20000")
    assert "totals agree: yes" in lines
    assert HEADLINE.match(lines[-1]), lines[-1]
    assert "20,000 rows" in lines[-1]


def test_health_scale_runs_without_a_platform():
    lines = run_benchmark("benchmarks/health_scale.py", "--regions", "4", "--seconds", "10", "--interval", "1")
    assert any(line.startswith("reference: 3 regions x 3 vantage points") for line in lines), lines
    assert any(line.startswith("4 regions: 4 regions x 3 vantage points") for line in lines), lines
    assert HEADLINE.match(lines[-1]), lines[-1]
    assert "probe interval holds at 4 regions: " in lines[-1]


def test_control_plane_restore_runs_without_a_platform():
    lines = run_benchmark("benchmarks/control_plane.py", "--versions", "20")
    assert any(line.startswith("Check: ") and line.endswith("equals the backup: True") for line in lines), lines
    assert HEADLINE.match(lines[-1]), lines[-1]
    assert lines[-1].startswith("Headline: from nothing to a control plane that has taken over in ")
