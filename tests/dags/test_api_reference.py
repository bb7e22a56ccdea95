"""The REST API reference (docs/api/dags.md, docs/api/dags/) against the DAGs it documents, without a server."""

from __future__ import annotations

import json

import jsonschema
import pytest

from include.airflow.api_reference import (
    PAGE,
    REFERENCE_DIR,
    REGENERATE,
    conf_schema,
    curl_command,
    generated_files,
    load_examples,
    render_page,
    triggerable_dags,
)
from include.catalogue import REPO_ROOT

EXAMPLES = load_examples()
TRIGGERS = [example for example in EXAMPLES if example["section"] != "errors"]


@pytest.fixture(scope="module")
def dags():
    return triggerable_dags()


@pytest.fixture(scope="module")
def schemas(dags):
    return {dag_id: conf_schema(dag) for dag_id, dag in dags.items()}


def test_the_triggerable_dags_are_those_with_params(dags):
    assert sorted(dags) == [
        "airflow_db_cleanup",
        "cost_report",
        "manual_failover",
        "model_replication",
        "model_rollback",
        "platform_backup",
        "platform_wiring",
        "replication_audit",
    ]


def test_checked_in_files_are_what_the_dags_generate():
    stale = [
        str(path.relative_to(REPO_ROOT))
        for path, text in generated_files().items()
        if not path.exists() or path.read_text() != text
    ]
    assert stale == [], f"out of date: {stale}; regenerate them with `{REGENERATE}`"


def test_no_schema_file_is_left_for_a_dag_that_is_gone(schemas):
    files = {path.name for path in REFERENCE_DIR.glob("*.schema.json")}
    assert files == {f"{dag_id}.schema.json" for dag_id in schemas}


def test_a_param_without_default_is_required_and_defaults_are_kept(schemas):
    rollback = schemas["model_rollback"]
    assert rollback["required"] == ["model", "version", "reason"]
    assert rollback["properties"]["regions"]["default"] == []
    assert schemas["model_replication"]["required"] == []  # registry events start it without a conf
    assert schemas["model_replication"]["properties"]["model"]["default"] is None


def test_every_dag_has_a_successful_and_a_refused_example(schemas):
    for dag_id in schemas:
        statuses = {example["status"] for example in TRIGGERS if example["dag_id"] == dag_id}
        assert {200, 400} <= statuses, dag_id


@pytest.mark.parametrize("example", TRIGGERS, ids=lambda example: example["id"])
def test_each_example_conf_is_judged_by_its_schema_file_as_airflow_judged_it(example):
    """The schema files say the same as Airflow's answers: a 200 conf is valid, a 400 conf is not."""
    schema = json.loads((REFERENCE_DIR / f"{example['dag_id']}.schema.json").read_text())
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors(example["body"]["conf"]))
    if example["status"] == 200:
        assert errors == []
    else:
        field = example["response"]["detail"].removeprefix("Invalid input for param ").split(":")[0]
        # a field's own error has its path; a missing required field is named in the message: "'reason' is a ..."
        named = {str(error.path[0]) if error.path else error.message.split("'")[1] for error in errors}
        assert field in named, errors


def test_the_page_shows_every_example_and_every_dag_s_fields(schemas):
    page = PAGE.read_text()
    for example in EXAMPLES:
        assert curl_command(example) in page, example["id"]
    for dag_id in schemas:
        assert f"<!-- generated: fields {dag_id} -->" in page


def test_a_marker_for_a_dag_that_does_not_exist_is_refused(schemas):
    with pytest.raises(ValueError, match="no triggerable DAG 'model_replicaton'"):
        render_page("<!-- generated: fields model_replicaton -->\n<!-- end generated -->", schemas, EXAMPLES)
