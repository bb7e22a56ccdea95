"""The catalogue generator: `terraform output -json` files of the terraform/live roots in, a valid catalogue out.

The outputs below are written as Terraform prints them ({"name": {"sensitive": ..., "type": ..., "value": ...}})
and hold what terraform/live/{dns,aws-us-west-2,gcp-europe-west1,azure-eastus} output for their example tfvars.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from include.catalogue import DEFAULT_CATALOGUE, REPO_ROOT, load_catalogue, parse_catalogue
from localdev.terraform_catalogue import TerraformOutputError, generate, main

EXAMPLE_CLOUD = REPO_ROOT / "config" / "regions.example-cloud.yaml"

CATALOGUE_DNS = {
    "provider": "route53",
    "zone": "models.example.com",
    "record": "api.models.example.com",
    "latency_record": "latency.api.models.example.com",
    "failover_record": "failover.api.models.example.com",
    "ttl": 60,
    "health_check_interval": 10,
    "health_check_failure_threshold": 3,
    "connection": "aws_route53",
}


def dns_region(name: str, provider: str, cloud_region: str, host: str, latency_region=None, primary=False) -> dict:
    return {
        "name": name,
        "provider": provider,
        "cloud_region": cloud_region,
        "primary": primary,
        "serving_endpoint": f"https://{host}.api.models.example.com",
        "dns_record": f"{host}.api.models.example.com",
        "latency_region": latency_region,
    }


CATALOGUE_REGIONS = [
    dns_region("aws-us-west-2", "aws", "us-west-2", "us-west-2", primary=True),
    dns_region("gcp-europe-west1", "gcp", "europe-west1", "europe-west1", latency_region="eu-west-1"),
    dns_region("azure-eastus", "azure", "eastus", "eastus", latency_region="us-east-1"),
]


def region_output(name: str, provider: str, cloud_region: str, bucket: str, storage: str, kubernetes) -> dict:
    return {
        "name": name,
        "provider": provider,
        "cloud_region": cloud_region,
        "bucket": bucket,
        "connections": {"storage": storage, "kubernetes": kubernetes},
    }


AWS_REGION = region_output(
    "aws-us-west-2", "aws", "us-west-2", "example-ml-models-us-west-2", "aws_us_west_2", "k8s_aws_us_west_2"
)
GCP_REGION = region_output(
    "gcp-europe-west1", "gcp", "europe-west1", "example-ml-models-europe-west1", "gcp_europe_west1", None
)
AZURE_REGION = region_output("azure-eastus", "azure", "eastus", "models", "azure_eastus", "k8s_azure_eastus")


def terraform_type(value):
    """The type Terraform prints next to an output value (enough of it for a realistic file)."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if value is None:
        return "dynamic"
    if isinstance(value, list):
        return ["tuple", [terraform_type(item) for item in value]]
    return ["object", {key: terraform_type(item) for key, item in value.items()}]


def write_outputs(path: Path, outputs: dict) -> Path:
    """Save ``outputs`` (name -> value) as `terraform output -json` prints them."""
    document = {
        name: {"sensitive": False, "type": terraform_type(value), "value": value} for name, value in outputs.items()
    }
    path.write_text(json.dumps(document, indent=2))
    return path


@pytest.fixture
def outputs(tmp_path) -> dict[str, Path]:
    """The four roots' outputs files, with some of the other outputs each root also prints."""
    return {
        "dns": write_outputs(
            tmp_path / "dns.json",
            {
                "catalogue_dns": CATALOGUE_DNS,
                "catalogue_regions": CATALOGUE_REGIONS,
                "zone_id": "Z0123456789ABCDEFGHIJ",
                "traffic_record_names": [CATALOGUE_DNS[key] for key in ("record", "latency_record", "failover_record")],
            },
        ),
        "aws": write_outputs(
            tmp_path / "aws-us-west-2.json",
            {"catalogue_region": AWS_REGION, "cluster_name": "mlp-us-west-2", "bucket_name": AWS_REGION["bucket"]},
        ),
        "gcp": write_outputs(tmp_path / "gcp-europe-west1.json", {"catalogue_region": GCP_REGION}),
        "azure": write_outputs(tmp_path / "azure-eastus.json", {"catalogue_region": AZURE_REGION}),
    }


