"""The Route 53 traffic records (health checks, weighted, latency and failover CNAMEs) against moto.

The module works in a hosted zone of its own, with DNS settings that differ from the defaults, so what it
asserts comes from the catalogue and no other test's records are touched. moto's health checks are always
healthy, and its changes are INSYNC at once.
"""

from __future__ import annotations

import json

import pytest

from include.clouds.route53 import Route53Traffic, TrafficState
from include.errors import UnsafeTrafficChange
from tests.integration.dns_zone import catalogue_in_fresh_zone

pytestmark = pytest.mark.integration

AWS, GCP, AZURE = "aws-us-west-2", "gcp-europe-west1", "azure-eastus"
ALL = {AWS, GCP, AZURE}
FULL = {AWS: 100, GCP: 100, AZURE: 100}


@pytest.fixture(scope="module")
def baseline(local_clouds):
    """The zone's traffic layer and the lines of its first ``ensure_baseline``."""
    catalogue = catalogue_in_fresh_zone(ttl=45, health_check_interval=30, health_check_failure_threshold=2)
    traffic = Route53Traffic(catalogue)
    return traffic, traffic.ensure_baseline()


@pytest.fixture
def traffic(baseline) -> Route53Traffic:
    """The traffic layer with every region at weight 100 and serving, as each test starts."""
    traffic, _ = baseline
    traffic.apply(FULL, ALL)
    return traffic


def records(traffic: Route53Traffic, name: str) -> dict[str, dict]:
    """The CNAMEs called ``name``, by set identifier."""
    found = traffic.client.list_resource_record_sets(HostedZoneId=traffic.zone_id)["ResourceRecordSets"]
    return {r["SetIdentifier"]: r for r in found if r["Name"] == name + "." and r["Type"] == "CNAME"}


def target(record: dict) -> str:
    return record["ResourceRecords"][0]["Value"]


def all_records(traffic: Route53Traffic) -> list[dict]:
    return traffic.client.list_resource_record_sets(HostedZoneId=traffic.zone_id)["ResourceRecordSets"]


def test_baseline_creates_health_checks_and_records_from_the_catalogue(baseline):
    traffic, lines = baseline
    catalogue, dns = traffic.catalogue, traffic.catalogue.dns
    assert len(lines) == 3 + 3 + 3 + 2
    assert all(": created" in line for line in lines), lines

    checks = traffic.health_check_ids()
    assert set(checks) == ALL and len(set(checks.values())) == 3
    for region in catalogue.regions:
        check = traffic.client.get_health_check(HealthCheckId=checks[region.name])["HealthCheck"]
        config = check["HealthCheckConfig"]
        assert config["Type"] == "HTTP" and config["IPAddress"] == "127.0.0.1"
        assert config["Port"] == int(region.serving_endpoint.rsplit(":", 1)[1])
        assert config["ResourcePath"] == "/ready"
        assert (config["RequestInterval"], config["FailureThreshold"]) == (30, 2)
        tags = traffic.client.list_tags_for_resource(ResourceType="healthcheck", ResourceId=checks[region.name])
        assert {"Key": "Name", "Value": region.name} in tags["ResourceTagSet"]["Tags"]

    weighted = records(traffic, dns.record)
    assert set(weighted) == ALL
    latency = {r["Region"]: r for r in records(traffic, dns.latency_record).values()}
    assert set(latency) == {"us-west-2", "eu-west-1", "us-east-1"}
    for region in catalogue.regions:
        record = weighted[region.name]
        assert (record["Weight"], record["TTL"], target(record)) == (100, 45, region.dns_record)
        assert record["HealthCheckId"] == checks[region.name]
        record = latency[region.route53_latency_region]
        assert (record["TTL"], target(record), record["HealthCheckId"]) == (45, region.dns_record, checks[region.name])

    failover = {r["Failover"]: r for r in records(traffic, dns.failover_record).values()}
    assert target(failover["PRIMARY"]) == catalogue.primary.dns_record
    assert failover["PRIMARY"]["HealthCheckId"] == checks[catalogue.primary.name]
    assert target(failover["SECONDARY"]) == catalogue.secondary.dns_record
    assert failover["SECONDARY"]["HealthCheckId"] == checks[catalogue.secondary.name]
    assert {r["TTL"] for r in failover.values()} == {45}


def test_baseline_again_creates_nothing_and_keeps_a_changed_weight(traffic):
    checks = traffic.health_check_ids()
    traffic.apply({GCP: 50}, ALL)

    lines = traffic.ensure_baseline()

    assert not [line for line in lines if "created" in line], lines
    assert f"weighted {traffic.dns.record} -> {GCP}: found (weight 50)" in lines
    assert traffic.health_check_ids() == checks
    all_checks = traffic.client.list_health_checks()["HealthChecks"]
    assert sum(check["Id"] in checks.values() for check in all_checks) == 3
    assert traffic.read().weights[GCP] == 50


def test_read_reports_where_traffic_goes(traffic):
    state = traffic.read()

    assert state == TrafficState(
        weights=FULL, latency_regions=frozenset(ALL), failover={"PRIMARY": AWS, "SECONDARY": GCP}
    )
    assert state.receiving() == ALL
    assert json.loads(json.dumps(state.as_dict())) == {
        "weights": FULL,
        "latency_regions": sorted(ALL),
        "failover": {"PRIMARY": AWS, "SECONDARY": GCP},
    }


