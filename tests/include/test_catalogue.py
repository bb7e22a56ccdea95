"""Unit tests of the region catalogue: the shipped files load, and every invalid one is refused by name."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml

from include.catalogue import CATALOGUE_ENV, DEFAULT_CATALOGUE, REPO_ROOT, load_catalogue, parse_catalogue
from include.errors import CatalogueError

EXAMPLE_CLOUD = REPO_ROOT / "config" / "regions.example-cloud.yaml"
BASE = yaml.safe_load(DEFAULT_CATALOGUE.read_text())
# Indexes of the shipped regions in config/regions.yaml.
AWS, GCP, AZURE = 0, 1, 2


def variant(edit) -> dict:
    """A deep copy of the shipped catalogue with ``edit`` applied to it."""
    data = copy.deepcopy(BASE)
    edit(data)
    return data


def set_field(index: int, field: str, value):
    return lambda data: data["regions"][index].__setitem__(field, value)


def error_of(data) -> str:
    with pytest.raises(CatalogueError) as excinfo:
        parse_catalogue(data)
    return str(excinfo.value)


@pytest.mark.parametrize("path", [DEFAULT_CATALOGUE, EXAMPLE_CLOUD], ids=["local", "example-cloud"])
def test_shipped_catalogues_load(path: Path):
    """Both shipped catalogues are valid and have one region per provider."""
    catalogue = load_catalogue(path)
    assert sorted(r.provider for r in catalogue.regions) == ["aws", "azure", "gcp"]
    assert catalogue.primary.name == "aws-us-west-2"


def test_region_lookup_by_name():
    catalogue = load_catalogue()
    assert catalogue.region("azure-eastus").bucket == "mlp-models"
    assert catalogue.region("gcp-europe-west1").provider == "gcp"


def test_unknown_region_lists_known_names():
    with pytest.raises(CatalogueError, match="unknown region 'nope'") as excinfo:
        load_catalogue().region("nope")
    assert "aws-us-west-2, gcp-europe-west1, azure-eastus" in str(excinfo.value)


def test_env_var_overrides_default_path(monkeypatch, tmp_path):
    """MLP_REGION_CATALOGUE points load_catalogue() (no argument) at another file."""
    path = tmp_path / "regions.yaml"
    path.write_text(yaml.safe_dump(variant(set_field(AZURE, "bucket", "other-container"))))
    monkeypatch.setenv(CATALOGUE_ENV, str(path))
    assert load_catalogue().region("azure-eastus").bucket == "other-container"


def test_empty_env_var_means_default(monkeypatch):
    monkeypatch.setenv(CATALOGUE_ENV, "")
    assert load_catalogue().region("azure-eastus").bucket == "mlp-models"


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        pytest.param(
            lambda d: d["regions"][AWS].pop("bucket"),
            "regions[0] (aws-us-west-2).bucket: required field is missing",
            id="missing-field",
        ),
        pytest.param(
            set_field(GCP, "buckt", "x"),
            "regions[1] (gcp-europe-west1).buckt: unknown field (a typo?)",
            id="unknown-field",
        ),
        pytest.param(
            lambda d: d["regions"][AZURE]["connections"].__setitem__("storge", "x"),
            "regions[2] (azure-eastus).connections.storge: unknown field (a typo?)",
            id="unknown-nested-field",
        ),
        pytest.param(
            set_field(GCP, "provider", "oracle"),
            "regions[1] (gcp-europe-west1).provider: Input should be 'aws', 'gcp' or 'azure' (got 'oracle')",
            id="wrong-provider",
        ),
        pytest.param(
            set_field(AWS, "bucket", "MLP-models"),
            "regions[0] (aws-us-west-2): bucket 'MLP-models' is not a valid aws bucket name",
            id="aws-bucket-uppercase",
        ),
        pytest.param(
            set_field(AWS, "bucket", "mlp_models"),
            "regions[0] (aws-us-west-2): bucket 'mlp_models' is not a valid aws bucket name",
            id="aws-bucket-underscore",
        ),
        pytest.param(
            set_field(AZURE, "bucket", "mlp--models"),
            "regions[2] (azure-eastus): bucket 'mlp--models' is not a valid azure container name",
            id="azure-container-double-hyphen",
        ),
        pytest.param(
            set_field(GCP, "bucket", "-mlp-models"),
            "regions[1] (gcp-europe-west1): bucket '-mlp-models' is not a valid gcp bucket name",
            id="gcp-bucket-leading-hyphen",
        ),
        pytest.param(
            set_field(GCP, "bucket", "ml"),
            "regions[1] (gcp-europe-west1): bucket 'ml' is not a valid gcp bucket name",
            id="gcp-bucket-too-short",
        ),
        pytest.param(
            set_field(AWS, "cloud_region", "us-west"),
            "regions[0] (aws-us-west-2): cloud_region 'us-west' is not a valid aws region name",
            id="aws-cloud-region",
        ),
        pytest.param(
            set_field(GCP, "cloud_region", "europe-west"),
            "regions[1] (gcp-europe-west1): cloud_region 'europe-west' is not a valid gcp region name",
            id="gcp-cloud-region",
        ),
        pytest.param(
            set_field(AZURE, "cloud_region", "us-east-1"),
            "regions[2] (azure-eastus): cloud_region 'us-east-1' is not a valid azure region name",
            id="azure-cloud-region",
        ),
        pytest.param(
            set_field(AZURE, "serving_endpoint", "ftp://127.0.0.1:8103"),
            "regions[2] (azure-eastus): serving_endpoint 'ftp://127.0.0.1:8103' is not an http(s) URL",
            id="serving-endpoint-scheme",
        ),
        pytest.param(
            set_field(AZURE, "serving_endpoint", "http://"),
            "regions[2] (azure-eastus): serving_endpoint 'http://' is not an http(s) URL",
            id="serving-endpoint-no-host",
        ),
        pytest.param(
            set_field(AZURE, "dns_record", "eastus.example.com"),
            "region 'azure-eastus': dns_record 'eastus.example.com' is not inside zone 'mlp.example.internal'",
            id="dns-record-outside-zone",
        ),
        pytest.param(
            lambda d: d["dns"].__setitem__("record", "models.example.com"),
            "dns: record 'models.example.com' is not inside zone 'mlp.example.internal'",
            id="dns-record-of-dns-outside-zone",
        ),
        pytest.param(
            set_field(GCP, "primary", True),
            "exactly one region must be primary: true; found 2: ['aws-us-west-2', 'gcp-europe-west1']",
            id="two-primaries",
        ),
        pytest.param(
            set_field(AWS, "primary", False),
            "exactly one region must be primary: true; found 0: []",
            id="no-primary",
        ),
        pytest.param(
            set_field(GCP, "name", "aws-us-west-2"),
            "region names must be unique; repeated: aws-us-west-2",
            id="duplicate-region-names",
        ),
        pytest.param(
            lambda d: d["dns"].__setitem__("ttl", 0),
            "dns.ttl: Input should be greater than or equal to 1 (got 0)",
            id="ttl-too-small",
        ),
        pytest.param(
            lambda d: d["dns"].__setitem__("ttl", 86401),
            "dns.ttl: Input should be less than or equal to 86400 (got 86401)",
            id="ttl-too-large",
        ),
        pytest.param(
            lambda d: d.__setitem__("regions", []),
            "regions: List should have at least 1 item",
            id="no-regions",
        ),
    ],
)
def test_invalid_catalogue_names_problem_and_place(edit, expected):
    """Each invalid variant is refused with a message naming the field (and region) at fault."""
    message = error_of(variant(edit))
    assert message.startswith("<catalogue>: invalid region catalogue:")
    assert expected in message


def test_every_problem_is_reported_at_once():
    """Two independent mistakes in two regions are both listed."""
    message = error_of(variant(lambda d: (d["regions"][AWS].pop("bucket"), d["regions"][AZURE].pop("dns_record"))))
    assert "regions[0] (aws-us-west-2).bucket: required field is missing" in message
    assert "regions[2] (azure-eastus).dns_record: required field is missing" in message


def test_file_errors_name_the_file(tmp_path):
    """Validation errors from load_catalogue start with the file's path."""
    path = tmp_path / "regions.yaml"
    path.write_text(yaml.safe_dump(variant(set_field(GCP, "provider", "oracle"))))
    with pytest.raises(CatalogueError, match=rf"^{re.escape(str(path))}: invalid region catalogue:"):
        load_catalogue(path)


