"""A hosted zone of its own for a test module, so tests that move traffic share no records."""

from __future__ import annotations

import uuid

from include.catalogue import Catalogue, load_catalogue, parse_catalogue


def catalogue_in_fresh_zone(**dns_settings) -> Catalogue:
    """The local catalogue moved into a new, empty Route 53 hosted zone (created on moto), with ``dns_settings``."""
    from airflow.providers.amazon.aws.hooks.base_aws import AwsGenericHook

    base = load_catalogue()
    zone = f"t{uuid.uuid4().hex[:12]}.{base.dns.zone}"
    data = base.model_dump(mode="json")
    for field in ("record", "latency_record", "failover_record"):
        data["dns"][field] = data["dns"][field].removesuffix(base.dns.zone) + zone
    data["dns"] |= {"zone": zone, **dns_settings}
    for region in data["regions"]:
        region["dns_record"] = region["dns_record"].removesuffix(base.dns.zone) + zone
    catalogue = parse_catalogue(data, source=f"catalogue in {zone}")
    route53 = AwsGenericHook(aws_conn_id=catalogue.dns.connection, client_type="route53").conn
    route53.create_hosted_zone(Name=zone, CallerReference=f"test-{zone}")
    return catalogue
