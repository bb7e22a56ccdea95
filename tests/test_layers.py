"""The layers import only downward: dags -> the Airflow layer -> the domain -> cloud access -> errors.

Read from the source (``ast``), so a lazy import inside a function counts as much as one at the top.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
INCLUDE = REPO_ROOT / "include"

AIRFLOW_LAYER = ("include.airflow",)
DOMAIN = (
    "include.replication",
    "include.failover",
    "include.health",
    "include.cost",
    "include.serving",
    "include.alerts",
    "include.wiring",
    "include.monitoring",
    "include.html_templates",
)
CLOUD_ACCESS = ("include.clouds", "include.state")
FOUNDATION = ("include.catalogue", "include.errors")
NEVER_FROM_PRODUCT = ("dags", "plugins", "localdev", "tests", "benchmarks")

# What each layer may import from this repository; anything else is an upward (or sideways-out) arrow.
ALLOWED = {
    AIRFLOW_LAYER: AIRFLOW_LAYER + DOMAIN + CLOUD_ACCESS + FOUNDATION,
    DOMAIN: DOMAIN + CLOUD_ACCESS + FOUNDATION,
    CLOUD_ACCESS: CLOUD_ACCESS + FOUNDATION,
    ("include.catalogue",): ("include.catalogue", "include.errors"),
    ("include.errors",): (),
}


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """Every absolute module an ``import`` or ``from ... import`` in the file names."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def within(module: str, packages: tuple[str, ...]) -> bool:
    return any(module == package or module.startswith(package + ".") for package in packages)


def layer_of(module: str) -> tuple[str, ...]:
    [layer] = [layer for layer in ALLOWED if within(module, layer)]
    return layer


PRODUCT_FILES = sorted(INCLUDE.rglob("*.py"))


def test_every_product_module_belongs_to_one_layer():
    for path in PRODUCT_FILES:
        if path == INCLUDE / "__init__.py":
            continue
        layer_of(module_name(path))  # raises if none or several


@pytest.mark.parametrize("path", PRODUCT_FILES, ids=lambda path: str(path.relative_to(REPO_ROOT)))
def test_imports_point_only_downward(path):
    module = module_name(path)
    if module == "include":
        return
    allowed = ALLOWED[layer_of(module)]
    upward = sorted(
        name
        for name in imported_modules(path)
        if within(name, NEVER_FROM_PRODUCT) or (name.startswith("include.") and not within(name, allowed))
    )
    assert upward == [], f"{module} imports above its layer: {upward}"


def test_dag_files_import_no_fixtures():
    for path in sorted((REPO_ROOT / "dags").glob("*.py")):
        fixtures = sorted(name for name in imported_modules(path) if within(name, NEVER_FROM_PRODUCT))
        assert fixtures == [], f"{path.name} imports {fixtures}"


def test_no_product_module_exceeds_500_lines():
    long = {
        str(path.relative_to(REPO_ROOT)): n for path in PRODUCT_FILES if (n := len(path.read_text().splitlines())) > 500
    }
    assert long == {}
