"""Run the platform on this machine: ``python -m localdev up | down | status | provision``.

``up`` starts the three emulated cloud regions and Airflow 3, all on 127.0.0.1, and prints how to log in.
Running it again while everything runs changes nothing. ``down`` stops every process ``up`` started, by PID.
State (PID files, logs, emulator data, Airflow home, the local release signing key, the serving processes'
trusted keys and their bearer token, ``serving-tokens``) lives in ``$MLP_STATE_DIR`` (default ``.local/``).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

from include.catalogue import catalogue_path, load_catalogue
from include.errors import CatalogueError
from include.serving.auth import ensure_token_file
from localdev.airflow_local import (
    ADMIN_USER,
    TOPOLOGIES,
    AirflowSettings,
    airflow_env,
    component_commands,
    local_secrets,
    prepare_backends,
    start_airflow,
    state_connection_env,
)
from localdev.demo import DEMO_MODEL, release_keys, trusted_keys_dir
from localdev.emulators import EmulatorPorts, connection_env, start_emulators
from localdev.processes import ProcessTable, StartupError, ensure_ports_free
from localdev.serving import serving_connection_env, serving_name, start_serving, token_file, wait_until_ready

REPO_ROOT = Path(__file__).resolve().parents[1]
EMULATORS = ["moto", "azurite", "fake-gcs", "bigquery", "cost-management"]
HEALTH_DAG = "failover_moves"  # unpaused, its asset watcher probes the regions
COST_DAG = "cost_report"


def _state_dir() -> Path:
    return Path(os.environ.get("MLP_STATE_DIR") or REPO_ROOT / ".local").resolve()


def _running_topology(state_dir: Path) -> str:
    """The topology ``up`` last started (``unknown`` if it never ran here)."""
    topology_file = state_dir / "topology"
    return topology_file.read_text().strip() if topology_file.exists() else "unknown"


def _table(state_dir: Path) -> ProcessTable:
    return ProcessTable(state_dir / "run", state_dir / "logs")


def _write_connections_file(state_dir: Path, connections: dict[str, str]) -> Path:
    """``connections.env``: ``source`` it to use the airflow CLI or the hooks against the local regions. Mode 600:
    it holds the serving token."""
    path = state_dir / "connections.env"
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text("".join(f"export {name}={shlex.quote(value)}\n" for name, value in sorted(connections.items())))
    return path


def _run_localdev(env: dict[str, str], command: str, what: str) -> None:
    """Run ``python -m localdev <command>`` with the platform's environment (connections included)."""
    quiet = env | {"AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING"}  # the hooks' info lines would bury the output
    result = subprocess.run([sys.executable, "-m", "localdev", command], env=quiet, capture_output=True, text=True)
    if result.returncode != 0:
        raise StartupError(f"{what} failed:\n{result.stderr[-2000:]}")
    print(result.stdout, end="")


def _summary(settings: AirflowSettings, ports: EmulatorPorts, state_dir: Path, heading: str) -> str:
    password = local_secrets(state_dir)["admin_password"]
    regions = load_catalogue().regions
    serving = "\n                ".join(f"{r.name:18} {r.serving_endpoint}" for r in regions)
    first_endpoint = regions[0].serving_endpoint
    return f"""
{heading} ({settings.topology} topology)

  Airflow UI    {settings.api_url}    login: {ADMIN_USER} / {password}
  REST API      {settings.api_url}/api/v2  (token: POST {settings.api_url}/auth/token)
  AWS  (moto)   {ports.moto_url}   S3, Route 53, SQS, STS, Cost Explorer
  Azure Blob    {ports.azurite_blob_url}   (Azurite)
  GCS           {ports.gcs_url}   (fake-gcs-server)
  Billing       {ports.bigquery_url} (BigQuery stand-in), {ports.cost_management_url} (Cost Management stand-in)

  Demo model    iris-classifier 1, replicated from the primary region by a registry event:
                make replication-status
                signed with the local release key in {state_dir / "release-keys"}
  Serving       {serving}
                each serves its region's rolled-out version, trusting {trusted_keys_dir(state_dir)}
                /predict and /metrics take the bearer token in {token_file(state_dir)}:
                curl -H "Authorization: Bearer $(cat {token_file(state_dir)})" {first_endpoint}/metrics
  Failover      failover_moves' health watch probes the regions: make failover-status
  Cost report   {settings.api_url}/cost/  (Browse > Cost report) once cost_report's first run is done
  Logs          {state_dir / "logs"}
  Connections   source {state_dir / "connections.env"}
  Stop          make down
"""


