"""The README's platform command end to end: ``python -m localdev up``, a DAG run triggered through the REST
API under a real scheduler, the demo model replicated by a registry event through the asset watcher,
duplicate events that copy nothing, a region killed and failed over by the health watch and failover_moves and
failed back when it returns, a graceful drain that survives the scheduler's death in its middle, the failover
benchmark for one trial, the lifecycle benchmark for one rollout and one corruption
repaired on serving's report, a rollback through ``model_rollback``, ``up`` again (no change), and ``down``
(every process gone)."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid

import pytest
import yaml

from localdev.api import AirflowAPIError, AirflowClient
from localdev.processes import ProcessTable, port_owner
from tests.conftest import REPO_ROOT
from tests.localdev.cli import isolated_env, localdev

pytestmark = pytest.mark.e2e


def production_settings() -> dict[str, str]:
    """A database of its own on the machine's PostgreSQL and a Redis database no demo uses."""
    return {"MLP_AIRFLOW_DB": f"mlp_e2e_{uuid.uuid4().hex[:8]}", "MLP_REDIS_URL": "redis://127.0.0.1:6379/13"}


def drop_database(name: str) -> None:
    import psycopg2

    conn = psycopg2.connect("postgresql://postgres@127.0.0.1:5432/postgres")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    conn.close()


def wait_for(condition, timeout: float, what: str):
    """Poll ``condition`` until it returns something truthy; return that."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := condition():
            return result
        time.sleep(2)
    raise TimeoutError(f"{what}: not within {timeout:.0f} s")


def demo_status(client: AirflowClient) -> dict[str, dict]:
    """The demo model's status rows by region, from the replication status page's JSON."""
    return {row["region"]: row for row in client.get("/replication/api/status?model=iris-classifier&version=1")}


def platform_connections(state) -> dict[str, str]:
    """The ``AIRFLOW_CONN_*`` variables ``up`` wrote to ``connections.env``."""
    exports = [shlex.split(line)[1] for line in (state / "connections.env").read_text().splitlines()]
    return dict(assignment.split("=", 1) for assignment in exports)


def failover_status(env: dict[str, str], state) -> dict:
    """``python -m include.failover status --json`` against the running platform."""
    command = [sys.executable, "-m", "include.failover", "status", "--json", "--transitions", "50"]
    result = subprocess.run(
        command, cwd=REPO_ROOT, env=env | platform_connections(state), capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def check_failover_and_failback(client: AirflowClient, env: dict[str, str], state, topology: str) -> None:
    """Kill a region's serving process: the health watch switches DNS and failover_moves records the failover;
    start it again: it is failed back."""
    region = "azure-eastus"
    status = failover_status(env, state)
    assert {name: r["state"] for name, r in status["regions"].items()} == dict.fromkeys(status["regions"], "HEALTHY")
    assert set(status["dns"]["weights"].values()) == {100}
    killed_at, killed_at_wall = time.monotonic(), time.time()
    assert localdev(env, "region-down", region).returncode == 0
    wait_for(
        lambda: failover_status(env, state)["dns"]["weights"][region] == 0,
        timeout=120,
        what=f"Route 53 drained of {region}",
    )
    print(f"{topology}: {region} killed -> DNS switched in {time.monotonic() - killed_at:.1f} s")
    status = wait_for(  # the move is recorded right after its last DNS change
        lambda: (s := failover_status(env, state))["regions"][region]["state"] == "FAILOVER" and s,
        timeout=30,
        what=f"{region} recorded as FAILOVER",
    )
    assert region not in status["dns"]["latency_regions"] and region not in status["dns"]["failover"].values()
    runs = client.get("/api/v2/dags/failover_moves/dagRuns")["dag_runs"]
    assert {run["run_type"] for run in runs} == {"asset_triggered"}  # started by the health watch's reports

    def automatic_failover_made() -> dict | None:
        for run in client.get("/api/v2/dags/failover_moves/dagRuns")["dag_runs"]:
            tis = {ti["task_id"]: ti["state"] for ti in client.task_instances("failover_moves", run["dag_run_id"])}
            if tis.get("automatic_failover") == "success":
                return tis
        return None

    made = wait_for(automatic_failover_made, timeout=30, what="the automatic_failover task of failover_moves")
    assert made["graceful_failover"] == "skipped" and made["immediate_failover"] == "skipped", made

    assert localdev(env, "region-up", region).returncode == 0
    returned_at = time.monotonic()
    status = wait_for(
        lambda: (s := failover_status(env, state))["regions"][region]["state"] == "HEALTHY" and s,
        timeout=240,
        what=f"{region} failed back",
    )
    print(f"{topology}: {region} back -> failed back in {time.monotonic() - returned_at:.1f} s")
    assert set(status["dns"]["weights"].values()) == {100} and region in status["dns"]["latency_regions"]
    # A loaded machine can make a healthy region's probe slow for a round before the kill: a DEGRADED blip that
    # the machine rightly undoes. The path under test is the one the kill started.
    transitions = [t for t in status["transitions"] if t["region"] == region]
    for blip in (t for t in transitions if t["at"] < killed_at_wall):
        print(f"{topology}: before the kill {region} went {blip['from_state']} -> {blip['to_state']}: {blip['reason']}")
    path = [(t["from_state"], t["to_state"]) for t in transitions if t["at"] >= killed_at_wall]
    assert path == [
        ("HEALTHY", "DEGRADED"),
        ("DEGRADED", "UNHEALTHY"),
        ("UNHEALTHY", "FAILOVER"),
        ("FAILOVER", "RECOVERING"),
        ("RECOVERING", "HEALTHY"),
    ]


def check_drain_survives_scheduler_death(env: dict[str, str], state) -> None:
    """Kill the graceful region; SIGKILL the scheduler after the drain's first step and start it again 3 step
    pauses later: the drain goes on from where it stood (the step carried by the deferral) to FAILOVER, and
    Route 53 never has every weight at 0 or the region's weight going back up meanwhile."""
    region = "gcp-europe-west1"
    samples: list[dict[str, int]] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            samples.append(failover_status(env, state)["dns"]["weights"])
            time.sleep(0.5)

    assert localdev(env, "region-down", region).returncode == 0
    first_step = wait_for(
        lambda: 0 < (w := failover_status(env, state)["dns"]["weights"])[region] < 100 and w,
        timeout=120,
        what=f"the first drain step of {region}",
    )
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    assert localdev(env, "component-down", "airflow-scheduler").returncode == 0
    time.sleep(3 * 5)  # three of the local catalogue's step pauses without a scheduler
    stalled = failover_status(env, state)
    assert localdev(env, "component-up", "airflow-scheduler").returncode == 0
    status = wait_for(
        lambda: (s := failover_status(env, state))["regions"][region]["state"] == "FAILOVER" and s,
        timeout=180,
        what=f"the drain of {region} to finish after the scheduler's restart",
    )
    stop.set()
    sampler.join()
    print(f"drain of {region}: at {first_step[region]} when the scheduler died, {stalled['dns']['weights'][region]} "
          f"while it was down, finished after its restart")  # fmt: skip
    assert status["dns"]["weights"][region] == 0
    assert all(any(weight > 0 for weight in weights.values()) for weights in samples), samples
    region_weights = [weights[region] for weights in samples]
    assert region_weights == sorted(region_weights, reverse=True), region_weights  # only ever down
    assert localdev(env, "region-up", region).returncode == 0
    wait_for(
        lambda: failover_status(env, state)["regions"][region]["state"] == "HEALTHY",
        timeout=240,
        what=f"{region} failed back",
    )


