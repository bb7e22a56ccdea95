"""The trigger forms' Params refuse a bad conf before a run exists; the first task refuses an undeclared field.

A conf is validated here as Airflow validates a triggered run's: each field resolved against its ``Param``
(``ParamsDict``), then every Param for a value (``ParamsDict.validate``), without a server.
"""

from __future__ import annotations

import copy

import pytest
from airflow.sdk.exceptions import ParamValidationError

from include.airflow.run_conf import check_conf_fields
from include.catalogue import load_catalogue
from include.errors import InvalidConf, PermanentError
from tests.integration.helpers import parse_dag, task_states

REGIONS = [region.name for region in load_catalogue().regions]
DAG_FILES = {
    "model_replication": "model_replication.py",
    "model_rollback": "model_rollback.py",
    "manual_failover": "manual_failover.py",
    "platform_wiring": "platform_wiring.py",
    "platform_backup": "platform_backup.py",
    "cost_report": "cost_report.py",
    "airflow_db_cleanup": "airflow_db_cleanup.py",
    "replication_audit": "replication_audit.py",
}


@pytest.fixture(scope="module")
def dags():
    return {dag_id: parse_dag(file_name, dag_id) for dag_id, file_name in DAG_FILES.items()}


def validate(dag, conf: dict) -> dict:
    """``conf`` resolved against ``dag``'s Params as the trigger endpoint does; raises ``ParamValidationError``."""
    params = copy.deepcopy(dag.params)
    for name, value in conf.items():
        params[name] = value
    return params.validate()


GOOD = [
    ("model_replication", {}),  # a registry event's run
    ("model_replication", {"model": "fraud-detector", "version": "3", "source_region": REGIONS[1]}),
    ("model_replication", {"model": "m.v2_x", "version": "2026.01-rc1", "targets": REGIONS[1:]}),
    ("model_rollback", {"model": "iris-classifier", "version": "1", "regions": [], "reason": "v2 misclassifies"}),
    ("manual_failover", {"region": REGIONS[2], "action": "failback", "reason": "maintenance done"}),
    ("platform_wiring", {"regions": [REGIONS[0]]}),
    ("platform_backup", {"regions": []}),
    ("platform_backup", {"regions": REGIONS[:2], "retention_days": 1}),
    ("cost_report", {"lookback_days": 400}),
    ("airflow_db_cleanup", {"retention_days": 1}),
    ("replication_audit", {"repair": False}),
]

BAD = [  # (dag, conf, the field named, what the error says)
    ("model_replication", {"model": "fraud detector", "version": "3"}, "model", "does not match"),
    ("model_replication", {"model": "fraud-detector", "version": "3/../4"}, "version", "does not match"),
    ("model_replication", {"model": "fraud-detector", "version": "3..4"}, "version", "does not match"),
    ("model_replication", {"model": "", "version": "3"}, "model", ""),
    ("model_replication", {"model": "a" * 129, "version": "3"}, "model", "does not match"),
    ("model_replication", {"model": "fraud-detector", "version": 3}, "version", "is not of type"),
    ("model_replication", {"source_region": "mars-north1"}, "source_region", "is not one of"),
    ("model_replication", {"targets": ["mars-north1"]}, "targets", "is not one of"),
    ("model_replication", {"targets": [REGIONS[1], REGIONS[1]]}, "targets", "non-unique"),
    ("model_rollback", {"model": "iris-classifier", "reason": "v2 misclassifies"}, "version", "No value passed"),
    ("model_rollback", {"version": "1", "reason": "v2 misclassifies"}, "model", "No value passed"),
    ("model_rollback", {"model": "iris-classifier", "version": "1"}, "reason", "No value passed"),
    ("model_rollback", {"model": "../etc", "version": "1", "reason": "typo"}, "model", "does not match"),
    ("model_rollback", {"model": "m", "version": "1", "reason": "x", "regions": []}, "reason", "is too short"),
    ("model_rollback", {"model": "m", "version": "1", "reason": "why", "regions": ["eu"]}, "regions", "is not one of"),
    ("manual_failover", {"region": "gcp-europe-west2", "reason": "maintenance"}, "region", "is not one of"),
    ("manual_failover", {"action": "drain", "reason": "maintenance"}, "action", "is not one of"),
    ("manual_failover", {"strategy": "fast", "reason": "maintenance"}, "strategy", "is not one of"),
    ("manual_failover", {"region": REGIONS[1]}, "reason", "No value passed"),
    ("platform_wiring", {"regions": ["mars-north1"]}, "regions", "is not one of"),
    ("platform_wiring", {"regions": "aws-us-west-2"}, "regions", "is not of type"),
    ("platform_backup", {"regions": [REGIONS[0]]}, "regions", "is not valid under any of the given schemas"),
    ("platform_backup", {"regions": [REGIONS[0], "mars-north1"]}, "regions", "is not one of"),
    ("platform_backup", {"retention_days": 0}, "retention_days", "less than the minimum"),
    ("cost_report", {"lookback_days": 401}, "lookback_days", "greater than the maximum"),
    ("cost_report", {"lookback_days": "7"}, "lookback_days", "is not of type"),
    ("airflow_db_cleanup", {"retention_days": -3}, "retention_days", "less than the minimum"),
    ("replication_audit", {"repair": "no"}, "repair", "is not of type"),
]