def cmd_up(args: argparse.Namespace) -> int:
    state_dir = _state_dir()
    table = _table(state_dir)
    settings = AirflowSettings.from_env(state_dir, args.topology)
    ports = EmulatorPorts.from_env()
    catalogue = load_catalogue()

    expected = EMULATORS + settings.components + [serving_name(region.name) for region in catalogue.regions]
    running = [name for name in table.names() if table.pid(name)]
    if running:
        previous = _running_topology(state_dir)
        if previous != settings.topology:
            raise StartupError(f"the platform is already running in the {previous} topology; run `make down` first.")
        if set(expected) <= set(running):
            print(_summary(settings, ports, state_dir, "The platform is already running; nothing changed."))
            return 0
        print(f"Found a partial start ({', '.join(running)} running); stopping it and starting again.")
        table.stop_all()

    ensure_ports_free({"the Airflow API server": settings.api_port}, hint="choose another port with MLP_AIRFLOW_PORT")
    connections = connection_env(catalogue, ports, state_dir / "data") | state_connection_env(catalogue, settings)
    connections |= serving_connection_env(catalogue, ensure_token_file(token_file(state_dir)))
    env = airflow_env(settings, connections, catalogue_path().resolve())
    (state_dir / "topology").write_text(settings.topology)
    try:
        print("Starting the local cloud regions (moto, Azurite, fake-gcs-server) ...", flush=True)
        start_emulators(table, ports, state_dir / "data")
        prepare_backends(settings)  # the state database must exist before provision resets failover state
        _run_localdev(env, "provision", what="creating the buckets, container, hosted zone and queue")
        _run_localdev(env, "seed-billing", what="seeding the billing sources")
        _write_connections_file(state_dir, connections)
        print(f"Starting Airflow 3 ({settings.topology}) on {settings.api_url} ...", flush=True)
        start_airflow(table, settings, env, paused_dags=(HEALTH_DAG, COST_DAG))  # until every region serves
        release_keys(state_dir)  # the local release step's signing key, made once; serving trusts its public key
        _run_localdev(env, "demo", what="registering the demo model")
        print("Starting the model-serving service of each region ...", flush=True)
        start_serving(table, catalogue, env, DEMO_MODEL, trusted_keys_dir(state_dir), token_file(state_dir))
        _start_health_watch(catalogue, settings, state_dir, env)
    except BaseException:
        stopped = table.stop_all()
        print(f"Start-up failed; stopped what had started: {', '.join(stopped) or 'nothing'}.", file=sys.stderr)
        raise
    print(_summary(settings, ports, state_dir, "The platform is up."))
    return 0


