"""The installable package carries what the platform reads at run time besides Python: templates, migrations,
and the Airflow plugins' entry points. Built as a wheel from a copy of the tree, as an image build would."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile

import pytest

from tests.test_layers import REPO_ROOT


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    source, out = tmp_path_factory.mktemp("source"), tmp_path_factory.mktemp("wheel")
    shutil.copy(REPO_ROOT / "pyproject.toml", source)
    for package in ("include", "localdev"):
        shutil.copytree(REPO_ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", str(source), "-w", str(out)],
        check=True,
        capture_output=True,
    )
    (built,) = out.glob("*.whl")
    return zipfile.ZipFile(built)


@pytest.fixture(scope="module")
def wheel_names(wheel) -> set[str]:
    return set(wheel.namelist())


def test_the_cost_report_templates_are_in_the_wheel(wheel_names):
    templates = {f"include/cost/templates/{path.name}" for path in (REPO_ROOT / "include/cost/templates").iterdir()}
    assert templates and templates <= wheel_names


def test_the_platform_view_templates_are_in_the_wheel(wheel_names):
    folder = REPO_ROOT / "include/airflow/ui/templates"
    templates = {f"include/airflow/ui/templates/{path.name}" for path in folder.iterdir()}
    assert templates and templates <= wheel_names


def test_the_state_migrations_are_in_the_wheel(wheel_names):
    migrations = REPO_ROOT / "include/state/migrations"
    shipped = {str(path.relative_to(REPO_ROOT)) for path in migrations.rglob("*") if path.suffix in (".py", ".mako")}
    assert shipped and shipped <= wheel_names


def test_the_ui_plugins_are_registered_by_entry_point(wheel, wheel_names):
    (entry_points,) = [name for name in wheel_names if name.endswith(".dist-info/entry_points.txt")]
    text = wheel.read(entry_points).decode()
    assert "[airflow.plugins]" in text
    assert "include.airflow.ui.replication_status:ReplicationStatusPlugin" in text
    assert "include.airflow.ui.cost_report:CostReportPlugin" in text
    assert "include.airflow.ui.platform_view:PlatformViewPlugin" in text