@pytest.mark.parametrize(("dag_id", "conf"), GOOD, ids=[f"{d}-{i}" for i, (d, _) in enumerate(GOOD)])
def test_a_good_conf_validates(dags, dag_id, conf):
    resolved = validate(dags[dag_id], conf)
    assert {name: resolved[name] for name in conf} == conf


@pytest.mark.parametrize(
    ("dag_id", "conf", "field", "says"), BAD, ids=[f"{d}-{f}-{i}" for i, (d, _, f, _) in enumerate(BAD)]
)
def test_a_bad_conf_is_refused_naming_the_field(dags, dag_id, conf, field, says):
    with pytest.raises(ParamValidationError, match=f"^Invalid input for param {field}: ") as refused:
        validate(dags[dag_id], conf)
    assert says in str(refused.value)


def test_every_default_validates_so_scheduled_and_event_runs_start(dags):
    for dag_id, dag in dags.items():
        if dag_id not in ("model_rollback", "manual_failover"):  # these two are only ever triggered with a conf
            validate(dag, {})


def test_the_region_fields_list_the_catalogue_s_regions(dags):
    assert dags["manual_failover"].params.get_param("region").schema["enum"] == REGIONS
    assert dags["model_replication"].params.get_param("source_region").schema["enum"] == REGIONS
    lists = [("model_replication", "targets"), ("model_rollback", "regions"), ("platform_wiring", "regions")]
    for dag_id, name in [*lists, ("platform_backup", "regions")]:
        assert dags[dag_id].params.get_param(name).schema["items"]["enum"] == REGIONS, dag_id


def test_an_undeclared_field_is_refused_naming_it_and_the_declared_ones():
    with pytest.raises(InvalidConf, match=r"conf field\(s\) 'reigon' not declared by this DAG; its fields are"):
        check_conf_fields({"reigon": "aws-us-west-2", "reason": "maintenance"}, ["reason", "region"])
    assert issubclass(InvalidConf, PermanentError)  # fails the task at once, no retries
    check_conf_fields({"region": "aws-us-west-2"}, ["reason", "region"])
    check_conf_fields(None, ["region"])


def test_a_long_undeclared_field_is_quoted_cut_short():
    with pytest.raises(InvalidConf) as refused:
        check_conf_fields({"x" * 10_000: 1}, ["region"])
    assert "(10002 characters)" in str(refused.value) and len(str(refused.value)) < 200


def test_the_first_task_fails_on_an_undeclared_field_without_touching_a_cloud(airflow_db):
    """platform_wiring's select_regions refuses ``region`` (for ``regions``) before any probe runs."""
    dag_run = parse_dag("platform_wiring.py", "platform_wiring").test(run_conf={"region": [REGIONS[0]]})
    assert dag_run.state == "failed"
    assert task_states(dag_run) == {"select_regions": "failed", "probe": "upstream_failed", "report": "upstream_failed"}


def test_the_cleanup_fails_at_once_on_an_undeclared_field(airflow_db):
    """``retention`` (for ``retention_days``) fails ``clean`` on its first try, though it has two retries."""
    dag_run = parse_dag("airflow_db_cleanup.py", "airflow_db_cleanup").test(run_conf={"retention": 7})
    assert dag_run.state == "failed"
    (clean,) = dag_run.get_task_instances()
    assert (clean.task_id, clean.state, clean.try_number) == ("clean", "failed", 1)
