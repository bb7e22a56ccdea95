"""Control-plane restore benchmark: from nothing to a control plane that has taken over, on this machine.

A standby region's control plane starts from nothing but a state backup, the platform's code and the
connections. Each phase is timed, as the runbook (docs/runbooks/control-plane-loss.md) runs it, on a fresh
temporary AIRFLOW_HOME with fresh SQLite databases:

1. restore the state database from the backup (``python -m include.state restore``);
2. ``airflow db migrate`` of an empty metadata database;
3. the platform's pools (``airflow pools set``, as ``python -m localdev pools``);
4. start the api-server, scheduler, dag-processor and triggerer (127.0.0.1 only, no log servers) until
   Airflow reports each healthy;
5. wait until every file in dags/ is parsed, without an import error (REST API ``/api/v2/dags``);
6. take over: unpause ``platform_backup`` and run it; its task reads every restored table through the state
   connection and writes them to the backup regions. Its copy is then compared, table by table, with the backup.

The surviving regions (moto, Azurite, fake-gcs-server on free ports, provisioned from the catalogue) are started
before the clock starts: in a real loss they exist already. Every other DAG stays paused (as on a standby until
promoted): without serving processes here, the health watch would fail every region over. Without ``--backup``
the backup is made first from a generated state database (``--versions`` model versions). The goal: under 15
minutes in all. Run from the repository root:

    .venv/bin/python benchmarks/control_plane.py [--backup FILE] [--versions 200]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

from include.catalogue import catalogue_path, load_catalogue
from localdev.airflow_local import (
    ADMIN_USER,
    AirflowSettings,
    airflow_env,
    component_commands,
    health,
    local_secrets,
    pool_commands,
    state_connection_env,
)
from localdev.emulators import EmulatorPorts, connection_env, start_emulators
from localdev.processes import ProcessTable, StartupError, free_port

REPO_ROOT = Path(__file__).resolve().parents[1]
GOAL_SECONDS = 15 * 60
BACKUP_DAG = "platform_backup"
HEALTHY_PARTS = ("metadatabase", "scheduler", "triggerer", "dag_processor")


def generated_backup(path: Path, versions: int) -> Path:
    """A backup of a state database as a platform that ran a while leaves it: one region failed over after a
    history of transitions, and ``versions`` model versions replicated to every other region."""
    from datetime import UTC, datetime

    from include.failover.machine import State, moved
    from include.failover.store import FailoverStore
    from include.replication.status import StatusStore
    from include.state.backup import back_up_state
    from include.state.migrate import upgrade_state_db

    catalogue = load_catalogue()
    engine = sa.create_engine(f"sqlite:///{path.with_suffix('.db')}")
    upgrade_state_db(engine)
    failover, status = FailoverStore(engine), StatusStore(engine)
    names = [region.name for region in catalogue.regions]
    record = failover.load(names)[catalogue.secondary.name]
    for step, state in enumerate([State.DEGRADED, State.HEALTHY] * 50 + [State.DEGRADED, State.FAILOVER]):
        record, transition = moved(record, state, f"generated step {step}", {"step": step}, time.time() - 600 + step)
        failover.save([record], [transition], run_id=f"generated__{step}")
        record = failover.load(names)[catalogue.secondary.name]
    event = datetime.now(UTC)
    for number in range(versions):
        for region in names[1:]:
            sha256 = f"{number:064x}"
            status.record(f"model-{number % 20}", str(number), region, names[0], "verified", sha256=sha256, size=2**20)
            status.record(f"model-{number % 20}", str(number), region, names[0], "verified", event_time=event)
    back_up_state(engine, path)
    engine.dispose()
    return path


def phase(figures: list[tuple[str, float]], name: str, step: Callable[[], object]) -> None:
    """Run ``step``, record its seconds under ``name`` and print them."""
    started = time.monotonic()
    step()
    figures.append((name, time.monotonic() - started))
    print(f"  {name:58} {figures[-1][1]:7.1f} s", flush=True)


def run(command: list[str], env: dict[str, str], log: Path) -> None:
    """Run ``command`` with its output in ``log``; fail with the log's tail on a non-zero exit."""
    with open(log, "ab") as out:
        done = subprocess.run(command, env=env, stdout=out, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
        raise StartupError(f"{' '.join(command[1:4])} exited {done.returncode}:\n{tail}")


def wait_for(what: str, ready: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise StartupError(f"{what} not within {timeout:.0f} s")
        time.sleep(0.5)


def every_row(backup: Path, scratch: Path) -> dict[str, list[tuple]]:
    """The rows of each table of ``backup``, read back from a restore into a scratch SQLite file."""
    from include.state.backup import restore_state
    from include.state.schema import metadata

    logging.getLogger("alembic").setLevel(logging.WARNING)
    engine = sa.create_engine(f"sqlite:///{scratch}")
    try:
        restore_state(engine, backup)
        with engine.connect() as conn:
            return {
                table.name: [tuple(row) for row in conn.execute(sa.select(table).order_by(*table.primary_key.columns))]
                for table in metadata.sorted_tables
            }
    finally:
        engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backup", type=Path, help="a state backup (python -m include.state backup); default: made")
    parser.add_argument("--versions", type=int, default=200, help="model versions in the generated state database")
    parser.add_argument("--timeout", type=float, default=600, help="seconds each waiting phase may take")
    args = parser.parse_args()

    from include.state.backup import backup_regions, fetch_backup

    catalogue = load_catalogue()
    with tempfile.TemporaryDirectory(prefix="mlp-bench-control-plane-") as scratch:
        state_dir = Path(scratch)
        table = ProcessTable(state_dir / "run", state_dir / "logs")
        log = state_dir / "logs" / "phases.log"
        log.parent.mkdir(parents=True)
        ports = EmulatorPorts(*(free_port() for _ in range(5)))
        settings = AirflowSettings(state_dir=state_dir, api_port=free_port())
        connections = connection_env(catalogue, ports, state_dir / "data") | state_connection_env(catalogue, settings)
        env = airflow_env(settings, connections, catalogue_path().resolve()) | {
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",  # a standby's DAGs wait for the promotion
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        }
        os.environ.update(connections)  # for reading the backup regions' stores from here
        try:
            print("Before the clock: the surviving regions (moto, Azurite, fake-gcs-server) and a backup ...")
            start_emulators(table, ports, state_dir / "data")
            # Provisioning writes failover state: into a scratch database, not the one the clock starts from.
            provision_state = {"conn_type": "sqlite", "host": str(state_dir / "provision-scratch.db")}
            state_variable = f"AIRFLOW_CONN_{catalogue.replication.state_connection.upper()}"
            provision_env = env | {state_variable: json.dumps(provision_state)}
            run([sys.executable, "-m", "localdev", "provision"], provision_env, log)
            backup = args.backup or generated_backup(state_dir / "generated.jsonl.gz", args.versions)
            print(f"  backup {backup} ({backup.stat().st_size:,} bytes)")
            print(f"From nothing (AIRFLOW_HOME {settings.home}, empty SQLite databases):")
            figures: list[tuple[str, float]] = []
            restore = [sys.executable, "-m", "include.state", "restore", "--from", str(backup)]
            phase(figures, "1. restore the state database", lambda: run(restore, env, log))
            airflow = str(Path(sys.executable).with_name("airflow"))
            phase(figures, "2. airflow db migrate", lambda: run([airflow, "db", "migrate"], env, log))
            phase(figures, "3. pools", lambda: [run(command, env, log) for command in pool_commands()])

            def start() -> None:
                for name, argv in component_commands(settings).items():
                    table.start(name, argv, env=env, cwd=settings.home)
                table.wait_until(
                    settings.components,
                    lambda: all(health(settings.api_url)[part]["status"] == "healthy" for part in HEALTHY_PARTS),
                    timeout=args.timeout,
                    what="Airflow",
                )

            phase(figures, "4. start Airflow until every component is healthy", start)
            from localdev.api import AirflowClient

            client = AirflowClient(settings.api_url, ADMIN_USER, local_secrets(state_dir)["admin_password"])
            dag_files = {str(path) for path in (REPO_ROOT / "dags").glob("*.py") if not path.name.startswith("_")}

            def parsed() -> bool:
                dags = client.get("/api/v2/dags?limit=100")["dags"]
                errors = client.get("/api/v2/importErrors")["import_errors"]
                if errors:
                    raise StartupError(f"import errors: {errors}")
                return {dag["fileloc"] for dag in dags} >= dag_files and not any(d["has_import_errors"] for d in dags)

            phase(figures, "5. every DAG parsed, no import error", lambda: wait_for("DAGs", parsed, args.timeout))

            def take_over() -> None:
                client.unpause(BACKUP_DAG)
                run_id = client.trigger(BACKUP_DAG)
                state = client.wait_for_run(BACKUP_DAG, run_id, timeout=args.timeout)
                if state != "success":
                    raise StartupError(f"{BACKUP_DAG} run {run_id}: {state}; see {state_dir / 'airflow' / 'logs'}")

            phase(figures, f"6. take over: {BACKUP_DAG} reads the restored state", take_over)
            copy, region = state_dir / "taken-over.jsonl.gz", backup_regions(catalogue)[-1]
            key = fetch_backup(region, copy)
            same = every_row(copy, state_dir / "check-copy.db") == every_row(backup, state_dir / "check-backup.db")
            print(f"Check: {key} in {region.name}, written by the new control plane, equals the backup: {same}")
        finally:
            table.stop_all()
    total = sum(seconds for _, seconds in figures)
    print(f"  {'total':58} {total:7.1f} s")
    met = same and total < GOAL_SECONDS
    print(
        f"Headline: from nothing to a control plane that has taken over in {total:.0f} s "
        f"(goal: under {GOAL_SECONDS} s, every restored row in its first backup): {'met' if met else 'NOT met'}"
    )
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
