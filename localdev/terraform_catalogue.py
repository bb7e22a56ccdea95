"""Generate the region catalogue (``config/regions.yaml``'s shape) from Terraform outputs.

Each root configuration under ``terraform/live`` prints its part of the catalogue with ``terraform output -json``:

- the dns root: ``catalogue_dns`` (the ``dns`` section) and ``catalogue_regions`` (every region in catalogue
  order, with the fields DNS decides: primary, serving_endpoint, dns_record, latency_region);
- each region root: ``catalogue_region`` (its name, provider, cloud_region, bucket and connection ids).

This joins them by region name, takes what Terraform does not know from an optional base catalogue (the
``events``, ``replication``, ``health``, ``failover`` and ``cost`` sections, and each region's
``failover_strategy`` and ``connections.serving``, the connection of its serving bearer token), validates the
result with ``parse_catalogue`` and writes it as YAML::

    python -m localdev.terraform_catalogue --dns dns.json --aws aws-us-west-2.json --gcp gcp-europe-west1.json \\
        --azure azure-eastus.json --base config/regions.example-cloud.yaml -o regions.yaml

where each JSON file is ``terraform -chdir=terraform/live/<root> output -json > <root>.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from include.catalogue import parse_catalogue
from include.errors import CatalogueError

PROVIDERS = ("aws", "gcp", "azure")
DNS_OUTPUTS = ("catalogue_dns", "catalogue_regions")
REGION_OUTPUT = "catalogue_region"
DNS_FIELDS = (
    "provider",
    "zone",
    "record",
    "latency_record",
    "failover_record",
    "ttl",
    "health_check_interval",
    "health_check_failure_threshold",
    "connection",
)
DNS_REGION_FIELDS = ("name", "provider", "cloud_region", "primary", "serving_endpoint", "dns_record", "latency_region")
REGION_FIELDS = ("name", "provider", "cloud_region", "bucket", "connections")
# Region settings that are the platform's, not the infrastructure's: kept from the base catalogue.
BASE_REGION_FIELDS = ("failover_strategy",)


class TerraformOutputError(ValueError):
    """An outputs file is unreadable, incomplete or inconsistent with the others; the message says which."""


def read_outputs(path: Path) -> dict[str, Any]:
    """The values of ``terraform output -json`` saved at ``path``, by output name."""
    try:
        document = json.loads(path.read_text())
    except OSError as exc:
        raise TerraformOutputError(f"cannot read Terraform outputs {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise TerraformOutputError(
            f"{path}: not JSON ({exc.msg}, line {exc.lineno}); save `terraform output -json`"
        ) from None
    if not isinstance(document, dict) or not all(
        isinstance(output, dict) and "value" in output for output in document.values()
    ):
        raise TerraformOutputError(
            f'{path}: not the output of `terraform output -json` (an object of {{"name": {{"value": ...}}}})'
        )
    return {name: output["value"] for name, output in document.items()}


def _require(outputs: dict[str, Any], names: tuple[str, ...], source: str, root: str) -> None:
    missing = [name for name in names if name not in outputs]
    if missing:
        raise TerraformOutputError(
            f"{source}: missing Terraform output(s) {', '.join(missing)}; is this `terraform output -json` of "
            f"terraform/live/{root}, applied with this version of the configuration?"
        )


def _require_fields(value: Any, fields: tuple[str, ...], where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TerraformOutputError(f"{where}: expected an object, got {type(value).__name__}")
    missing = [field for field in fields if field not in value]
    if missing:
        raise TerraformOutputError(f"{where}: missing field(s) {', '.join(missing)}")
    return value


def _without_nulls(mapping: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in mapping.items() if value is not None}


def build_catalogue(
    dns_outputs: dict[str, Any],
    region_outputs: list[tuple[str, str, dict[str, Any]]],
    base: dict[str, Any] | None = None,
    dns_source: str = "dns outputs",
) -> dict[str, Any]:
    """The catalogue data (not yet validated) from the dns root's outputs and each region root's.

    ``region_outputs`` holds ``(provider, source, outputs)`` per region root; ``base`` is a loaded catalogue
    whose non-Terraform sections and region settings are kept.
    """
    _require(dns_outputs, DNS_OUTPUTS, dns_source, "dns")
    dns = _require_fields(dns_outputs["catalogue_dns"], DNS_FIELDS, f"{dns_source}: catalogue_dns")
    dns_regions = dns_outputs["catalogue_regions"]
    if not isinstance(dns_regions, list) or not dns_regions:
        raise TerraformOutputError(f"{dns_source}: catalogue_regions must be a non-empty list of regions")

    infrastructure: dict[str, tuple[str, dict[str, Any]]] = {}
    for provider, source, outputs in region_outputs:
        _require(outputs, (REGION_OUTPUT,), source, f"{provider}-<region>")
        region = _require_fields(outputs[REGION_OUTPUT], REGION_FIELDS, f"{source}: {REGION_OUTPUT}")
        if region["provider"] != provider:
            raise TerraformOutputError(
                f"{source}: region {region['name']} is on {region['provider']}, but was given as --{provider}"
            )
        if region["name"] in infrastructure:
            raise TerraformOutputError(
                f"{source}: region {region['name']} also comes from {infrastructure[region['name']][0]}"
            )
        infrastructure[region["name"]] = (source, region)

    dns_names = [
        _require_fields(region, DNS_REGION_FIELDS, f"{dns_source}: catalogue_regions[{index}]")["name"]
        for index, region in enumerate(dns_regions)
    ]
    without_infrastructure = [name for name in dns_names if name not in infrastructure]
    if without_infrastructure:
        raise TerraformOutputError(
            f"no region outputs for {', '.join(without_infrastructure)} (named in {dns_source}); give each region "
            "root's `terraform output -json` with --aws, --gcp or --azure"
        )
    without_dns = [name for name in infrastructure if name not in dns_names]
    if without_dns:
        raise TerraformOutputError(
            f"region(s) {', '.join(without_dns)} have region outputs but are not in {dns_source} catalogue_regions; "
            "add them to the dns root's regions and apply it"
        )

    base = base or {}
    base_regions = {region.get("name"): region for region in base.get("regions") or [] if isinstance(region, dict)}
    regions = []
    for dns_region in dns_regions:
        source, region = infrastructure[dns_region["name"]]
        for field in ("provider", "cloud_region"):
            if region[field] != dns_region[field]:
                raise TerraformOutputError(
                    f"region {region['name']}: {field} is {region[field]!r} in {source} "
                    f"but {dns_region[field]!r} in {dns_source}"
                )
        base_region = base_regions.get(region["name"], {})
        kept = {field: base_region.get(field) for field in BASE_REGION_FIELDS}
        serving = (base_region.get("connections") or {}).get("serving")
        regions.append(
            _without_nulls(
                {
                    "name": region["name"],
                    "provider": region["provider"],
                    "cloud_region": region["cloud_region"],
                    "primary": dns_region["primary"] or None,
                    "bucket": region["bucket"],
                    "serving_endpoint": dns_region["serving_endpoint"],
                    "dns_record": dns_region["dns_record"],
                    "latency_region": dns_region["latency_region"],
                    **kept,
                    "connections": _without_nulls(dict(region["connections"]) | {"serving": serving}),
                }
            )
        )

    generated = {"dns": {field: dns[field] for field in DNS_FIELDS}, "regions": regions}
    # The base's sections in the base's order, dns and regions replacing its own (or first, if it has none).
    kept = {key: generated.get(key, value) for key, value in base.items()}
    return {**{key: value for key, value in generated.items() if key not in kept}, **kept}


def load_base(path: Path) -> dict[str, Any]:
    """A catalogue file as plain data (it is validated only as part of the generated catalogue)."""
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise TerraformOutputError(f"cannot read base catalogue {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise TerraformOutputError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise TerraformOutputError(f"{path}: a catalogue is a mapping of sections")
    return data


def generate(
    dns: Path,
    regions: dict[str, list[Path]],
    base: Path | None = None,
) -> str:
    """The validated catalogue as YAML text, from the outputs files (``regions``: provider -> files)."""
    region_outputs = [
        (provider, str(path), read_outputs(path)) for provider in PROVIDERS for path in regions.get(provider, [])
    ]
    data = build_catalogue(read_outputs(dns), region_outputs, load_base(base) if base else None, dns_source=str(dns))
    parse_catalogue(data, source="the generated catalogue")
    sources = [str(dns), *(source for _, source, _ in region_outputs)] + ([f"base {base}"] if base else [])
    header = (
        "# The region catalogue, generated by `python -m localdev.terraform_catalogue` from\n"
        + "".join(f"#   {source}\n" for source in sources)
        + "# dns and regions come from Terraform outputs: change them in terraform/live and generate again.\n"
    )
    return header + yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m localdev.terraform_catalogue",
        description="Generate the region catalogue from `terraform output -json` of the terraform/live roots.",
    )
    parser.add_argument("--dns", type=Path, required=True, help="outputs of terraform/live/dns")
    for provider in PROVIDERS:
        parser.add_argument(
            f"--{provider}",
            type=Path,
            action="append",
            default=[],
            metavar="OUTPUTS_JSON",
            help=f"outputs of a {provider} region root (repeat for several regions)",
        )
    parser.add_argument("--base", type=Path, help="a catalogue whose other sections and failover_strategy are kept")
    parser.add_argument("-o", "--output", type=Path, help="where to write the catalogue (default: stdout)")
    args = parser.parse_args(argv)

    try:
        text = generate(args.dns, {provider: getattr(args, provider) for provider in PROVIDERS}, args.base)
    except (TerraformOutputError, CatalogueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.output:
        args.output.write_text(text)
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
