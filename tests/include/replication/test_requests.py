"""Unit tests of replication requests: trigger ``conf``, registry events (MLflow, SageMaker) and merging."""

from __future__ import annotations

import json
import logging

import pytest

from include.catalogue import load_catalogue
from include.errors import InvalidRequest
from include.replication.pipeline import requests_of_run
from include.replication.requests import ReplicationRequest, from_conf, from_registry_event
from include.replication.requests import merge_requests as merge

CATALOGUE = load_catalogue()
AWS, GCP, AZURE = "aws-us-west-2", "gcp-europe-west1", "azure-eastus"
KNOWN = "aws-us-west-2, gcp-europe-west1, azure-eastus"
NOON = "2026-05-01T12:00:00+00:00"
NOON_MS = 1777636800000


def conf_error(conf) -> str:
    with pytest.raises(InvalidRequest) as excinfo:
        from_conf(CATALOGUE, conf)
    return str(excinfo.value)


def mlflow(source="s3://mlp-models-us-west-2/models/fraud/3", tags=None, action="created", **data) -> dict:
    return {
        "entity": "model_version",
        "action": action,
        "timestamp": NOON_MS,
        "data": {"name": "fraud", "version": "3", "source": source, "tags": tags or {}, **data},
    }


def sagemaker(status="Approved", url="s3://mlp-models-us-west-2/models/churn/3/model.tar.gz", region="us-west-2"):
    return {
        "source": "aws.sagemaker",
        "detail-type": "SageMaker Model Package State Change",
        "region": region,
        "time": "2026-05-01T12:00:00Z",
        "detail": {
            "ModelPackageGroupName": "churn",
            "ModelPackageVersion": 3,
            "ModelApprovalStatus": status,
            "InferenceSpecification": {"Containers": [{"ModelDataUrl": url}]},
        },
    }


def event_error(body) -> str:
    with pytest.raises(InvalidRequest) as excinfo:
        from_registry_event(CATALOGUE, body)
    return str(excinfo.value)


# --- conf ---------------------------------------------------------------------------------------------------


def test_conf_defaults_source_primary_and_all_other_targets():
    request = from_conf(CATALOGUE, {"model": "fraud", "version": 3})
    assert request == ReplicationRequest("fraud", "3", AWS, (GCP, AZURE), None, "manual")


def test_conf_explicit_source_and_targets():
    request = from_conf(CATALOGUE, {"model": "fraud", "version": "3", "source_region": GCP, "targets": [AZURE]})
    assert (request.source_region, request.targets) == (GCP, (AZURE,))


def test_conf_source_defaults_targets_exclude_it():
    assert from_conf(CATALOGUE, {"model": "m", "version": "1", "source_region": AZURE}).targets == (AWS, GCP)


def test_conf_unknown_field_rejected():
    assert "unknown field(s) ['modle']" in conf_error({"model": "m", "version": "1", "modle": "x"})


@pytest.mark.parametrize("missing", ["model", "version"])
def test_conf_missing_model_or_version(missing):
    conf = {"model": "m", "version": "1"}
    del conf[missing]
    assert conf_error(conf) == f"{missing}: required field is missing"


def test_conf_empty_model_is_missing():
    assert conf_error({"model": "", "version": "1"}) == "model: required field is missing"


def test_conf_bad_model_name_rejected():
    assert "model name '../x'" in conf_error({"model": "../x", "version": "1"})


def test_conf_not_a_dict_rejected():
    assert conf_error(["model"]) == "conf must be a JSON object"


def test_unknown_source_names_it_and_lists_known():
    message = conf_error({"model": "m", "version": "1", "source_region": "aws-mars-1"})
    assert message.startswith("source_region:")
    assert "'aws-mars-1'" in message and KNOWN in message


def test_unknown_target_names_it_and_lists_known():
    message = conf_error({"model": "m", "version": "1", "targets": [GCP, "gcp-moon1"]})
    assert message.startswith("targets:")
    assert "'gcp-moon1'" in message and KNOWN in message


