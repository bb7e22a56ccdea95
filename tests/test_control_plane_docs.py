"""docs/control-plane.md states Route 53's backstop timing; its figures are those of the catalogues and of the
defaults of terraform/modules/dns, so the page cannot drift from them."""

from __future__ import annotations

import re

import pytest

from include.catalogue import load_catalogue
from tests.conftest import REPO_ROOT

PAGE = REPO_ROOT / "docs" / "control-plane.md"
ROW = re.compile(r"^\| `(?P<source>[^`]+)`[^|]*\| (\d+) s \| (\d+) \| (\d+) s \| (\d+) s \| (\d+) s \|$", re.MULTILINE)
DNS_MODULE = "terraform/modules/dns"


def documented() -> dict[str, tuple[int, ...]]:
    """Source -> (interval, threshold, TTL, out of answers, clients moved), from the page's table."""
    return {
        match["source"]: tuple(int(value) for value in match.groups()[1:]) for match in ROW.finditer(PAGE.read_text())
    }


def module_default(name: str) -> int:
    """The default of variable ``name`` in terraform/modules/dns/variables.tf."""
    text = (REPO_ROOT / DNS_MODULE / "variables.tf").read_text()
    block = re.search(rf'variable "{name}" \{{(.*?)\n\}}', text, re.DOTALL)
    assert block, f"{DNS_MODULE} has no variable {name}"
    return int(re.search(r"^\s*default\s*=\s*(\d+)\s*$", block[1], re.MULTILINE)[1])


def expected(interval: int, threshold: int, ttl: int) -> tuple[int, ...]:
    return interval, threshold, ttl, interval * threshold, interval * threshold + ttl


def test_the_page_has_a_row_for_each_source():
    assert set(documented()) == {"config/regions.yaml", "config/regions.example-cloud.yaml", DNS_MODULE}


@pytest.mark.parametrize("catalogue", ["config/regions.yaml", "config/regions.example-cloud.yaml"])
def test_the_figures_are_the_catalogues(catalogue):
    dns = load_catalogue(REPO_ROOT / catalogue).dns
    assert documented()[catalogue] == expected(dns.health_check_interval, dns.health_check_failure_threshold, dns.ttl)


def test_the_figures_are_the_dns_modules_defaults():
    defaults = [module_default(name) for name in ("health_check_interval", "health_check_failure_threshold", "ttl")]
    assert documented()[DNS_MODULE] == expected(*defaults)
