"""The CI checks of k8s/ that need no cluster: schema validation, checkov, and the Airflow Helm values.

- Every overlay rendered with ``kubectl kustomize``, and the Airflow namespace and example objects, pass
  ``kubernetes-validate --strict`` against the one target Kubernetes version in ``k8s/KUBERNETES_VERSION``.
- checkov finds nothing over the same files, and every finding accepted on purpose is a
  ``checkov.io/skipN`` annotation with its reason.
- ``k8s/airflow/values.yaml`` for the official Airflow Helm chart is read and its structure asserted: no
  helm binary, chart or values schema is available offline, so it is never rendered here.

The tools run from their own virtualenv (.venv-iac, ``make install``); the tests skip when it or kubectl is
missing. Nothing here is applied to a cluster.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from functools import cache
from pathlib import Path

import pytest
import yaml

from include.catalogue import load_catalogue
from tests.test_k8s_manifests import K8S, OVERLAYS, credential_fields, kustomize, needs_kubectl

REPO_ROOT = K8S.parent
IAC_BIN = REPO_ROOT / ".venv-iac" / "bin"
KUBERNETES_VALIDATE = IAC_BIN / "kubernetes-validate"
CHECKOV = IAC_BIN / "checkov"
AIRFLOW = K8S / "airflow"
AIRFLOW_MANIFESTS = ("namespace.yaml", "platform-config.example.yaml")
# Every file the tools check: the rendered overlays and the Airflow manifests, by the name they are written as.
CHECKED_FILES = [f"overlay-{region}.yaml" for region in OVERLAYS] + [f"airflow-{name}" for name in AIRFLOW_MANIFESTS]
EXAMPLE_CATALOGUE = REPO_ROOT / "config" / "regions.example-cloud.yaml"
PLACEHOLDER = "REPLACE_ME"
# A checkov suppression: the check id, "=", then the reason (checkov splits the value on "=").
SUPPRESSION = re.compile(r"^(CKV2?_K8S_\d+)=([^=]+)$")

needs_iac_tools = pytest.mark.skipif(
    not all(os.access(tool, os.X_OK) for tool in (KUBERNETES_VALIDATE, CHECKOV)),
    reason=f"kubernetes-validate and checkov are not installed in {IAC_BIN.parent.name}: run `make install`",
)


def target_kubernetes_version() -> str:
    """The one version every manifest is validated against: the line of k8s/KUBERNETES_VERSION that is not a
    comment."""
    lines = [line.strip() for line in (K8S / "KUBERNETES_VERSION").read_text().splitlines()]
    versions = [line for line in lines if line and not line.startswith("#")]
    assert len(versions) == 1 and re.fullmatch(r"\d+\.\d+\.\d+", versions[0]), versions
    return versions[0]


@pytest.fixture(scope="module")
def checked_dir(tmp_path_factory) -> Path:
    """A directory holding every checked file: each overlay as kubectl kustomize renders it, and the Airflow
    manifests as they are."""
    directory = tmp_path_factory.mktemp("k8s-checked")
    for region in OVERLAYS:
        (directory / f"overlay-{region}.yaml").write_text(kustomize(f"overlays/{region}"))
    for name in AIRFLOW_MANIFESTS:
        (directory / f"airflow-{name}").write_text((AIRFLOW / name).read_text())
    return directory


@pytest.fixture(scope="module")
def checkov_results(checked_dir) -> dict:
    """One checkov run over every checked file (each run costs about two seconds of start-up)."""
    result = subprocess.run(
        [str(CHECKOV), "-d", str(checked_dir), "--framework", "kubernetes", "--skip-download", "--compact"]
        + ["-o", "json"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    # Exit code 1 means findings, which the tests below report one file at a time.
    assert result.returncode in (0, 1), f"checkov failed:\n{result.stdout}\n{result.stderr}"
    report = json.loads(result.stdout)
    assert report["check_type"] == "kubernetes", report
    return report["results"]


def findings(results: dict, outcome: str, name: str) -> list[dict]:
    """checkov's ``outcome`` checks ("failed_checks", "passed_checks", "skipped_checks") of one checked file."""
    return [check for check in results[outcome] if Path(check["file_path"]).name == name]


@needs_iac_tools
def test_the_target_version_has_its_schemas_bundled():
    version = target_kubernetes_version()
    schemas = KUBERNETES_VALIDATE.parents[1].glob(f"lib/python*/site-packages/kubernetes_validate/*/v{version}-*")
    assert {path.name for path in schemas} >= {f"v{version}-local", f"v{version}-local-strict"}