def test_target_equal_to_source_rejected():
    assert conf_error({"model": "m", "version": "1", "targets": [AWS]}) == f"targets: {AWS!r} is the source region"


def test_duplicate_target_rejected():
    assert "listed twice" in conf_error({"model": "m", "version": "1", "targets": [GCP, GCP]})


@pytest.mark.parametrize("targets", [GCP, {"region": GCP}, [GCP, 3]])
def test_targets_must_be_a_list_of_names(targets):
    assert conf_error({"model": "m", "version": "1", "targets": targets}).startswith("targets: expected a list")


# --- event_time ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["2026-05-01T12:00:00Z", "2026-05-01T14:00:00+02:00", "2026-05-01T12:00:00", NOON_MS, NOON_MS // 1000],
    ids=["iso-z", "iso-offset", "iso-naive-is-utc", "epoch-ms", "epoch-s"],
)
def test_event_time_parsed_to_utc_iso(value):
    assert from_conf(CATALOGUE, {"model": "m", "version": "1", "event_time": value}).event_time == NOON


@pytest.mark.parametrize("value", ["yesterday", "2026-13-01", [1], float("nan")])
def test_bad_event_time_named(value):
    assert conf_error({"model": "m", "version": "1", "event_time": value}).startswith("event_time:")


def test_bool_event_time_rejected():
    conf_error({"model": "m", "version": "1", "event_time": True})


# --- MLflow -------------------------------------------------------------------------------------------------


def test_mlflow_created_from_s3_bucket():
    request = from_registry_event(CATALOGUE, json.dumps(mlflow()))
    assert request == ReplicationRequest("fraud", "3", AWS, (GCP, AZURE), NOON, "mlflow")


@pytest.mark.parametrize(
    ("source", "region"),
    [
        ("gs://mlp-models-europe-west1/models/fraud/3", GCP),
        ("azure://mlp-models/models/fraud/3", AZURE),
        ("s3://mlp-models-us-west-2/models/fraud/3", AWS),
    ],
)
def test_mlflow_source_region_from_bucket(source, region):
    assert from_registry_event(CATALOGUE, mlflow(source)).source_region == region


def test_mlflow_source_region_from_tag():
    request = from_registry_event(CATALOGUE, mlflow("file:///tmp/mlruns/1", tags={"mlp.source_region": GCP}))
    assert (request.source_region, request.targets) == (GCP, (AWS, AZURE))


def test_mlflow_unknown_bucket_rejected():
    message = event_error(mlflow("s3://someone-elses-bucket/models/fraud/3"))
    assert "'s3://someone-elses-bucket/models/fraud/3'" in message and "mlp.source_region" in message


def test_mlflow_int_version_accepted():
    assert from_registry_event(CATALOGUE, mlflow(version=4)).version == "4"


@pytest.mark.parametrize(("entity", "action"), [("model_version", "deleted"), ("registered_model", "created")])
def test_mlflow_other_actions_ignored(entity, action):
    body = mlflow(action=action)
    body["entity"] = entity
    assert from_registry_event(CATALOGUE, body) is None


def test_mlflow_data_must_be_object():
    body = mlflow()
    body["data"] = "fraud/3"
    assert "'data' must be an object" in event_error(body)


def test_mlflow_tags_as_list_rejected_cleanly():
    event_error(mlflow(tags=[{"key": "mlp.source_region", "value": GCP}]))


# --- SageMaker ----------------------------------------------------------------------------------------------


def test_sagemaker_approved_is_a_request():
    request = from_registry_event(CATALOGUE, json.dumps(sagemaker()))
    assert request == ReplicationRequest("churn", "3", AWS, (GCP, AZURE), NOON, "sagemaker")


@pytest.mark.parametrize("status", ["PendingManualApproval", "Rejected", None])
def test_sagemaker_not_approved_ignored(status):
    assert from_registry_event(CATALOGUE, sagemaker(status)) is None