def test_duplicate_yaml_key_gives_line_number(tmp_path):
    """A key twice in one mapping (PyYAML would keep the last silently) is refused with its line."""
    text = DEFAULT_CATALOGUE.read_text()
    lines = text.splitlines()
    line = next(i for i, s in enumerate(lines) if s.strip() == "bucket: mlp-models-europe-west1")
    lines.insert(line + 1, "    bucket: mlp-models-other")
    path = tmp_path / "regions.yaml"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(CatalogueError) as excinfo:
        load_catalogue(path)
    assert str(excinfo.value) == f"{path}: line {line + 2}: key 'bucket' appears twice"


def test_missing_file(tmp_path):
    path = tmp_path / "absent.yaml"
    with pytest.raises(
        CatalogueError, match=re.escape(f"cannot read region catalogue {path}: No such file or directory")
    ):
        load_catalogue(path)


def test_invalid_yaml(tmp_path):
    path = tmp_path / "regions.yaml"
    path.write_text("dns: [unclosed\nregions: {}\n")
    with pytest.raises(CatalogueError, match=rf"^{re.escape(str(path))}: not valid YAML: "):
        load_catalogue(path)


@pytest.mark.parametrize("text", ["", "# only a comment\n", "- a list\n", "just a string\n"])
def test_empty_or_non_mapping_file(tmp_path, text):
    """An empty file or a top level that is not a mapping is refused at the top level."""
    path = tmp_path / "regions.yaml"
    path.write_text(text)
    with pytest.raises(CatalogueError) as excinfo:
        load_catalogue(path)
    assert "(top level): Input should be a valid dictionary" in str(excinfo.value)


