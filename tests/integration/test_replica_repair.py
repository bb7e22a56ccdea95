"""Repair on report against the three local regions: a report is recorded ``corrupt`` and the copy repaired.

The DAG's asset watcher and serving's side run under the real scheduler in tests/e2e; here the two steps of
``replica_repair`` run as plain functions on reports shaped as serving sends them.
"""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from include.catalogue import load_catalogue
from include.clouds.objectstore import store_for
from include.replication.pipeline import copy, verify
from include.replication.repair import record_reports, repair_version
from include.replication.replicate import register_model_version
from include.replication.reports import CorruptReport
from include.replication.status import StatusStore

pytestmark = pytest.mark.integration


def replicated(model: str) -> tuple[bytes, object]:
    """A one-file version registered in the primary and replicated to both other regions."""
    catalogue = load_catalogue()
    weights = os.urandom(256 * 1024)
    manifest = register_model_version(catalogue.primary, model, "1", {"model.bin": weights})
    item = {"model": model, "version": "1", "source_region": catalogue.primary.name,
            "targets": ["gcp-europe-west1", "azure-eastus"], "event_time": None}  # fmt: skip
    verify(catalogue, copy(catalogue, item, "test"), "test")
    return weights, manifest


def report_of(model: str, region: str, expected: str, landed: bytes) -> str:
    return CorruptReport(model, "1", region, "model.bin", expected, hashlib.sha256(landed).hexdigest()).to_json()


def row_of(model: str, region: str):
    return next(r for r in StatusStore.from_connection("mlp_state").rows(model, "1") if r.region == region)


def test_reported_corruption_is_recorded_then_repaired(local_clouds):
    catalogue = load_catalogue()
    weights, manifest = replicated("reported")
    gcs = store_for(catalogue.region("gcp-europe-west1"))
    key = manifest.key("model.bin")
    tampered = bytes(b ^ 0xFF for b in weights[:64]) + weights[64:]
    gcs.put_bytes(key, tampered, gcs.head(key).metadata)  # bytes changed at rest, metadata kept
    expected = manifest.files[0].sha256
    body = report_of("reported", "gcp-europe-west1", expected, tampered)

    versions = record_reports(catalogue, [body, body])  # the same report twice: one repair

    assert versions == [{"model": "reported", "version": "1", "source_region": "aws-us-west-2",
                         "regions": ["gcp-europe-west1"]}]  # fmt: skip
    row = row_of("reported", "gcp-europe-west1")
    assert row.state == "corrupt"
    assert hashlib.sha256(tampered).hexdigest() in row.message and expected in row.message

    findings = repair_version(catalogue, versions[0])

    assert {(f.region, f.state, f.repaired) for f in findings} == {
        ("aws-us-west-2", "ok", False),
        ("gcp-europe-west1", "corrupt", True),
        ("azure-eastus", "ok", False),
    }
    assert gcs.get_bytes(key) == weights
    row = row_of("reported", "gcp-europe-west1")
    assert row.state == "verified" and "audit repaired a corrupt copy: model.bin" in row.message


def test_a_false_report_changes_nothing_but_the_status(local_clouds):
    catalogue = load_catalogue()
    weights, manifest = replicated("false-alarm")
    azure = store_for(catalogue.region("azure-eastus"))
    etag = azure.head(manifest.key("model.bin")).etag
    body = report_of("false-alarm", "azure-eastus", manifest.files[0].sha256, b"what a flaky read saw")

    [version] = record_reports(catalogue, [body])
    assert row_of("false-alarm", "azure-eastus").state == "corrupt"
    findings = repair_version(catalogue, version)

    assert all(f.state == "ok" and not f.repaired for f in findings)
    assert azure.head(manifest.key("model.bin")).etag == etag  # not rewritten
    row = row_of("false-alarm", "azure-eastus")
    assert row.state == "verified" and "reported corrupt by serving, but every file reads back" in row.message


def report_body(region: str, path: str) -> str:
    fields = {"kind": "replica_corrupt", "model": "m", "version": "1", "region": region, "path": path,
              "expected_sha256": "a" * 64, "actual_sha256": "b" * 64}  # fmt: skip
    return json.dumps(fields)


@pytest.mark.parametrize(
    ("body", "skipped_because"),
    [
        ("not json", "report is not JSON"),
        (report_body("mars-1", "model.bin"), "region 'mars-1' is not in the catalogue"),
        (report_body("azure-eastus", "../x"), "disallowed segment '..'"),
    ],
)
def test_bad_reports_are_skipped_by_name(local_clouds, caplog, body, skipped_because):
    assert record_reports(load_catalogue(), [body]) == []
    assert skipped_because in caplog.text
