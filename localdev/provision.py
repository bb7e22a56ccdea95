"""Create what the region catalogue names (buckets, container, hosted zone and its traffic records, event queue)
through the providers' hooks, and upgrade the state database's schema.

On real clouds Terraform owns these resources; locally this stands in for it. It uses only the catalogue and
the Airflow connections in the environment, and is idempotent: what already exists is left as it is.
"""

from __future__ import annotations

from include.catalogue import Catalogue, Region


def _ensure_s3_bucket(region: Region) -> str:
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    hook = S3Hook(aws_conn_id=region.connections.storage)
    if hook.check_for_bucket(region.bucket):
        return "exists"
    hook.create_bucket(bucket_name=region.bucket, region_name=region.cloud_region)
    return "created"


def _ensure_gcs_bucket(region: Region) -> str:
    from include.clouds.hooks.gcs import GCSEndpointHook

    hook = GCSEndpointHook(gcp_conn_id=region.connections.storage)
    if hook.get_conn().lookup_bucket(region.bucket) is not None:
        return "exists"
    hook.create_bucket(bucket_name=region.bucket, location=region.cloud_region.upper(), storage_class="STANDARD")
    return "created"


def _ensure_blob_container(region: Region) -> str:
    from airflow.providers.microsoft.azure.hooks.wasb import WasbHook

    client = WasbHook(wasb_conn_id=region.connections.storage).get_conn().get_container_client(region.bucket)
    if client.exists():
        return "exists"
    client.create_container()
    return "created"


def _ensure_hosted_zone(zone: str, conn_id: str) -> str:
    from airflow.providers.amazon.aws.hooks.base_aws import AwsGenericHook

    route53 = AwsGenericHook(aws_conn_id=conn_id, client_type="route53").conn
    found = route53.list_hosted_zones_by_name(DNSName=zone, MaxItems="1")["HostedZones"]
    if found and found[0]["Name"].rstrip(".") == zone:
        return "exists"
    route53.create_hosted_zone(Name=zone, CallerReference=f"mlp-{zone}")
    return "created"


# The model-events queue is the replication DAG's durable inbox: its watcher does not delete what it receives,
# the DAG deletes a message once it has recorded it (docs/replication.md, Events). A received message comes
# back after the visibility timeout unless deleted: locally a minute, so a triggerer killed mid-batch costs a
# minute's delay (real queues: 15 minutes, see the docs). Retention at the SQS maximum, 14 days: how long a
# paused DAG or a stopped platform can leave events waiting.
EVENTS_QUEUE_ATTRIBUTES = {"VisibilityTimeout": "60", "MessageRetentionPeriod": str(14 * 24 * 3600)}


def _ensure_queue(queue_url: str, conn_id: str, attributes: dict[str, str]) -> str:
    from airflow.providers.amazon.aws.hooks.sqs import SqsHook

    client = SqsHook(aws_conn_id=conn_id).conn
    name = queue_url.rstrip("/").rsplit("/", 1)[1]
    try:
        client.get_queue_url(QueueName=name)
        return "exists"
    except client.exceptions.QueueDoesNotExist:
        client.create_queue(QueueName=name, Attributes=attributes)
        return "created"


def _ensure_state_schema(conn_id: str) -> str:
    """The state database's tables (``python -m include.state upgrade``), before anything reads or writes them."""
    from include.state.engine import state_engine
    from include.state.migrate import describe_upgrade, upgrade_state_db

    engine = state_engine(conn_id)
    try:
        return describe_upgrade(*upgrade_state_db(engine))
    finally:
        engine.dispose()


def _ensure_traffic_records(catalogue: Catalogue) -> list[str]:
    """Health checks and the weighted, latency and failover records; a fresh set voids any failover state."""
    from include.clouds.route53 import Route53Traffic
    from include.failover.store import FailoverStore

    traffic = Route53Traffic(catalogue)
    existed = bool(traffic.read().weights)
    lines = [f"dns: {line}" for line in traffic.ensure_baseline()]
    if not existed:
        store = FailoverStore.from_connection(catalogue.replication.state_connection)
        for transition in store.reset([r.name for r in catalogue.regions], "traffic records created afresh"):
            lines.append(f"failover state: {transition.describe()}")
    return lines


ENSURE_STORE = {"aws": _ensure_s3_bucket, "gcp": _ensure_gcs_bucket, "azure": _ensure_blob_container}


def provision(catalogue: Catalogue) -> list[str]:
    """Make sure the state schema, every bucket, container, the hosted zone and the event queue exist; one line
    per resource."""
    conn_id = catalogue.replication.state_connection
    lines = [f"state: database of connection {conn_id!r} {_ensure_state_schema(conn_id)}"]
    for region in catalogue.regions:
        outcome = ENSURE_STORE[region.provider](region)
        lines.append(f"{region.name}: {region.provider} bucket/container {region.bucket!r} {outcome}")
    outcome = _ensure_hosted_zone(catalogue.dns.zone, catalogue.dns.connection)
    lines.append(f"dns: Route 53 hosted zone {catalogue.dns.zone!r} {outcome}")
    lines += _ensure_traffic_records(catalogue)
    if catalogue.events:
        queues = {catalogue.events.queue_url: EVENTS_QUEUE_ATTRIBUTES, catalogue.events.reports_queue_url: {}}
        for queue_url, attributes in queues.items():
            if queue_url:
                outcome = _ensure_queue(queue_url, catalogue.events.connection, attributes)
                lines.append(f"events: SQS queue {queue_url!r} {outcome}")
    return lines
