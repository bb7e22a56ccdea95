"""Unit tests of the wiring check's pure parts: probe keys, probe payloads and the reachability report."""

from __future__ import annotations

import posixpath
import re
import zlib

import pytest

from include.wiring import PROBE_PREFIX, PROBE_SIZE, probe_key, probe_payload, reachability_report

RUN_ID = "manual__2026-11-24T05:01:43.498452+00:00"


def test_probe_key_is_fixed_per_run_and_region():
    """A retry of the same run and region writes the same key; other runs or regions do not."""
    key = probe_key(RUN_ID, "aws-us-west-2")
    assert key == probe_key(RUN_ID, "aws-us-west-2")
    assert key != probe_key(RUN_ID, "gcp-europe-west1")
    assert key != probe_key("scheduled__2026-11-24T00:00:00+00:00", "aws-us-west-2")


def test_probe_key_sanitises_run_id():
    """Colons and plus signs in Airflow run ids become underscores, tagged with a hash of the real run id."""
    key = probe_key(RUN_ID, "aws-us-west-2")
    assert re.fullmatch(
        r"_platform/wiring/manual__2026-11-24T05_01_43\.498452_00_00-[0-9a-f]{8}/aws-us-west-2\.bin", key
    )


def test_probe_key_keeps_run_ids_that_sanitise_alike_apart():
    assert len({probe_key(run_id, "aws-us-west-2") for run_id in ("a:b", "a~b", "a_b")}) == 3


@pytest.mark.parametrize("run_id", ["a/b/../../../etc", "run with spaces", "ü\n\t*?#%"])
def test_probe_key_has_no_extra_path_segments(run_id):
    """Slashes and other unsafe characters cannot add segments: the key is prefix/run/region.bin."""
    key = probe_key(run_id, "azure-eastus")
    prefix, safe_run_id, name = key.rsplit("/", 2)
    assert prefix == PROBE_PREFIX
    assert name == "azure-eastus.bin"
    assert re.fullmatch(r"[A-Za-z0-9_.-]+", safe_run_id)


# Airflow's default allowed_run_id_pattern accepts "." and "..": they must not become path segments.
@pytest.mark.parametrize("run_id", [".", ".."])
def test_probe_key_dot_run_ids_stay_under_prefix(run_id):
    key = probe_key(run_id, "azure-eastus")
    assert posixpath.normpath(key).startswith(PROBE_PREFIX + "/")
    assert posixpath.dirname(posixpath.normpath(key)) != PROBE_PREFIX


def test_probe_payload_is_deterministic_and_exact_size():
    payload = probe_payload(RUN_ID, "aws-us-west-2")
    assert payload == probe_payload(RUN_ID, "aws-us-west-2")
    assert len(payload) == PROBE_SIZE


@pytest.mark.parametrize("size", [0, 1, 31, 32, 33, 1000])
def test_probe_payload_honours_size(size):
    """Sizes that are not a multiple of the SHA-256 block are cut exactly; each is a prefix of the full one."""
    payload = probe_payload(RUN_ID, "aws-us-west-2", size=size)
    assert len(payload) == size
    assert probe_payload(RUN_ID, "aws-us-west-2").startswith(payload)


def test_probe_payload_differs_per_region_and_run():
    payloads = {
        probe_payload(RUN_ID, "aws-us-west-2"),
        probe_payload(RUN_ID, "gcp-europe-west1"),
        probe_payload("manual__other", "aws-us-west-2"),
    }
    assert len(payloads) == 3


def test_probe_payload_is_incompressible():
    """A compressing transport or store cannot make the round trip look faster than it is."""
    payload = probe_payload(RUN_ID, "azure-eastus")
    assert len(zlib.compress(payload, 9)) > 0.95 * len(payload)


def result(region: str, provider: str) -> dict:
    return {"region": region, "provider": provider, "write_ms": 12.5, "read_ms": 3.25, "sha256": "ab" * 32}


NAMES = ["aws-us-west-2", "gcp-europe-west1", "azure-eastus"]


def test_report_all_reachable():
    results = [result("aws-us-west-2", "aws"), result("gcp-europe-west1", "gcp"), result("azure-eastus", "azure")]
    table, unreachable = reachability_report(NAMES, results)
    assert unreachable == []
    header, *rows = table.splitlines()
    assert header.split() == ["region", "provider", "status", "write", "ms", "read", "ms", "sha256"]
    assert [row.split()[:3] for row in rows] == [
        ["aws-us-west-2", "aws", "reachable"],
        ["gcp-europe-west1", "gcp", "reachable"],
        ["azure-eastus", "azure", "reachable"],
    ]
    assert rows[0].split()[3:] == ["12.5", "3.25", "ab" * 8]
    assert "UNREACHABLE" not in table


def test_report_lists_missing_region_as_unreachable():
    table, unreachable = reachability_report(NAMES, [result("aws-us-west-2", "aws"), result("azure-eastus", "azure")])
    assert unreachable == ["gcp-europe-west1"]
    rows = table.splitlines()[1:]
    assert rows[1].split()[:2] == ["gcp-europe-west1", "UNREACHABLE"]
    assert "(see the probe task's log)" in rows[1]
    assert table.count("UNREACHABLE") == 1


def test_report_follows_given_region_order():
    """Rows and the unreachable list follow region_names, not the order results arrived in."""
    names = ["azure-eastus", "gcp-europe-west1", "aws-us-west-2", "aws-eu-west-1"]
    results = [result("aws-us-west-2", "aws"), result("azure-eastus", "azure")]
    table, unreachable = reachability_report(names, results)
    assert [row.split()[0] for row in table.splitlines()[1:]] == names
    assert unreachable == ["gcp-europe-west1", "aws-eu-west-1"]