@needs_kubectl
@needs_iac_tools
@pytest.mark.parametrize("name", CHECKED_FILES)
def test_kubernetes_validate_strict_accepts(name, checked_dir):
    version = target_kubernetes_version()
    result = subprocess.run(
        [str(KUBERNETES_VALIDATE), "--strict", "--quiet", "-k", version, str(checked_dir / name)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    # --quiet prints only warnings and failures. A warning fails too: "Couldn't find schema" is what a removed
    # or misspelt apiVersion gets, with exit code 0.
    output = (result.stdout + result.stderr).strip()
    assert result.returncode == 0 and not output, f"kubernetes-validate {version} on {name}:\n{output}"


@needs_kubectl
@needs_iac_tools
@pytest.mark.parametrize("name", CHECKED_FILES)
def test_checkov_finds_nothing(name, checkov_results):
    failed = findings(checkov_results, "failed_checks", name)

    assert not failed, "\n".join(f"{check['check_id']} {check['check_name']} ({check['resource']})" for check in failed)
    assert not checkov_results["parsing_errors"]
    if name.startswith("overlay-"):  # a Deployment gets dozens of checks (a Namespace none)
        assert findings(checkov_results, "passed_checks", name), f"checkov checked nothing in {name}"


@needs_kubectl
@needs_iac_tools
def test_every_suppression_gives_its_reason_and_is_the_only_way_to_skip(checked_dir, checkov_results):
    annotated = set()
    for name in CHECKED_FILES:
        for obj in yaml.safe_load_all((checked_dir / name).read_text()):
            annotations = (obj or {}).get("metadata", {}).get("annotations") or {}
            for key, value in annotations.items():
                if key.startswith(("checkov.io/skip", "bridgecrew.io/skip")):
                    match = SUPPRESSION.match(value)
                    where = f"{name}: {obj['kind']}/{obj['metadata']['name']} {key}"
                    assert key.startswith("checkov.io/skip") and match, f"{where}: not 'CKV_K8S_N=<reason>'"
                    assert len(match.group(2).split()) >= 8, f"{where}: give the reason, not a label"
                    annotated.add((name, match.group(1), match.group(2)))

    skipped = {
        (name, check["check_id"], check["check_result"]["suppress_comment"])
        for name in CHECKED_FILES
        for check in findings(checkov_results, "skipped_checks", name)
    }
    assert skipped == annotated  # every annotation suppresses something, and nothing else is suppressed


# The official Airflow Helm chart's values (k8s/airflow/values.yaml).

AIRFLOW_COMPONENTS = ("scheduler", "apiServer", "dagProcessor", "triggerer", "migrateDatabaseJob")
# The chart applies the global securityContexts to Airflow's own pods only; these take their own.
OTHER_COMPONENTS = ("pgbouncer", "redis", "statsd")


@cache
def airflow_values() -> dict:
    values = yaml.safe_load((AIRFLOW / "values.yaml").read_text())
    assert isinstance(values, dict)
    return values


@cache
def example_objects() -> dict[tuple[str, str], dict]:
    """platform-config.example.yaml as ``{(kind, name): object}``."""
    objects = list(yaml.safe_load_all((AIRFLOW / "platform-config.example.yaml").read_text()))
    return {(obj["kind"], obj["metadata"]["name"]): obj for obj in objects}


def example_secret(name: str) -> dict[str, str]:
    return example_objects()["Secret", name]["stringData"]


def overlay_image_tags() -> set[str]:
    return {
        image["newTag"]
        for region in OVERLAYS
        for image in yaml.safe_load((K8S / "overlays" / region / "kustomization.yaml").read_text())["images"]
    }


def test_the_chart_version_is_pinned_in_the_values_and_the_docs():
    pinned = re.findall(r"apache-airflow/airflow --version (\d+\.\d+\.\d+)", (AIRFLOW / "values.yaml").read_text())
    documented = re.findall(
        r"apache-airflow/airflow --version (\d+\.\d+\.\d+)",
        (REPO_ROOT / "docs" / "airflow-on-kubernetes.md").read_text(),
    )

    assert len(set(pinned)) == 1 and set(documented) == set(pinned), (pinned, documented)
    assert pinned[0].startswith("1.")  # the 1.x line, which deploys Airflow 3 with the api-server


def test_airflow_runs_the_platform_image_with_the_dags_baked_in():
    values = airflow_values()
    image = values["images"]["airflow"]

    assert values["airflowVersion"] == "3.3.2"  # the Dockerfile's base image
    assert "FROM apache/airflow:3.3.2-" in (REPO_ROOT / "Dockerfile").read_text()
    assert image["repository"].endswith("/mlp/platform")
    assert {image["tag"]} == overlay_image_tags()  # one release: the serving overlays run the same image
    assert values["dags"]["gitSync"]["enabled"] is False and values["dags"]["persistence"]["enabled"] is False


def test_airflow_uses_celery_on_a_managed_postgresql_through_pgbouncer():
    values = airflow_values()

    assert values["executor"] == "CeleryExecutor" and values["redis"]["enabled"] is True
    assert values["postgresql"]["enabled"] is False
    assert "metadataConnection" not in values["data"] and "resultBackendConnection" not in values["data"]
    assert example_secret(values["data"]["metadataSecretName"])["connection"].startswith("postgresql://")
    assert example_secret(values["data"]["resultBackendSecretName"])["connection"].startswith("db+postgresql://")
    pgbouncer = values["pgbouncer"]
    assert pgbouncer["enabled"] is True
    assert set(example_secret(pgbouncer["configSecretName"])) == {"pgbouncer.ini", "users.txt"}
    assert set(example_secret(pgbouncer["metricsExporterSidecar"]["statsSecretName"])) == {"connection"}


def test_airflow_secrets_are_referenced_never_inlined():
    values = airflow_values()

    for inline in ("fernetKey", "apiSecretKey", "jwtSecret", "webserverSecretKey"):
        assert inline not in values
    assert set(example_secret(values["fernetKeySecretName"])) == {"fernet-key"}
    assert set(example_secret(values["apiSecretKeySecretName"])) == {"api-secret-key"}
    assert set(example_secret(values["jwtSecretName"])) == {"jwt-secret"}
    assert values["createUserJob"]["enabled"] is False  # its default user's password would sit in the values


def test_the_example_objects_hold_placeholders_only():
    for (kind, name), obj in example_objects().items():
        assert obj["metadata"]["namespace"] == "airflow", name
        if kind == "Secret" and name != "mlp-airflow-connections":
            for key, value in obj["stringData"].items():
                assert PLACEHOLDER in value, f"{name}/{key} looks like a real value"
    for variable, value in example_secret("mlp-airflow-connections").items():
        connection = json.loads(value)
        fields = {**connection, **connection.get("extra", {})}
        for field in credential_fields(connection):
            assert fields[field] == PLACEHOLDER, f"{variable}: {field} looks like a real credential"


def test_airflow_gets_every_connection_and_the_catalogue_the_platform_needs():
    values = airflow_values()
    catalogue = load_catalogue(EXAMPLE_CATALOGUE)
    conn_ids = {catalogue.dns.connection, catalogue.replication.state_connection}
    conn_ids |= {catalogue.events.connection} if catalogue.events else set()
    conn_ids |= {catalogue.failover.notify_connection} - {None}
    for region in catalogue.regions:
        conn_ids |= {region.connections.storage, region.connections.kubernetes, region.connections.serving} - {None}
    if catalogue.cost:
        sources = catalogue.cost.sources
        conn_ids |= {source.connection for source in (sources.aws, sources.gcp, sources.azure) if source}

    assert yaml.safe_load(values["extraEnvFrom"]) == [{"secretRef": {"name": "mlp-airflow-connections"}}]
    assert set(example_secret("mlp-airflow-connections")) == {f"AIRFLOW_CONN_{conn.upper()}" for conn in conn_ids}

    catalogue_path = Path(next(e["value"] for e in values["env"] if e["name"] == "MLP_REGION_CATALOGUE"))
    mount = next(m for m in values["volumeMounts"] if m["mountPath"] == str(catalogue_path.parent))
    volume = next(v for v in values["volumes"] if v["name"] == mount["name"])
    assert volume["configMap"]["items"] == [{"key": catalogue_path.name, "path": catalogue_path.name}]
    assert catalogue_path.name in example_objects()["ConfigMap", volume["configMap"]["name"]]["data"]


def test_the_platforms_pools_are_created_by_the_migration_hook():
    args = airflow_values()["migrateDatabaseJob"]["args"]

    assert args[:2] == ["bash", "-c"]
    assert args[2].split(" && ") == [
        "airflow db migrate",
        "python -m include.state upgrade",
        "exec python -m localdev pools",
    ]
    assert "COPY --chown=airflow:0 localdev/ /opt/airflow/localdev/" in (REPO_ROOT / "Dockerfile").read_text()


def test_every_airflow_pod_runs_as_non_root_with_resources():
    values = airflow_values()
    global_pod = values["securityContexts"]["pod"]
    global_container = values["securityContexts"]["containers"]
    components = {name: values[name] for name in AIRFLOW_COMPONENTS + OTHER_COMPONENTS}
    components["workers"] = values["workers"]["celery"]

    assert values["uid"] != 0
    for name, component in components.items():
        contexts = component.get("securityContexts", {})
        if name in OTHER_COMPONENTS:  # these must set their own: the chart's default runs Redis as root
            assert {"pod", "container"} <= set(contexts), name
        pod = contexts.get("pod", global_pod)
        container = contexts.get("container", global_container)
        assert pod["runAsNonRoot"] is True and pod["runAsUser"] != 0, name
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert container["allowPrivilegeEscalation"] is False, name
        assert container["capabilities"] == {"drop": ["ALL"]}, name
        resources = component["resources"]
        assert {"cpu", "memory"} <= set(resources["requests"]) and "memory" in resources["limits"], name
    sidecar = values["pgbouncer"]["metricsExporterSidecar"]["securityContexts"]["container"]
    assert sidecar == global_container
