"""Every example of docs/api/dags.md sent to a real Airflow API server on loopback, with its documented answer.

The server runs as the local platform runs it (``localdev.airflow_local``: SQLite after ``airflow db migrate``,
this repository's dags/ serialised with ``airflow dags reserialize``, the simple auth manager) with two users:
``admin`` and ``viewer``, whose role may read DAGs but not trigger them. No scheduler runs, so a run an example
creates stays queued and nothing is executed.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from include.airflow.api_reference import example_path, load_examples
from include.catalogue import DEFAULT_CATALOGUE
from localdev.airflow_local import ADMIN_USER, local_secrets
from localdev.api import AirflowClient
from tests.integration.api_server import api_server_alone

pytestmark = pytest.mark.integration

VIEWER_USER = "viewer"
EXAMPLES = load_examples()
# Fields of a created DAG run that differ on every trigger (times, the DAG version's id); every other field of
# the documented response is compared.
VOLATILE_RUN_FIELDS = {"queued_at", "run_after", "last_scheduling_decision", "dag_versions"}
LOG_ID = re.compile(r"look for ID \w+")


@dataclass(frozen=True)
class ApiServer:
    url: str
    tokens: dict[str | None, str | None]  # user (None: no token) -> bearer token


def expired_token(token: str, secret: str) -> str:
    """``token`` signed again with the same key and claims, but expired a minute ago."""
    import jwt

    algorithm = jwt.get_unverified_header(token)["alg"]
    claims = jwt.decode(token, options={"verify_signature": False})
    now = int(time.time())
    return jwt.encode(claims | {"iat": now - 3600, "nbf": now - 3600, "exp": now - 60}, secret, algorithm=algorithm)


@pytest.fixture(scope="module")
def api_server(tmp_path_factory) -> Iterator[ApiServer]:
    """``airflow api-server`` on a free loopback port, its DAGs serialised; the tokens of each kind of caller."""
    state = tmp_path_factory.mktemp("api-reference")
    users = {VIEWER_USER: ("viewer", "viewer-test-password")}
    with api_server_alone(state, {}, DEFAULT_CATALOGUE, users) as settings:
        admin = AirflowClient(settings.api_url, ADMIN_USER, local_secrets(state)["admin_password"]).token
        yield ApiServer(
            settings.api_url,
            {
                "admin": admin,
                "viewer": AirflowClient(settings.api_url, VIEWER_USER, users[VIEWER_USER][1]).token,
                "expired": expired_token(admin, local_secrets(state)["jwt_secret"]),
                None: None,
            },
        )


def send(server: ApiServer, example: dict) -> tuple[int, object]:
    """POST the example's body as its user; the HTTP status and the JSON body of the answer."""
    headers = {"Content-Type": "application/json"}
    if token := server.tokens[example["user"]]:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(
        server.url + example_path(example), data=json.dumps(example["body"]).encode(), headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def comparable(body: object) -> object:
    """A response body without the fields that differ on every trigger, and with the error id of a 409's message
    (which names the API server's log line) replaced by ``<id>``."""
    if isinstance(body, dict):
        return {key: comparable(value) for key, value in body.items() if key not in VOLATILE_RUN_FIELDS}
    if isinstance(body, str):
        return LOG_ID.sub("look for ID <id>", body)
    return body


@pytest.fixture(scope="module")
def answers(api_server) -> dict[str, tuple[int, object]]:
    """Every example sent once, in the file's order (the 409 example reuses a run id an earlier one created)."""
    return {example["id"]: send(api_server, example) for example in EXAMPLES}


def test_every_documented_example_gets_its_documented_answer(answers):
    wrong = {
        example["id"]: answers[example["id"]]
        for example in EXAMPLES
        if answers[example["id"]][0] != example["status"]
        or comparable(answers[example["id"]][1]) != comparable(example["response"])
    }
    assert wrong == {}, "answers that differ from docs/api/dags/examples.json (status, body): " + json.dumps(
        wrong, indent=2
    )


def test_a_refused_conf_creates_no_run(api_server, answers):
    """A 400 comes before the run exists: each DAG has exactly the runs its 200 examples created."""
    headers = {"Authorization": f"Bearer {api_server.tokens['admin']}"}
    for dag_id in sorted({example["dag_id"] for example in EXAMPLES if example["status"] == 400}):
        request = urllib.request.Request(f"{api_server.url}/api/v2/dags/{dag_id}/dagRuns", headers=headers)
        with urllib.request.urlopen(request, timeout=30) as response:
            run_ids = {run["dag_run_id"] for run in json.load(response)["dag_runs"]}
        created = {e["body"]["dag_run_id"] for e in EXAMPLES if e["dag_id"] == dag_id and e["status"] == 200}
        assert run_ids == created, dag_id