def check_failover_benchmark(env: dict[str, str]) -> None:
    """``benchmarks/failover.py`` as benchmarks/README.md runs it, for one short trial on this platform."""
    command = [sys.executable, "benchmarks/failover.py", "--trials", "1", "--strategies", "automatic"]
    command += ["--pause-seconds", "10"]  # one kill: with the two failovers before it, the breaker's 3 an hour
    done = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    lines = done.stdout.strip().splitlines()
    assert any(line.startswith("  kill aws-us-west-2") for line in lines), lines
    headline = r"^Headline: automatic and immediate: median \d+\.\ds, worst .+\(goal: .+\): (met|NOT met)$"
    assert re.match(headline, lines[-1]), lines[-1]
    print(f"failover benchmark, one trial: {lines[-1]}")


def notify(env: dict[str, str], state) -> None:
    """Send the demo model's model_version.created event, as a registry retrying its webhook would."""
    connections = platform_connections(state)
    command = [sys.executable, "-m", "include.replication", "notify", "--model", "iris-classifier", "--version", "1"]
    subprocess.run(command, cwd=REPO_ROOT, env=env | connections, check=True, capture_output=True, timeout=60)


def check_event_driven_replication(client: AirflowClient, env: dict[str, str], state, topology: str) -> None:
    started = time.monotonic()
    rows = wait_for(
        lambda: (
            (status := demo_status(client))
            and all(status.get(r, {}).get("state") == "verified" for r in ("gcp-europe-west1", "azure-eastus"))
            and status
        ),
        timeout=180,
        what="the demo model replicated by its registry event",
    )
    print(f"{topology}: demo model verified in both regions {time.monotonic() - started:.1f} s after up")
    with pytest.raises(urllib.error.HTTPError) as anonymous:
        urllib.request.urlopen(f"{client.api_url}/replication/api/status", timeout=10)
    assert anonymous.value.code == 401

    with pytest.raises(AirflowAPIError, match="HTTP 400.*Invalid input for param model"):
        client.trigger("model_replication", {"model": "../etc", "version": "1"})

    runs_before = {r["dag_run_id"] for r in client.get("/api/v2/dags/model_replication/dagRuns")["dag_runs"]}
    notify(env, state)
    notify(env, state)
    new_runs = wait_for(
        lambda: [
            run
            for run in client.get("/api/v2/dags/model_replication/dagRuns")["dag_runs"]
            if run["dag_run_id"] not in runs_before and run["state"] in ("success", "failed")
        ],
        timeout=120,
        what="a run started by the duplicate events",
    )
    for run in new_runs:
        assert run["run_type"] == "asset_triggered" and run["state"] == "success"
        copies = [ti for ti in client.task_instances("model_replication", run["dag_run_id"]) if ti["task_id"] == "copy"]
        assert all(ti["state"] == "skipped" for ti in copies), copies  # nothing copied twice
    assert {r: row["verified_at"] for r, row in demo_status(client).items()} == {
        r: row["verified_at"] for r, row in rows.items()
    }


