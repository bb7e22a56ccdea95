"""The dependency audit: every pin of the given lock files against the known vulnerabilities, with pip-audit.

``python .ci/audit.py [--allow-unreachable] LOCK...`` runs ``pip-audit --requirement LOCK --no-deps`` (a lock
already pins every dependency) against PyPI's vulnerability data and exits

- 0 when no pin has a known vulnerability, other than those ``.ci/audit-ignores.txt`` lists with a reason;
- 1 when one has (each is printed with its id and the versions that fix it), or when some pins could not be
  audited while others could;
- 3 when no pin could be audited: the vulnerability data is out of reach (a registry mirror that serves
  packages but not PyPI's per-version JSON, or no network). ``--allow-unreachable`` makes that a warning
  with exit 0, for machines that are known to have no route to it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

IGNORES_FILE = Path(__file__).with_name("audit-ignores.txt")
UNREACHABLE = 3


def read_ignores(path: Path = IGNORES_FILE) -> dict[str, str]:
    """The vulnerability ids to ignore, each with its reason (``<id> <reason>`` lines; ``#`` starts a comment)."""
    ignores = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        vuln_id, _, reason = line.partition(" ")
        if not reason.strip():
            raise SystemExit(f"error: {path}:{number}: {vuln_id} has no reason; say why it is ignored")
        ignores[vuln_id] = reason.strip()
    return ignores


def audit_lock(lock: Path, ignores: dict[str, str]) -> dict:
    """pip-audit's JSON report for one lock file."""
    with tempfile.NamedTemporaryFile(suffix=".json") as report:
        command = [sys.executable, "-m", "pip_audit", "--requirement", str(lock), "--no-deps", "--disable-pip",
                   "--vulnerability-service", "pypi", "--format", "json", "--output", report.name,
                   "--progress-spinner", "off"]  # fmt: skip
        for vuln_id in ignores:
            command += ["--ignore-vuln", vuln_id]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        text = Path(report.name).read_text()
        if not text:
            raise SystemExit(f"error: pip-audit wrote no report for {lock}:\n{done.stderr.strip()}")
        return json.loads(text)


def verdict(reports: dict[str, dict], allow_unreachable: bool = False) -> tuple[list[str], int]:
    """What to print and the exit status, from pip-audit's JSON report of each lock file."""
    found, skipped, audited = [], [], 0
    for lock, report in reports.items():
        for dependency in report["dependencies"]:
            if "skip_reason" in dependency:
                skipped.append(f"{dependency['name']} ({lock}): {dependency['skip_reason']}")
                continue
            audited += 1
            for vuln in dependency["vulns"]:
                fixes = ", ".join(vuln["fix_versions"]) or "no fixed version yet"
                found.append(f"{dependency['name']}=={dependency['version']} ({lock}): {vuln['id']} (fixed in {fixes})")
    if skipped and audited == 0:
        level = "warning" if allow_unreachable else "error"
        message = (f"{level}: none of the {len(skipped)} pins could be audited, so the vulnerability data is out "
                   f"of reach from this machine; the first: {skipped[0]}")  # fmt: skip
        return [message], 0 if allow_unreachable else UNREACHABLE
    lines = found + [f"not audited: {line}" for line in skipped]
    lines.append(f"{audited} pins audited: {len(found)} known vulnerabilities, {len(skipped)} pins not audited")
    return lines, 1 if found or skipped else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python .ci/audit.py", description=__doc__.splitlines()[0])
    parser.add_argument("locks", nargs="+", type=Path, metavar="LOCK")
    parser.add_argument("--allow-unreachable", action="store_true", help="no vulnerability data: warn, exit 0")
    args = parser.parse_args(argv)
    ignores = read_ignores()
    for vuln_id, reason in ignores.items():
        print(f"ignored {vuln_id}: {reason}")
    lines, status = verdict({str(lock): audit_lock(lock, ignores) for lock in args.locks}, args.allow_unreachable)
    print("\n".join(lines))
    return status


if __name__ == "__main__":
    sys.exit(main())