def test_empty_mapping_lists_both_sections():
    message = error_of({})
    assert "dns: required field is missing" in message
    assert "regions: required field is missing" in message


def test_integer_top_level_key_is_a_catalogue_error(tmp_path):
    path = tmp_path / "regions.yaml"
    path.write_text("1: x\n" + DEFAULT_CATALOGUE.read_text())
    with pytest.raises(CatalogueError):
        load_catalogue(path)


def test_unhashable_yaml_key_is_a_catalogue_error(tmp_path):
    path = tmp_path / "regions.yaml"
    path.write_text("? [a, b]\n: 1\n" + DEFAULT_CATALOGUE.read_text())
    with pytest.raises(CatalogueError):
        load_catalogue(path)


def test_non_utf8_file_is_a_catalogue_error(tmp_path):
    path = tmp_path / "regions.yaml"
    path.write_bytes(b"\xff\xfe" + DEFAULT_CATALOGUE.read_bytes())
    with pytest.raises(CatalogueError, match=re.escape(str(path))):
        load_catalogue(path)


def test_one_storage_connection_for_two_clouds_is_refused():
    data = variant(lambda d: d["regions"][GCP]["connections"].__setitem__("storage", "aws_us_west_2"))
    assert "connection 'aws_us_west_2' is used for aws and gcp" in error_of(data)


def test_dns_connection_must_not_be_a_non_aws_storage_connection():
    data = variant(lambda d: d["dns"].__setitem__("connection", "azure_eastus"))
    assert "connection 'azure_eastus' is used for aws and azure" in error_of(data)


def test_dns_connection_may_be_the_aws_storage_connection():
    assert parse_catalogue(variant(lambda d: d["dns"].__setitem__("connection", "aws_us_west_2"))).dns
