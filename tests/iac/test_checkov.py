"""checkov over every Terraform configuration under terraform/: no failed check, and no suppression without a reason.

checkov runs from its own virtualenv (.venv-iac) with ``--skip-download``: no policies or modules are fetched,
so the run is offline and the same on every machine. A check that does not fit may be suppressed in the
resource it flags with ``# checkov:skip=<ID>:<reason>``; the reason is required.
"""

from __future__ import annotations

import json
import re
import subprocess
from functools import cache
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
TERRAFORM = REPO_ROOT / "terraform"
CHECKOV = REPO_ROOT / ".venv-iac" / "bin" / "checkov"

SUPPRESSION = re.compile(r"checkov:skip=([^:\s]*)(?::(.*))?")


@cache
def checkov_reports() -> list[dict]:
    """checkov's JSON report of terraform/, one entry per framework, from one run per test session."""
    result = subprocess.run(
        [
            str(CHECKOV),
            "--directory",
            str(TERRAFORM),
            "--framework",
            "terraform",
            "--skip-download",
            "--compact",
            "--quiet",
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    # checkov exits 1 when a check fails, which the tests below report; anything else is checkov failing.
    assert result.returncode in (0, 1), f"checkov exited {result.returncode}:\n{result.stderr[-4000:]}"
    report = json.loads(result.stdout)
    return report if isinstance(report, list) else [report]


def terraform_files() -> list[Path]:
    return sorted(path for path in TERRAFORM.rglob("*.tf") if ".terraform" not in path.parts)


@pytest.mark.skipif(not CHECKOV.exists(), reason=".venv-iac is missing (make install creates it): it holds checkov")
def test_checkov_finds_no_failed_check_in_terraform():
    reports = checkov_reports()

    summaries = [report.get("summary", report) for report in reports]
    assert sum(summary["resource_count"] for summary in summaries) > 0, "checkov found no Terraform resources"
    assert all(summary["parsing_errors"] == 0 for summary in summaries), f"checkov could not parse: {summaries}"
    failures = [
        f"{check['check_id']} {check['resource']} "
        f"terraform{check['file_path']}:{check['file_line_range'][0]}-{check['file_line_range'][1]} "
        f"({check['check_name']})"
        for report in reports
        for check in report.get("results", {}).get("failed_checks", [])
    ]
    assert not failures, (
        f"checkov: {len(failures)} failed checks. Fix them, or suppress one in its resource with "
        "'# checkov:skip=<ID>:<reason>':\n" + "\n".join(failures)
    )


def test_every_checkov_suppression_gives_a_check_id_and_a_reason():
    suppressions = [
        (path, number, match)
        for path in terraform_files()
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        for match in SUPPRESSION.finditer(line)
    ]

    unexplained = [
        f"{path.relative_to(REPO_ROOT)}:{number}: {match.group(0)}"
        for path, number, match in suppressions
        if not re.fullmatch(r"CKV2?_[A-Z0-9]+_\d+", match.group(1)) or not (match.group(2) or "").strip()
    ]
    assert not unexplained, (
        "each suppression must read 'checkov:skip=<ID>:<why the check does not apply>':\n" + "\n".join(unexplained)
    )
