"""The dependency audit's verdict (.ci/audit.py) on pip-audit's JSON reports.

pip-audit itself cannot reach vulnerability data from this machine (the PyPI mirror serves no per-version JSON,
and OSV is out of reach), so these tests feed the verdict reports in pip-audit's JSON format, written by hand.
"""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("ci_audit", ROOT / ".ci" / "audit.py")
audit = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(audit)

CLEAN = {"name": "jinja2", "version": "3.1.6", "vulns": []}
VULNERABLE = {
    "name": "requests",
    "version": "2.31.0",
    "vulns": [{"id": "GHSA-9wx4-h78v-vm56", "fix_versions": ["2.32.0"], "aliases": ["CVE-2024-35195"]}],
}
NOT_FOUND = {"name": "a2wsgi", "skip_reason": "Dependency not found on PyPI and could not be audited: a2wsgi (1.10.10)"}


def test_clean_pins_pass_and_say_how_many_were_audited():
    lines, status = audit.verdict({"requirements.lock": {"dependencies": [CLEAN], "fixes": []}})
    assert status == 0
    assert lines == ["1 pins audited: 0 known vulnerabilities, 0 pins not audited"]


def test_a_vulnerable_pin_fails_naming_the_pin_the_id_and_the_fix():
    lines, status = audit.verdict({"requirements.lock": {"dependencies": [CLEAN, VULNERABLE], "fixes": []}})
    assert status == 1
    assert lines[0] == "requests==2.31.0 (requirements.lock): GHSA-9wx4-h78v-vm56 (fixed in 2.32.0)"


def test_a_pin_that_could_not_be_audited_beside_audited_ones_fails():
    lines, status = audit.verdict({"requirements.lock": {"dependencies": [CLEAN, NOT_FOUND], "fixes": []}})
    assert status == 1
    assert lines[0].startswith("not audited: a2wsgi (requirements.lock): Dependency not found")


@pytest.mark.parametrize(("allow", "status", "level"), [(False, audit.UNREACHABLE, "error"), (True, 0, "warning")])
def test_no_pin_audited_means_the_data_is_out_of_reach(allow, status, level):
    reports = {"requirements.lock": {"dependencies": [NOT_FOUND, NOT_FOUND], "fixes": []}}
    lines, got = audit.verdict(reports, allow_unreachable=allow)
    assert got == status
    assert lines == [
        f"{level}: none of the 2 pins could be audited, so the vulnerability data is out of reach from this "
        f"machine; the first: {NOT_FOUND['name']} (requirements.lock): {NOT_FOUND['skip_reason']}"
    ]


def test_ignores_need_a_reason(tmp_path):
    ignores = tmp_path / "ignores.txt"
    ignores.write_text("# comment\nGHSA-1 fixed upstream only in 3.x, which Airflow 3.3 cannot take yet\n\n")
    assert audit.read_ignores(ignores) == {"GHSA-1": "fixed upstream only in 3.x, which Airflow 3.3 cannot take yet"}
    ignores.write_text("GHSA-2\n")
    with pytest.raises(SystemExit, match=r"ignores.txt:1: GHSA-2 has no reason"):
        audit.read_ignores(ignores)


def test_the_checked_in_ignores_file_reads():
    assert all(reason for reason in audit.read_ignores().values())