def test_draining_the_primary_moves_every_record_and_its_health_check(traffic):
    checks = traffic.health_check_ids()

    change_id = traffic.apply({AWS: 0}, {GCP, AZURE})

    assert change_id and traffic.client.get_change(Id=change_id)["ChangeInfo"]["Status"] == "INSYNC"
    state = traffic.read()
    assert state.weights == {AWS: 0, GCP: 100, AZURE: 100}
    assert state.receiving() == {GCP, AZURE}
    assert state.latency_regions == {GCP, AZURE}
    assert state.failover == {"PRIMARY": GCP, "SECONDARY": AZURE}
    failover = {r["Failover"]: r for r in records(traffic, traffic.dns.failover_record).values()}
    assert failover["PRIMARY"]["HealthCheckId"] == checks[GCP]
    assert failover["SECONDARY"]["HealthCheckId"] == checks[AZURE]
    assert records(traffic, traffic.dns.record)[AWS]["HealthCheckId"] == checks[AWS]


def test_draining_a_secondary_leaves_the_primary_in_place(traffic):
    traffic.apply({GCP: 0}, {AWS, AZURE})

    state = traffic.read()
    assert state.receiving() == {AWS, AZURE} and state.latency_regions == {AWS, AZURE}
    assert state.failover == {"PRIMARY": AWS, "SECONDARY": AZURE}


def test_one_serving_region_is_both_primary_and_secondary(traffic):
    traffic.apply({AWS: 0, GCP: 0}, {AZURE})

    state = traffic.read()
    assert state.receiving() == {AZURE} and state.latency_regions == {AZURE}
    assert state.failover == {"PRIMARY": AZURE, "SECONDARY": AZURE}


def test_restoring_puts_back_the_baseline_and_then_changes_nothing(traffic):
    traffic.apply({AWS: 0, GCP: 0}, {AZURE})

    assert traffic.apply(FULL, ALL) is not None

    state = traffic.read()
    assert state == TrafficState(
        weights=FULL, latency_regions=frozenset(ALL), failover={"PRIMARY": AWS, "SECONDARY": GCP}
    )
    assert {r["Region"] for r in records(traffic, traffic.dns.latency_record).values()} == {
        "us-west-2",
        "eu-west-1",
        "us-east-1",
    }
    assert traffic.apply(FULL, ALL) is None


@pytest.mark.parametrize(
    ("weights", "serving", "message"),
    [
        ({AWS: 0, GCP: 0, AZURE: 0}, ALL, "no serving region .* would have a weight above 0"),
        ({AZURE: 0}, {AZURE}, "no serving region \\(azure-eastus\\) would have a weight above 0"),
        (FULL, set(), "no serving region given"),
        ({"aws-mars-1": 100}, ALL, "unknown region.*aws-mars-1"),
        (FULL, {AWS, "gcp-moon1"}, "unknown region.*gcp-moon1"),
        ({AWS: 256}, ALL, "weights must be 0 to 255"),
    ],
    ids=["all-weights-0", "last-region-drained", "empty-serving", "unknown-weight", "unknown-serving", "weight-256"],
)
def test_unsafe_changes_are_refused_and_change_nothing(traffic, weights, serving, message):
    traffic.apply({AWS: 0, GCP: 0}, {AZURE})  # one region left serving
    before = all_records(traffic)

    with pytest.raises(UnsafeTrafficChange, match=message):
        traffic.apply(weights, serving)

    assert all_records(traffic) == before


def test_health_checks_made_by_terraform_are_adopted_not_duplicated(local_clouds):
    """Terraform's modules/dns makes each region's check with the same settings and the tags Name and mlp-zone,
    but its own caller reference; ensure_baseline and apply use those checks instead of creating a second set.
    A check with the same settings tagged for another zone is not taken."""
    catalogue = catalogue_in_fresh_zone(health_check_interval=10, health_check_failure_threshold=3)
    traffic = Route53Traffic(catalogue)
    made = {}
    for region in catalogue.regions:
        config = traffic.health_check_config(region)
        for zone in ("another.zone.example", catalogue.dns.zone):  # a look-alike first, then "Terraform's"
            check_id = traffic.client.create_health_check(
                CallerReference=f"terraform-{zone}-{region.name}", HealthCheckConfig=config
            )["HealthCheck"]["Id"]
            tags = [{"Key": "Name", "Value": region.name}, {"Key": "mlp-zone", "Value": zone}]
            traffic.client.change_tags_for_resource(ResourceType="healthcheck", ResourceId=check_id, AddTags=tags)
        made[region.name] = check_id
    before = len(traffic.client.list_health_checks()["HealthChecks"])

    lines = traffic.ensure_baseline()
    assert [line for line in lines if line.startswith("health check")] == [
        line for line in lines if line.startswith("health check") and ": found " in line
    ]
    assert len(traffic.client.list_health_checks()["HealthChecks"]) == before  # none created
    assert traffic.health_check_ids() == made
    traffic.apply({AWS: 0}, {GCP, AZURE})
    weighted = records(traffic, catalogue.dns.record)
    assert {name: r["HealthCheckId"] for name, r in weighted.items()} == made