def generated(outputs: dict[str, Path], base: Path | None = None) -> dict:
    regions = {provider: [outputs[provider]] for provider in ("aws", "gcp", "azure")}
    return yaml.safe_load(generate(outputs["dns"], regions, base))


def test_generated_catalogue_is_valid_and_carries_the_outputs(outputs):
    catalogue = parse_catalogue(generated(outputs))

    assert [region.name for region in catalogue.regions] == ["aws-us-west-2", "gcp-europe-west1", "azure-eastus"]
    assert catalogue.primary.name == "aws-us-west-2"
    assert catalogue.secondary.name == "gcp-europe-west1"
    assert {region.name: region.bucket for region in catalogue.regions} == {
        "aws-us-west-2": "example-ml-models-us-west-2",
        "gcp-europe-west1": "example-ml-models-europe-west1",
        "azure-eastus": "models",
    }
    assert catalogue.region("azure-eastus").serving_endpoint == "https://eastus.api.models.example.com"
    assert catalogue.region("gcp-europe-west1").dns_record == "europe-west1.api.models.example.com"
    assert catalogue.region("gcp-europe-west1").route53_latency_region == "eu-west-1"
    assert catalogue.region("aws-us-west-2").route53_latency_region == "us-west-2"
    assert catalogue.dns.model_dump() == CATALOGUE_DNS
    connections = {region.name: region.connections.model_dump() for region in catalogue.regions}
    assert connections == {  # the serving token's connection is the base catalogue's: Terraform does not make it
        "aws-us-west-2": {"storage": "aws_us_west_2", "kubernetes": "k8s_aws_us_west_2", "serving": None},
        "gcp-europe-west1": {"storage": "gcp_europe_west1", "kubernetes": None, "serving": None},
        "azure-eastus": {"storage": "azure_eastus", "kubernetes": "k8s_azure_eastus", "serving": None},
    }


def test_null_outputs_are_left_out_not_written_as_null(outputs):
    regions = {region["name"]: region for region in generated(outputs)["regions"]}

    assert "latency_region" not in regions["aws-us-west-2"]
    assert "kubernetes" not in regions["gcp-europe-west1"]["connections"]
    assert "primary" not in regions["azure-eastus"]


def test_base_catalogue_supplies_what_terraform_does_not_know(outputs):
    data = generated(outputs, base=DEFAULT_CATALOGUE)
    base = yaml.safe_load(DEFAULT_CATALOGUE.read_text())

    assert list(data) == list(base), "sections keep the base catalogue's order"
    for section in ("events", "replication", "health", "failover", "cost"):
        assert data[section] == base[section]
    assert data["dns"] == CATALOGUE_DNS, "dns comes from Terraform, not from the base"
    gcp = next(region for region in data["regions"] if region["name"] == "gcp-europe-west1")
    assert gcp["failover_strategy"] == "graceful"
    assert gcp["connections"]["serving"] == "serving_gcp_europe_west1", "the serving token's connection too"
    assert gcp["bucket"] == "example-ml-models-europe-west1", "buckets come from Terraform"
    parse_catalogue(data)


def test_cli_writes_a_catalogue_load_catalogue_reads(outputs, tmp_path, capsys):
    target = tmp_path / "regions.yaml"
    argv = ["--dns", str(outputs["dns"]), "--aws", str(outputs["aws"]), "--gcp", str(outputs["gcp"])]
    argv += ["--azure", str(outputs["azure"]), "--base", str(DEFAULT_CATALOGUE), "-o", str(target)]

    assert main(argv) == 0

    text = target.read_text()
    assert text.startswith("# The region catalogue, generated by `python -m localdev.terraform_catalogue`")
    assert str(outputs["dns"]) in text.splitlines()[1]
    catalogue = load_catalogue(target)
    assert catalogue.region("aws-us-west-2").bucket == "example-ml-models-us-west-2"
    assert catalogue.cost is not None
    assert f"wrote {target}" in capsys.readouterr().err


def test_cli_reports_an_error_on_stderr_and_exits_1(outputs, capsys):
    assert main(["--dns", str(outputs["dns"]), "--aws", str(outputs["aws"])]) == 1

    err = capsys.readouterr().err
    assert err.startswith("error: no region outputs for gcp-europe-west1, azure-eastus")


