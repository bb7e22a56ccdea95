"""A small client of the Airflow 3 REST API: log in, trigger a DAG run, wait for it to finish."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

FINISHED = ("success", "failed")


class AirflowAPIError(RuntimeError):
    """The REST API answered with an error; the message carries its status and body."""


class AirflowClient:
    """Calls ``/api/v2`` with a JWT from the simple auth manager's ``POST /auth/token``."""

    def __init__(self, api_url: str, username: str, password: str):
        self.api_url = api_url.rstrip("/")
        self.token = self._request("POST", "/auth/token", {"username": username, "password": password}, auth=False)[
            "access_token"
        ]

    def _request(self, method: str, path: str, body: dict | None = None, auth: bool = True) -> Any:
        headers = {"Content-Type": "application/json"}
        if auth:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(
            self.api_url + path,
            data=json.dumps(body).encode() if body is not None else None,
            headers=headers,
            method=method,
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return json.load(response)
        except urllib.error.HTTPError as exc:
            raise AirflowAPIError(f"{method} {path}: HTTP {exc.code}: {exc.read().decode(errors='replace')}") from None

    def get(self, path: str) -> Any:
        """``GET`` a path of the API server (``/api/v2/...`` or a plugin's) with the token."""
        return self._request("GET", path)

    def trigger(self, dag_id: str, conf: dict | None = None) -> str:
        """Start a run of ``dag_id`` (``POST /api/v2/dags/{dag_id}/dagRuns``); return its run id."""
        run = self._request("POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": conf or {}})
        return run["dag_run_id"]

    def unpause(self, dag_id: str) -> None:
        """Unpause ``dag_id`` (``PATCH /api/v2/dags/{dag_id}``)."""
        self._request("PATCH", f"/api/v2/dags/{dag_id}?update_mask=is_paused", {"is_paused": False})

    def reparse(self, dag_id: str) -> None:
        """Ask the dag-processor to parse ``dag_id``'s file now (``PUT /api/v2/parseDagFile/{file_token}``)."""
        token = self.get(f"/api/v2/dags/{dag_id}")["file_token"]
        self._request("PUT", f"/api/v2/parseDagFile/{token}")

    def run_state(self, dag_id: str, run_id: str) -> str:
        quoted = urllib.request.quote(run_id, safe="")
        return self.get(f"/api/v2/dags/{dag_id}/dagRuns/{quoted}")["state"]

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        quoted = urllib.request.quote(run_id, safe="")
        return self.get(f"/api/v2/dags/{dag_id}/dagRuns/{quoted}/taskInstances")["task_instances"]

    def wait_for_dag(self, dag_id: str, timeout: float = 120) -> None:
        """Wait until the dag-processor has parsed ``dag_id`` and it has no import error."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.get(f"/api/v2/dags/{dag_id}")
                return
            except AirflowAPIError:
                time.sleep(1)
        errors = self.get("/api/v2/importErrors")["import_errors"]
        raise AirflowAPIError(f"DAG {dag_id} did not appear within {timeout:.0f} s; import errors: {errors}")

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 300) -> str:
        """Poll the run until it succeeds or fails; return the final state."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.run_state(dag_id, run_id)
            if state in FINISHED:
                return state
            time.sleep(2)
        raise TimeoutError(f"run {run_id} of {dag_id} did not finish within {timeout:.0f} s")