def _start_health_watch(catalogue, settings: AirflowSettings, state_dir: Path, env: dict[str, str]) -> None:
    """Unpause failover_moves once every region serves the demo model (so none is failed over at start), and
    the cost DAG (whose right-sizing samples the serving processes). failover_moves' file is parsed again at
    once: its health watch starts when a parse finds the DAG unpaused."""
    from localdev.api import AirflowClient

    readiness = wait_until_ready(catalogue, timeout=120)
    not_ready = {name: reason for name, reason in readiness.items() if reason != "ready"}
    if not_ready:
        status = subprocess.run(
            [sys.executable, "-m", "include.replication", "status"], env=env, capture_output=True, text=True
        )
        raise StartupError(
            f"regions not serving the demo model within 120 s: {not_ready}\n"
            f"replication status (logs in {state_dir / 'logs'}):\n{status.stdout}{status.stderr[-2000:]}"
        )
    client = AirflowClient(settings.api_url, ADMIN_USER, local_secrets(state_dir)["admin_password"])
    for dag_id in (HEALTH_DAG, COST_DAG):
        client.wait_for_dag(dag_id)
        client.unpause(dag_id)
    client.reparse(HEALTH_DAG)
    print(f"Every region serves the demo model; the health watch of {HEALTH_DAG} is watching them.", flush=True)
    print(f"{COST_DAG} runs now: its first run loads 90 days of the seeded billing.", flush=True)


def cmd_down(args: argparse.Namespace) -> int:
    stopped = _table(_state_dir()).stop_all()
    print(f"Stopped: {', '.join(stopped)}." if stopped else "Nothing was running.")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    table = _table(_state_dir())
    names = table.names()
    for name in names:
        pid = table.pid(name)
        print(f"{name:24} {'running, PID ' + str(pid) if pid else 'stopped'}")
    if not names:
        print("Nothing is running.")
    return 0


def cmd_provision(args: argparse.Namespace) -> int:
    from localdev.provision import provision

    for line in provision(load_catalogue()):
        print(f"  {line}")
    return 0


def cmd_pools(args: argparse.Namespace) -> int:
    from localdev.airflow_local import pool_commands

    for command in pool_commands():
        subprocess.run(command, check=True)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from localdev.demo import register_demo_model

    print(f"  {register_demo_model(load_catalogue(), release_keys(_state_dir()))}")
    return 0


def cmd_seed_billing(args: argparse.Namespace) -> int:
    from localdev.billing import seed_billing

    billing = seed_billing(load_catalogue())
    anomaly = billing.planted_anomaly
    print(
        f"  seeded {len(billing.days)} days of generated billing ({billing.first_day}..{billing.last_day}) into the "
        f"AWS, GCP and Azure billing sources; planted anomaly: {anomaly.service} in {anomaly.region} on {anomaly.day}"
    )
    return 0


def cmd_region(args: argparse.Namespace) -> int:
    """Kill a region's serving process (``region-down``) or start it again (``region-up``)."""
    import signal

    from localdev.serving import restart_serving

    state_dir = _state_dir()
    table = _table(state_dir)
    region = load_catalogue().region(args.region).name
    pid = table.pid(serving_name(region))
    if args.command == "region-down":
        if pid is None:
            print(f"{region} is not serving; nothing to kill.")
            return 0
        os.kill(pid, signal.SIGKILL)  # as when its node dies: no graceful shutdown
        print(f"Killed the serving process of {region} (PID {pid}); the health watch fails it over.")
        return 0
    if pid is not None:
        print(f"{region} is already serving (PID {pid}).")
        return 0
    catalogue = load_catalogue()
    env = _platform_env(state_dir)
    restart_serving(table, catalogue, env, region, DEMO_MODEL, trusted_keys_dir(state_dir), token_file(state_dir))
    print(f"{region} serves again; the health watch fails it back once it has been stable.")
    return 0


def _platform_env(state_dir: Path) -> dict[str, str]:
    """The environment the running platform's processes were started with."""
    catalogue = load_catalogue()
    settings = AirflowSettings.from_env(state_dir, _running_topology(state_dir))
    connections = connection_env(catalogue, EmulatorPorts.from_env(), state_dir / "data") | state_connection_env(
        catalogue, settings
    )
    connections |= serving_connection_env(catalogue, ensure_token_file(token_file(state_dir)))
    return airflow_env(settings, connections, catalogue_path().resolve())


