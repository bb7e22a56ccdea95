"""Route 53 traffic records for failover: one health check per region and the CNAMEs that steer clients.

Three record names from the catalogue's ``dns`` section, each a set of CNAMEs to the regions' own names
(``Region.dns_record``), each record carrying its region's health check:

- ``dns.record``: weighted, one record per region (set identifier: the region name);
- ``dns.latency_record``: latency, one record per serving region (set identifier: ``<region>/latency``);
- ``dns.failover_record``: failover, a PRIMARY and a SECONDARY record.

Every call goes through the amazon provider's hook with ``dns.connection``, so credentials come from the
Airflow connection. ``ensure_baseline`` creates what is missing, ``read`` says where traffic goes, and
``apply`` moves it in one change batch, which Route 53 applies atomically.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
from dataclasses import dataclass
from functools import cached_property
from typing import Any
from urllib.parse import urlsplit

from include.catalogue import Catalogue, Region
from include.errors import DnsNotReady, UnsafeTrafficChange

log = logging.getLogger(__name__)

READY_PATH = "/ready"
BASELINE_WEIGHT = 100
MAX_WEIGHT = 255  # Route 53 weights are 0 to 255
FAILOVER_ROLES = ("PRIMARY", "SECONDARY")
COMMENT_LIMIT = 256  # Route 53's limit on a change batch comment


@dataclass(frozen=True)
class TrafficState:
    """Where the traffic records point, by region name."""

    weights: dict[str, int]  # region -> weight of its weighted record
    latency_regions: frozenset[str]  # regions with a latency record
    failover: dict[str, str]  # "PRIMARY" / "SECONDARY" -> region the failover record points to

    def receiving(self) -> set[str]:
        """Regions whose weighted record has a weight above 0."""
        return {name for name, weight in self.weights.items() if weight > 0}

    def as_dict(self) -> dict[str, Any]:
        """A JSON-serialisable copy, for evidence and XCom."""
        return {
            "weights": dict(self.weights),
            "latency_regions": sorted(self.latency_regions),
            "failover": dict(self.failover),
        }


class Route53Traffic:
    """The traffic records of one catalogue's hosted zone."""

    def __init__(self, catalogue: Catalogue):
        self.catalogue = catalogue
        self.dns = catalogue.dns
        self._region_by_host = {region.dns_record: region.name for region in catalogue.regions}

    @cached_property
    def client(self):
        """A boto3 Route 53 client, with the credentials of the catalogue's DNS connection."""
        from airflow.providers.amazon.aws.hooks.base_aws import AwsGenericHook

        return AwsGenericHook(aws_conn_id=self.dns.connection, client_type="route53").conn

    @cached_property
    def zone_id(self) -> str:
        """The hosted zone's id, looked up by the zone's name."""
        found = self.client.list_hosted_zones_by_name(DNSName=self.dns.zone, MaxItems="1")["HostedZones"]
        if not found or found[0]["Name"].rstrip(".") != self.dns.zone:
            raise DnsNotReady(
                f"Route 53 hosted zone {self.dns.zone!r} (dns.zone) not found through connection "
                f"{self.dns.connection!r}; create it first"
            )
        return found[0]["Id"].removeprefix("/hostedzone/")

    # Health checks

    def health_check_config(self, region: Region) -> dict[str, Any]:
        """The HTTP(S) health check of ``region``: ``/ready`` on its serving endpoint."""
        url = urlsplit(region.serving_endpoint)
        https = url.scheme == "https"
        config: dict[str, Any] = {
            "Type": "HTTPS" if https else "HTTP",
            "Port": url.port or (443 if https else 80),
            "ResourcePath": url.path.rstrip("/") + READY_PATH,
            "RequestInterval": self.dns.health_check_interval,
            "FailureThreshold": self.dns.health_check_failure_threshold,
        }
        try:
            config["IPAddress"] = str(ipaddress.ip_address(url.hostname))
        except ValueError:
            config["FullyQualifiedDomainName"] = url.hostname
        return config

    def _caller_reference(self, region: Region, config: dict[str, Any]) -> str:
        """Deterministic for one zone, region and settings: a changed setting makes a new health check.

        Route 53 refuses a reused caller reference with different settings (HealthCheckAlreadyExists).
        """
        key = json.dumps({"zone": self.dns.zone, "region": region.name, "config": config}, sort_keys=True)
        return "mlp-" + hashlib.sha256(key.encode()).hexdigest()[:40]

    def health_check_ids(self) -> dict[str, str]:
        """Region name -> id of an existing health check with the catalogue's settings for it.

        One this class created is found by its caller reference. Otherwise a check with the same settings,
        tagged ``Name`` = the region and ``mlp-zone`` = the zone, is adopted: that is how Terraform's
        ``modules/dns`` creates them, so the platform and Terraform share one set of checks.
        """
        pages = self.client.get_paginator("list_health_checks").paginate()
        checks = [check for page in pages for check in page["HealthChecks"]]
        by_reference = {check["CallerReference"]: check["Id"] for check in checks}
        found: dict[str, str] = {}
        candidates: dict[str, str] = {}  # check id -> region name
        for region in self.catalogue.regions:
            config = self.health_check_config(region)
            reference = self._caller_reference(region, config)
            if reference in by_reference:
                found[region.name] = by_reference[reference]
                continue
            for check in checks:
                if all(check["HealthCheckConfig"].get(key) == value for key, value in config.items()):
                    candidates[check["Id"]] = region.name
        ids = list(candidates)
        for start in range(0, len(ids), 10):  # ListTagsForResources takes at most 10 ids
            tag_sets = self.client.list_tags_for_resources(
                ResourceType="healthcheck", ResourceIds=ids[start : start + 10]
            )
            for tag_set in tag_sets["ResourceTagSets"]:
                tags = {tag["Key"]: tag["Value"] for tag in tag_set["Tags"]}
                region_name = candidates[tag_set["ResourceId"]]
                if tags.get("Name") == region_name and tags.get("mlp-zone") == self.dns.zone:
                    found.setdefault(region_name, tag_set["ResourceId"])
        return found

    def _ensure_health_check(self, region: Region, existing: dict[str, str]) -> tuple[str, str]:
        config = self.health_check_config(region)
        target = f"{config['Type']} {config.get('IPAddress') or config['FullyQualifiedDomainName']}:{config['Port']}"
        target += f"{config['ResourcePath']} every {config['RequestInterval']}s"
        if region.name in existing:
            check_id, outcome = existing[region.name], "found"
        else:
            reference = self._caller_reference(region, config)
            created = self.client.create_health_check(CallerReference=reference, HealthCheckConfig=config)
            check_id, outcome = created["HealthCheck"]["Id"], "created"
        self.client.change_tags_for_resource(
            ResourceType="healthcheck",
            ResourceId=check_id,
            AddTags=[{"Key": "Name", "Value": region.name}, {"Key": "mlp-zone", "Value": self.dns.zone}],
        )
        return check_id, f"health check {region.name}: {outcome} {check_id} ({target})"

    # Records

    def _record(self, name: str, region: Region, health_check_id: str, **routing: Any) -> dict[str, Any]:
        return {
            "Name": name,
            "Type": "CNAME",
            "TTL": self.dns.ttl,
            "ResourceRecords": [{"Value": region.dns_record}],
            "HealthCheckId": health_check_id,
            **routing,
        }

    def _weighted(self, region: Region, weight: int, health_check_id: str) -> dict[str, Any]:
        return self._record(self.dns.record, region, health_check_id, SetIdentifier=region.name, Weight=weight)

    def _latency(self, region: Region, health_check_id: str) -> dict[str, Any]:
        # Not the bare region name: moto deletes every record with a DELETE's set identifier, whatever its name.
        return self._record(
            self.dns.latency_record,
            region,
            health_check_id,
            SetIdentifier=f"{region.name}/latency",
            Region=region.route53_latency_region,
        )

    def _failover(self, role: str, region: Region, health_check_id: str) -> dict[str, Any]:
        return self._record(self.dns.failover_record, region, health_check_id, SetIdentifier=role, Failover=role)

    def _region_of(self, record: dict[str, Any]) -> str | None:
        values = [r["Value"].rstrip(".").lower() for r in record.get("ResourceRecords", [])]
        return self._region_by_host.get(values[0]) if len(values) == 1 else None

    def _records(self) -> dict[str, list[dict[str, Any]]]:
        """The CNAMEs under the three traffic names, as Route 53 returns them, keyed by name."""
        names = {self.dns.record: [], self.dns.latency_record: [], self.dns.failover_record: []}
        pages = self.client.get_paginator("list_resource_record_sets").paginate(HostedZoneId=self.zone_id)
        for page in pages:
            for record in page["ResourceRecordSets"]:
                name = record["Name"].rstrip(".").lower()
                if name in names and record["Type"] == "CNAME":
                    if self._region_of(record) is None:
                        log.warning("%s points at no catalogue region and is left alone: %s", name, record)
                    else:
                        names[name].append(record)
        return names

    def _state(self, records: dict[str, list[dict[str, Any]]]) -> TrafficState:
        return TrafficState(
            weights={self._region_of(r): r["Weight"] for r in records[self.dns.record] if "Weight" in r},
            latency_regions=frozenset(self._region_of(r) for r in records[self.dns.latency_record]),
            failover={r["Failover"]: self._region_of(r) for r in records[self.dns.failover_record] if "Failover" in r},
        )

    def read(self) -> TrafficState:
        """Where the weighted, latency and failover records point now."""
        return self._state(self._records())

    def _failover_targets(self, serving: set[str]) -> tuple[Region, Region]:
        """PRIMARY: the primary region if it serves, else the first serving region in catalogue order.
        SECONDARY: the first other serving region, or the PRIMARY's if it is the only one."""
        in_order = [region for region in self.catalogue.regions if region.name in serving]
        primary = self.catalogue.primary if self.catalogue.primary.name in serving else in_order[0]
        secondary = next((region for region in in_order if region is not primary), primary)
        return primary, secondary

    def _change(self, comment: str, changes: list[dict[str, Any]]) -> str:
        batch = {"Comment": comment[:COMMENT_LIMIT], "Changes": changes}
        response = self.client.change_resource_record_sets(HostedZoneId=self.zone_id, ChangeBatch=batch)
        return response["ChangeInfo"]["Id"]

    def ensure_baseline(self) -> list[str]:
        """Create each region's health check and every missing traffic record; one line per thing.

        Records that exist are left as they are, so weights a failover changed are never reset.
        """
        existing_checks = self.health_check_ids()
        health: dict[str, str] = {}
        lines = []
        for region in self.catalogue.regions:
            health[region.name], line = self._ensure_health_check(region, existing_checks)
            lines.append(line)

        state = self.read()
        missing = []
        for region in self.catalogue.regions:
            weight = state.weights.get(region.name)
            if weight is None:
                missing.append(self._weighted(region, BASELINE_WEIGHT, health[region.name]))
            outcome = f"found (weight {weight})" if weight is not None else f"created (weight {BASELINE_WEIGHT})"
            lines.append(f"weighted {self.dns.record} -> {region.name}: {outcome}")
        for region in self.catalogue.regions:
            outcome = "found" if region.name in state.latency_regions else "created"
            if outcome == "created":
                missing.append(self._latency(region, health[region.name]))
            where = f"{region.name} ({region.route53_latency_region})"
            lines.append(f"latency {self.dns.latency_record} -> {where}: {outcome}")
        all_regions = {region.name for region in self.catalogue.regions}
        for role, region in zip(FAILOVER_ROLES, self._failover_targets(all_regions), strict=True):
            if role in state.failover:
                lines.append(f"failover {self.dns.failover_record} {role}: found (-> {state.failover[role]})")
            else:
                missing.append(self._failover(role, region, health[region.name]))
                lines.append(f"failover {self.dns.failover_record} {role}: created (-> {region.name})")
        if missing:
            changes = [{"Action": "CREATE", "ResourceRecordSet": record} for record in missing]
            self._change("mlp baseline: create the missing traffic records", changes)
        return lines

    def apply(self, weights: dict[str, int], serving: set[str]) -> str | None:
        """Set the weights and make ``serving`` the regions with latency and failover records, in one change.

        ``weights`` may name only the regions whose weight changes. Returns the change id, or None when the
        records already say so. Raises ``UnsafeTrafficChange``, changing nothing, if no region would serve.
        """
        known = self.catalogue.by_name
        unknown = sorted((set(weights) | set(serving)) - set(known))
        if unknown:
            raise UnsafeTrafficChange(f"unknown region(s) {', '.join(unknown)}; the catalogue has: {', '.join(known)}")
        if not serving:
            raise UnsafeTrafficChange("no serving region given: that would leave traffic pointed at nothing")
        out_of_range = {name: weight for name, weight in weights.items() if not 0 <= weight <= MAX_WEIGHT}
        if out_of_range:
            raise UnsafeTrafficChange(f"weights must be 0 to {MAX_WEIGHT}: {out_of_range}")

        records = self._records()
        current = self._state(records)
        target = current.weights | weights
        if not any(target.get(name, 0) > 0 for name in serving):
            raise UnsafeTrafficChange(
                f"no serving region ({', '.join(sorted(serving))}) would have a weight above 0 (weights {target}); "
                "Route 53 would then answer with every weight-0 record, drained regions included"
            )

        # The catalogue's health checks; a region whose settings changed since ensure_baseline keeps its old one.
        in_use = {self._region_of(r): r["HealthCheckId"] for rs in records.values() for r in rs if "HealthCheckId" in r}
        health = in_use | self.health_check_ids()

        def check_of(name: str) -> str:
            if name not in health:
                raise DnsNotReady(f"region {name} has no Route 53 health check; run ensure_baseline first")
            return health[name]

        changes = []
        for region in self.catalogue.regions:
            weight = weights.get(region.name)
            if weight is not None and current.weights.get(region.name) != weight:
                changes.append(("UPSERT", self._weighted(region, weight, check_of(region.name))))
        for record in records[self.dns.latency_record]:
            if self._region_of(record) not in serving:
                changes.append(("DELETE", record))  # a DELETE must carry the record exactly as it is
        for region in self.catalogue.regions:
            if region.name in serving and region.name not in current.latency_regions:
                # UPSERT, not CREATE: moto refuses to CREATE a record again once it has been deleted.
                changes.append(("UPSERT", self._latency(region, check_of(region.name))))
        existing_failover = {r["Failover"]: r for r in records[self.dns.failover_record] if "Failover" in r}
        for role, region in zip(FAILOVER_ROLES, self._failover_targets(serving), strict=True):
            existing = existing_failover.get(role)
            check_id = check_of(region.name)
            if existing is None or (self._region_of(existing), existing.get("HealthCheckId")) != (
                region.name,
                check_id,
            ):
                changes.append(("UPSERT", self._failover(role, region, check_id)))
        if not changes:
            return None

        described = ", ".join(f"{name}={target[name]}" for name in known if name in target)
        comment = f"mlp traffic: weights {described}; serving {', '.join(n for n in known if n in serving)}"
        return self._change(comment, [{"Action": action, "ResourceRecordSet": record} for action, record in changes])