def check_demo_model_served(env: dict[str, str], state) -> None:
    """Every region serves the demo model's rolled-out version, signed with the local release key, whose
    private half stays out of the Airflow environment ``up`` wrote."""
    with open(env["MLP_REGION_CATALOGUE"]) as catalogue_file:
        regions = yaml.safe_load(catalogue_file)["regions"]
    for region in regions:
        with urllib.request.urlopen(region["serving_endpoint"] + "/ready", timeout=10) as answer:
            ready = json.loads(answer.read())
        assert (ready["version"], ready["signed_by"], ready["rollout"]["version"]) == ("1", "local-release-1", "1")
    assert (state / "release-keys" / "local-release-1.key").stat().st_mode & 0o077 == 0
    assert [path.name for path in (state / "trusted-keys").iterdir()] == ["local-release-1.pub"]
    assert "release-keys" not in (state / "connections.env").read_text()


def check_lifecycle_benchmark(env: dict[str, str]) -> None:
    """``benchmarks/lifecycle.py`` for one rollout and one corruption: a registry event rolls a new version out
    to every region, and a copy damaged at rest is reported by serving, repaired by replica_repair and served
    again, all under the real scheduler and triggerer."""
    command = [sys.executable, "benchmarks/lifecycle.py", "--rollouts", "1", "--corruptions", "1"]
    done = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    lines = done.stdout.strip().splitlines()
    assert any(re.match(r"^  rollout bench-\d+-00: every region serving after", line) for line in lines), lines
    assert any(line.startswith("  corrupt gcp-europe-west1 ") for line in lines), lines
    assert re.match(r"^Headline: p50 .+ serving again \(goal: .+\): (met|NOT met)$", lines[-1]), lines[-1]
    print(f"lifecycle benchmark, one trial each: {lines[-1]}")


def check_rollback(client: AirflowClient, env: dict[str, str]) -> None:
    """model_rollback, triggered through the REST API, points every region back at the demo model's version 1
    and serving follows; a version that is no finished replica is refused, and no pointer moves."""
    with open(env["MLP_REGION_CATALOGUE"]) as catalogue_file:
        endpoints = [region["serving_endpoint"] for region in yaml.safe_load(catalogue_file)["regions"]]

    def served_versions() -> set[str]:
        versions = set()
        for endpoint in endpoints:
            with urllib.request.urlopen(endpoint + "/ready", timeout=10) as answer:
                versions.add(json.loads(answer.read())["version"])
        return versions

    assert served_versions() != {"1"}, "the lifecycle benchmark rolled a newer version out"
    refused = client.trigger("model_rollback", {"model": "iris-classifier", "version": "404", "reason": "typo"})
    assert client.wait_for_run("model_rollback", refused) == "failed"
    before = served_versions()
    run_id = client.trigger("model_rollback", {"model": "iris-classifier", "version": "1", "reason": "e2e rollback"})
    assert client.wait_for_run("model_rollback", run_id) == "success"
    started = time.monotonic()
    wait_for(lambda: served_versions() == {"1"}, timeout=60, what="every region serving version 1 again")
    print(f"rollback: every region serves version 1 {time.monotonic() - started:.1f} s after the run (was {before})")