def cmd_component(args: argparse.Namespace) -> int:
    """Kill an Airflow component (``component-down``, SIGKILL: a crash) or start it again (``component-up``)."""
    import signal

    state_dir = _state_dir()
    table = _table(state_dir)
    settings = AirflowSettings.from_env(state_dir, _running_topology(state_dir))
    commands = component_commands(settings)
    if args.name not in commands:
        print(f"error: no Airflow component {args.name!r}; this topology has {', '.join(commands)}", file=sys.stderr)
        return 1
    pid = table.pid(args.name)
    if args.command == "component-down":
        if pid is not None:
            os.killpg(pid, signal.SIGKILL)  # the whole process group: as when its node dies
        print(f"Killed {args.name} (PID {pid})." if pid else f"{args.name} is not running; nothing to kill.")
        return 0
    if pid is not None:
        print(f"{args.name} is already running (PID {pid}).")
        return 0
    pid = table.start(args.name, commands[args.name], env=_platform_env(state_dir), cwd=settings.home)
    print(f"Started {args.name} (PID {pid}).")
    return 0


def cmd_trigger(args: argparse.Namespace) -> int:
    from localdev.api import AirflowClient

    state_dir = _state_dir()
    settings = AirflowSettings.from_env(state_dir, topology=_running_topology(state_dir))
    client = AirflowClient(settings.api_url, ADMIN_USER, local_secrets(state_dir)["admin_password"])
    client.wait_for_dag(args.dag_id)
    run_id = client.trigger(args.dag_id, json.loads(args.conf))
    print(f"Triggered {args.dag_id}: {run_id}")
    if not args.wait:
        return 0
    state = client.wait_for_run(args.dag_id, run_id)
    for ti in client.task_instances(args.dag_id, run_id):
        label = ti["task_id"] + (f"[{ti['rendered_map_index'] or ti['map_index']}]" if ti["map_index"] >= 0 else "")
        print(f"  {label:32} {ti['state']}")
    print(f"Run {run_id}: {state}")
    return 0 if state == "success" else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localdev", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start the emulated regions and Airflow (idempotent)")
    up.add_argument(
        "--topology",
        choices=TOPOLOGIES,
        default=os.environ.get("MLP_TOPOLOGY", "embedded"),
        help="embedded: SQLite + LocalExecutor (default); production: PostgreSQL + CeleryExecutor + Redis",
    )
    up.set_defaults(func=cmd_up)
    commands.add_parser("down", help="stop every process `up` started").set_defaults(func=cmd_down)
    commands.add_parser("status", help="list the processes and their PIDs").set_defaults(func=cmd_status)
    commands.add_parser(
        "provision", help="create the catalogue's buckets, container and hosted zone through the connections"
    ).set_defaults(func=cmd_provision)
    commands.add_parser("pools", help="create the Airflow pools the platform's tasks use").set_defaults(func=cmd_pools)
    commands.add_parser(
        "seed-billing", help="load 90 days of generated billing into the local cost sources"
    ).set_defaults(func=cmd_seed_billing)
    commands.add_parser("demo", help="register the demo model and announce it on the event queue").set_defaults(
        func=cmd_demo
    )
    for name, text in (("region-down", "kill a region's serving process"), ("region-up", "start it again")):
        region = commands.add_parser(name, help=text)
        region.add_argument("region")
        region.set_defaults(func=cmd_region)
    for name, text in (
        ("component-down", "SIGKILL an Airflow component (as a crash would)"),
        ("component-up", "start an Airflow component that is not running"),
    ):
        component = commands.add_parser(name, help=text)
        component.add_argument("name", help="airflow-scheduler, airflow-triggerer, airflow-dag-processor, ...")
        component.set_defaults(func=cmd_component)
    trigger = commands.add_parser("trigger", help="start a DAG run through the REST API")
    trigger.add_argument("dag_id")
    trigger.add_argument("--conf", default="{}", help="run configuration as JSON")
    trigger.add_argument("--wait", action="store_true", help="wait for the run and exit 1 unless it succeeds")
    trigger.set_defaults(func=cmd_trigger)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (StartupError, CatalogueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
