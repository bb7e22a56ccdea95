"""The AWS and DNS Terraform: formatted, valid against the real hashicorp/aws schema, and their tests pass.

Offline: the provider comes from the local mirror (/opt/tf-plugins) and its version and checksums from each
directory's committed .terraform.lock.hcl, which init only reads (-lockfile=readonly). Each directory is
initialised into its own temporary TF_DATA_DIR, so nothing is written to the repository and the tests can run
in parallel. ``terraform test`` runs the modules' tests/*.tftest.hcl, which plan against ``mock_provider "aws"``.

The GCP and Azure roots cannot be initialised here (their providers are not mirrored); they are checked by
``terraform fmt``, by checkov (tests/iac/test_checkov.py) and below against the interface of the modules they call.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
TERRAFORM_DIR = REPO_ROOT / "terraform"
PLUGIN_DIR = Path("/opt/tf-plugins")
TERRAFORM = shutil.which("terraform")

# Directories that need only the aws provider: all are validated, the modules also tested.
AWS_MODULES = ["modules/aws", "modules/aws/modules/access-log-bucket", "modules/dns"]
AWS_ROOTS = ["live/bootstrap", "live/dns", "live/aws-us-west-2"]
# Roots whose providers are not mirrored: their module calls are checked against the modules' files.
OTHER_ROOTS = {"live/gcp-europe-west1": "gcp", "live/azure-eastus": "azure"}

needs_terraform = pytest.mark.skipif(
    TERRAFORM is None or not PLUGIN_DIR.is_dir(),
    reason="needs the terraform binary on PATH and the hashicorp/aws provider mirror in /opt/tf-plugins",
)


def terraform(*args: str, directory: Path, data_dir: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "TF_DATA_DIR": str(data_dir),
        "TF_IN_AUTOMATION": "1",
        "TF_INPUT": "0",
        "CHECKPOINT_DISABLE": "1",  # no version check over the network
        "TF_CLI_CONFIG_FILE": os.devnull,  # no provider installation settings from the caller's ~/.terraformrc
    }
    return subprocess.run(
        [TERRAFORM, *args, "-no-color"],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def assert_succeeded(result: subprocess.CompletedProcess, what: str) -> None:
    assert result.returncode == 0, f"{what} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"


@pytest.fixture(scope="module")
def initialised(tmp_path_factory):
    """A function that initialises a directory once (offline, lock file read-only) and returns its data dir."""
    data_dirs: dict[str, Path] = {}

    def init(relative: str) -> Path:
        if relative not in data_dirs:
            data_dir = tmp_path_factory.mktemp(relative.replace("/", "-"))
            result = terraform(
                "init",
                "-backend=false",
                f"-plugin-dir={PLUGIN_DIR}",
                "-lockfile=readonly",
                directory=TERRAFORM_DIR / relative,
                data_dir=data_dir,
            )
            assert_succeeded(result, f"terraform init in terraform/{relative}")
            data_dirs[relative] = data_dir
        return data_dirs[relative]

    return init


@needs_terraform
def test_terraform_is_formatted(tmp_path):
    result = terraform(
        "fmt", "-check", "-recursive", "-diff", str(TERRAFORM_DIR), directory=REPO_ROOT, data_dir=tmp_path
    )
    assert_succeeded(result, "terraform fmt -check -recursive terraform/ (run terraform fmt -recursive terraform/)")


@needs_terraform
@pytest.mark.parametrize("relative", AWS_MODULES + AWS_ROOTS)
def test_configuration_is_valid(relative, initialised):
    data_dir = initialised(relative)

    result = terraform("validate", directory=TERRAFORM_DIR / relative, data_dir=data_dir)
    assert_succeeded(result, f"terraform validate in terraform/{relative}")


@needs_terraform
@pytest.mark.parametrize("relative", AWS_MODULES)
def test_module_tests_pass(relative, initialised):
    data_dir = initialised(relative)

    result = terraform("test", directory=TERRAFORM_DIR / relative, data_dir=data_dir, timeout=600)
    assert_succeeded(result, f"terraform test in terraform/{relative}")
    passed = re.search(r"Success! (\d+) passed, 0 failed", result.stdout)
    assert passed and int(passed.group(1)) > 0, f"terraform test ran no test:\n{result.stdout}"


def read_tf(directory: Path) -> str:
    """All .tf files of a directory (a module or root), concatenated."""
    return "\n".join(path.read_text() for path in sorted(directory.glob("*.tf")))


def declared(kind: str, module_text: str) -> set[str]:
    """Names of the ``variable`` or ``output`` blocks of a module."""
    return set(re.findall(rf'^{kind} "([A-Za-z0-9_-]+)"', module_text, re.MULTILINE))


def required_variables(module_text: str) -> set[str]:
    """Variables without a default: every caller must set them."""
    blocks = re.findall(r'^variable "([A-Za-z0-9_-]+)" \{\n(.*?)^\}', module_text, re.MULTILINE | re.DOTALL)
    return {name for name, body in blocks if not re.search(r"^  default\s*=", body, re.MULTILINE)}


@pytest.mark.parametrize("relative", sorted(OTHER_ROOTS))
def test_unvalidated_roots_match_their_modules_interface(relative):
    """What terraform validate would catch first: arguments the module lacks, required ones missing, unknown outputs."""
    module_name = OTHER_ROOTS[relative]
    module_dir = TERRAFORM_DIR / "modules" / module_name
    if not module_dir.is_dir():
        pytest.skip(f"terraform/modules/{module_name} does not exist yet")
    module = read_tf(module_dir)
    root = read_tf(TERRAFORM_DIR / relative)
    call = re.search(rf'^module "{module_name}" \{{\n(.*?)^\}}', root, re.MULTILINE | re.DOTALL)
    assert call, f"terraform/{relative} does not call module {module_name!r}"
    arguments = set(re.findall(r"^  ([a-z0-9_]+)\s*=", call.group(1), re.MULTILINE)) - {"source"}

    variables = declared("variable", module)
    assert arguments <= variables, f"arguments the module does not declare: {sorted(arguments - variables)}"
    missing = required_variables(module) - arguments
    assert not missing, f"required module variables not set: {sorted(missing)}"
    used_outputs = set(re.findall(rf"\bmodule\.{module_name}\.([a-z0-9_]+)", root))
    outputs = declared("output", module)
    assert used_outputs <= outputs, f"outputs the module does not declare: {sorted(used_outputs - outputs)}"