def test_sagemaker_other_detail_type_ignored():
    body = sagemaker()
    body["detail-type"] = "SageMaker Training Job State Change"
    assert from_registry_event(CATALOGUE, body) is None


def test_sagemaker_region_fallback_for_unknown_bucket():
    assert from_registry_event(CATALOGUE, sagemaker(url="s3://sagemaker-us-west-2-1234/x.tar.gz")).source_region == AWS


def test_sagemaker_unknown_bucket_and_region_rejected():
    assert "'eu-central-1'" in event_error(sagemaker(url="s3://other/x.tar.gz", region="eu-central-1"))


def test_sagemaker_malformed_containers_rejected_cleanly():
    body = sagemaker()
    body["detail"]["InferenceSpecification"]["Containers"] = ["s3://mlp-models-us-west-2/x"]
    event_error(body)


# --- bad bodies ---------------------------------------------------------------------------------------------


def test_non_json_body_rejected():
    assert event_error("{oops").startswith("event body is not JSON")


@pytest.mark.parametrize("body", ["[1, 2]", '"text"', "3"])
def test_non_object_body_rejected(body):
    assert event_error(body) == "event body must be a JSON object"


def test_unrecognised_shape_rejected():
    assert "neither an MLflow" in event_error({"Records": []})


# --- merge ----------------------------------------------------------------------------------------------------


def test_merge_collapses_duplicates():
    early = ReplicationRequest("m", "1", AWS, (GCP,), "2026-05-01T12:00:00+00:00", "mlflow")
    late = ReplicationRequest("m", "1", AWS, (AZURE, GCP), "2026-05-01T12:05:00+00:00", "sagemaker")
    assert merge([late, early]) == [ReplicationRequest("m", "1", AWS, (AZURE, GCP), early.event_time, "sagemaker")]


def test_merge_keeps_known_event_time():
    request = ReplicationRequest("m", "1", AWS, (GCP,), None)
    timed = ReplicationRequest("m", "1", AWS, (GCP,), NOON)
    assert merge([request, timed])[0].event_time == NOON


def test_merge_keeps_versions_apart():
    one, two = ReplicationRequest("m", "1", AWS, (GCP,)), ReplicationRequest("m", "2", AWS, (GCP,))
    assert merge([one, two, one]) == [one, two]


# --- requests_of_run ------------------------------------------------------------------------------------------


def test_run_skips_bad_event_and_keeps_good(caplog):
    bodies = ["{oops", json.dumps(mlflow()), json.dumps(sagemaker("PendingManualApproval"))]
    with caplog.at_level(logging.INFO, logger="include.replication.pipeline"):
        requests = requests_of_run(CATALOGUE, {}, bodies)
    assert [(r.model, r.version) for r in requests] == [("fraud", "3")]
    assert "skipped a registry event" in caplog.text


def test_run_merges_duplicate_events():
    retried = mlflow()
    retried["timestamp"] = NOON_MS + 60_000
    requests = requests_of_run(CATALOGUE, {}, [json.dumps(retried), json.dumps(mlflow())])
    assert len(requests) == 1 and requests[0].event_time == NOON


def test_run_without_events_uses_conf_dropping_empty_values():
    conf = {"model": "fraud", "version": "3", "source_region": None, "targets": [], "event_time": ""}
    assert requests_of_run(CATALOGUE, conf, []) == [ReplicationRequest("fraud", "3", AWS, (GCP, AZURE))]


def test_run_bad_conf_fails():
    with pytest.raises(InvalidRequest, match="version: required"):
        requests_of_run(CATALOGUE, {"model": "fraud", "version": None}, [])


def test_run_skips_malformed_event_without_failing_batch():
    bad = mlflow(tags=["not", "a", "dict"])
    assert len(requests_of_run(CATALOGUE, {}, [json.dumps(bad), json.dumps(sagemaker())])) == 1