def check_cost_report(client: AirflowClient, topology: str) -> None:
    """``up`` unpaused cost_report; its first run, made by the scheduler, loads the seeded 90 days and reports."""
    started = time.monotonic()
    run = wait_for(
        lambda: next(
            (
                r
                for r in client.get("/api/v2/dags/cost_report/dagRuns")["dag_runs"]
                if r["state"] in ("success", "failed")
            ),
            None,
        ),
        timeout=240,
        what="the first cost_report run",
    )
    tis = {
        (ti["task_id"], ti["map_index"]): ti["state"] for ti in client.task_instances("cost_report", run["dag_run_id"])
    }
    assert run["state"] == "success" and run["run_type"] == "scheduled", (run, tis)
    assert {tis[("extract", i)] for i in range(3)} == {"success"}
    print(f"{topology}: first cost_report run finished {time.monotonic() - started:.1f} s after the check began")
    days = client.get("/cost/days.json")
    assert len(days) == 1
    report = client.get(f"/cost/day/{days[0]}/report.json")
    assert report["headline"]["day_cost"] > 0 and len(report["series"]["days"]) == 90
    assert {entry["provider"] for entry in report["totals"]["by_provider"]} == {"aws", "gcp", "azure"}
    with pytest.raises(urllib.error.HTTPError) as anonymous:
        urllib.request.urlopen(f"{client.api_url}/cost/days.json", timeout=10)
    assert anonymous.value.code == 401


@pytest.mark.timeout(1200)  # embedded runs every failover check and two benchmarks: about 10 minutes
@pytest.mark.parametrize("topology", ["embedded", "production"])
def test_up_trigger_wiring_dag_down(tmp_path, topology):
    state = tmp_path / "state"
    extra = production_settings() if topology == "production" else {}
    env = isolated_env(state, MLP_TOPOLOGY=topology, **extra)
    ports = [
        int(env[name])
        for name in (
            "MLP_MOTO_PORT",
            "MLP_AZURITE_PORT",
            "MLP_GCS_PORT",
            "MLP_BIGQUERY_PORT",
            "MLP_COST_MANAGEMENT_PORT",
            "MLP_AIRFLOW_PORT",
        )
    ]
    api_url = f"http://127.0.0.1:{env['MLP_AIRFLOW_PORT']}"
    table = ProcessTable(state / "run", state / "logs")
    try:
        started = time.monotonic()
        up = localdev(env, "up")
        assert up.returncode == 0, up.stdout + up.stderr
        print(f"{topology}: up in {time.monotonic() - started:.1f} s")
        assert f"Airflow UI    {api_url}" in up.stdout and "login: admin / " in up.stdout
        pids = {name: table.pid(name) for name in table.names()}
        assert len(pids) == (13 if topology == "production" else 12) and all(pids.values())

        password = json.loads((state / "secrets.json").read_text())["admin_password"]
        client = AirflowClient(api_url, "admin", password)
        client.wait_for_dag("platform_wiring")
        run_id = client.trigger("platform_wiring")
        started = time.monotonic()
        assert client.wait_for_run("platform_wiring", run_id) == "success"
        print(f"{topology}: platform_wiring run succeeded in {time.monotonic() - started:.1f} s")
        states = {
            (ti["task_id"], ti["rendered_map_index"]): ti["state"]
            for ti in client.task_instances("platform_wiring", run_id)
        }
        assert states == {
            ("select_regions", None): "success",
            ("probe", "aws-us-west-2"): "success",
            ("probe", "gcp-europe-west1"): "success",
            ("probe", "azure-eastus"): "success",
            ("report", None): "success",
        }

        check_event_driven_replication(client, env, state, topology)
        check_demo_model_served(env, state)
        check_cost_report(client, topology)

        again = localdev(env, "up")
        assert again.returncode == 0 and "already running; nothing changed" in again.stdout
        assert {name: table.pid(name) for name in table.names()} == pids

        if topology == "embedded":  # the same DAGs run in production; once is enough for the time it takes
            check_failover_and_failback(client, env, state, topology)
            check_drain_survives_scheduler_death(env, state)
            check_failover_benchmark(env)
            check_lifecycle_benchmark(env)
            check_rollback(client, env)
    finally:
        down = localdev(env, "down", timeout=120)
        if topology == "production":
            drop_database(extra["MLP_AIRFLOW_DB"])
    assert down.returncode == 0 and "Stopped:" in down.stdout
    assert table.names() == []
    assert [port for port in ports if port_owner(port)] == []