def test_missing_dns_outputs_are_named(outputs):
    write_outputs(outputs["dns"], {"catalogue_dns": CATALOGUE_DNS, "zone_id": "Z0123456789ABCDEFGHIJ"})

    with pytest.raises(TerraformOutputError, match=r"dns\.json: missing Terraform output\(s\) catalogue_regions;"):
        generated(outputs)


def test_missing_region_output_is_named_with_its_file(outputs):
    write_outputs(outputs["gcp"], {"bucket_name": "example-ml-models-europe-west1"})

    with pytest.raises(TerraformOutputError) as excinfo:
        generated(outputs)
    assert "gcp-europe-west1.json: missing Terraform output(s) catalogue_region" in str(excinfo.value)


def test_missing_fields_of_an_output_are_named(outputs):
    write_outputs(outputs["aws"], {"catalogue_region": {key: AWS_REGION[key] for key in ("name", "provider")}})

    with pytest.raises(TerraformOutputError) as excinfo:
        generated(outputs)
    message = str(excinfo.value)
    assert "aws-us-west-2.json: catalogue_region: missing field(s) cloud_region, bucket, connections" in message


def test_a_region_without_its_root_outputs_is_named(outputs):
    with pytest.raises(TerraformOutputError, match="no region outputs for azure-eastus"):
        yaml.safe_load(generate(outputs["dns"], {"aws": [outputs["aws"]], "gcp": [outputs["gcp"]]}))


def test_a_region_missing_from_dns_is_named(outputs):
    write_outputs(outputs["dns"], {"catalogue_dns": CATALOGUE_DNS, "catalogue_regions": CATALOGUE_REGIONS[:2]})

    with pytest.raises(TerraformOutputError, match=r"region\(s\) azure-eastus have region outputs but are not in"):
        generated(outputs)


def test_outputs_given_for_the_wrong_cloud_are_refused(outputs):
    with pytest.raises(TerraformOutputError, match="region gcp-europe-west1 is on gcp, but was given as --aws"):
        generate(outputs["dns"], {"aws": [outputs["aws"], outputs["gcp"]], "azure": [outputs["azure"]]})


def test_the_same_region_twice_is_refused(outputs, tmp_path):
    copy = write_outputs(tmp_path / "copy.json", {"catalogue_region": AWS_REGION})

    with pytest.raises(TerraformOutputError, match="region aws-us-west-2 also comes from"):
        generate(outputs["dns"], {"aws": [outputs["aws"], copy], "gcp": [outputs["gcp"]], "azure": [outputs["azure"]]})


def test_regions_disagreeing_on_their_cloud_region_are_refused(outputs):
    write_outputs(outputs["aws"], {"catalogue_region": {**AWS_REGION, "cloud_region": "us-east-1"}})

    with pytest.raises(TerraformOutputError, match="cloud_region is 'us-east-1' in .* but 'us-west-2' in"):
        generated(outputs)


def test_a_file_that_is_not_terraform_output_is_refused(outputs):
    outputs["azure"].write_text(json.dumps({"catalogue_region": AZURE_REGION}))  # values without the wrapper

    with pytest.raises(TerraformOutputError, match=r"not the output of `terraform output -json`"):
        generated(outputs)

    outputs["azure"].write_text("catalogue_region = {}")
    with pytest.raises(TerraformOutputError, match=r"azure-eastus\.json: not JSON"):
        generated(outputs)


def test_an_invalid_catalogue_is_refused_by_parse_catalogue(outputs):
    """The joined data goes through the catalogue's own validation: here a bucket S3 would refuse."""
    write_outputs(outputs["aws"], {"catalogue_region": {**AWS_REGION, "bucket": "Not_A_Bucket"}})

    with pytest.raises(ValueError, match=r"regions\[0\] \(aws-us-west-2\): bucket 'Not_A_Bucket' is not a valid"):
        generated(outputs)


def test_a_base_naming_other_regions_is_refused_clearly(outputs):
    """regions.example-cloud.yaml probes azure-southeastasia; these outputs have azure-eastus instead."""
    with pytest.raises(ValueError, match="vantage point 'from-gcp' names unknown regions: azure-southeastasia"):
        generated(outputs, base=EXAMPLE_CLOUD)
