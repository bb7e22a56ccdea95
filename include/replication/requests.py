"""Replication requests: from the trigger form or REST API ``conf``, and from model-registry events.

Every way in ends as a ``ReplicationRequest`` (model, version, source region, target regions), validated
against the catalogue; a bad request raises ``InvalidRequest`` naming the field. Registry events arrive as
SQS message bodies in one of two shapes:

- MLflow ``model_version.created`` webhook: ``{"entity": "model_version", "action": "created",
  "timestamp": ..., "data": {"name": ..., "version": ..., "source": "s3://bucket/...", "tags": {...}}}``
- Amazon EventBridge "SageMaker Model Package State Change" with ``ModelApprovalStatus: Approved``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

from include.catalogue import Catalogue
from include.errors import CatalogueError, InvalidModelVersion, InvalidRequest, quoted
from include.replication.manifest import MODEL_NAME, VERSION, check_model_name, check_version

# JSON-schema keywords of the model and version fields of a trigger form (the DAGs' Params), the same rules
# as check_model_name and check_version: Airflow refuses a conf that breaks them before the run exists.
MODEL_NAME_RULES = {"minLength": 1, "pattern": MODEL_NAME.pattern}
VERSION_RULES = {"minLength": 1, "pattern": VERSION.pattern}

URI_PROVIDERS = {"s3": "aws", "gs": "gcp", "azure": "azure", "wasbs": "azure", "abfss": "azure"}
SOURCE_REGION_TAG = "mlp.source_region"


@dataclass(frozen=True)
class ReplicationRequest:
    model: str
    version: str
    source_region: str
    targets: tuple[str, ...]
    event_time: str | None = None
    origin: str = "manual"

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.model, self.version, self.source_region)


def _parse_time(value: object, field: str) -> str | None:
    if value in (None, ""):
        return None
    if isinstance(value, bool):
        raise InvalidRequest(f"{field}: {value!r} is not a time (ISO 8601 or epoch)")
    try:
        if isinstance(value, int | float):  # epoch milliseconds (MLflow) or seconds
            seconds = value / 1000 if value > 1e11 else value
            moment = datetime.fromtimestamp(seconds, UTC)
        else:
            moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except (ValueError, OverflowError, OSError):
        raise InvalidRequest(f"{field}: {value!r} is not a time (ISO 8601 or epoch)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat()


def build_request(
    catalogue: Catalogue,
    model: object,
    version: object,
    source_region: object,
    targets: object = None,
    event_time: object = None,
    origin: str = "manual",
) -> ReplicationRequest:
    """Validate one request against the catalogue; targets default to every region but the source."""
    try:
        model = check_model_name(model)
        version = check_version(version)
    except InvalidModelVersion as exc:
        raise InvalidRequest(str(exc)) from None
    if not isinstance(source_region, str):
        raise InvalidRequest(f"source_region: expected a region name, got {source_region!r}")
    try:
        catalogue.region(source_region)
    except CatalogueError as exc:
        raise InvalidRequest(f"source_region: {exc}") from None
    if targets in (None, [], ()):
        targets = [r.name for r in catalogue.regions if r.name != source_region]
    if not isinstance(targets, list | tuple) or not all(isinstance(t, str) for t in targets):
        raise InvalidRequest(f"targets: expected a list of region names, got {targets!r}")
    for target in targets:
        try:
            catalogue.region(target)
        except CatalogueError as exc:
            raise InvalidRequest(f"targets: {exc}") from None
        if target == source_region:
            raise InvalidRequest(f"targets: {target!r} is the source region")
    if len(set(targets)) != len(targets):
        raise InvalidRequest(f"targets: a region is listed twice in {list(targets)}")
    return ReplicationRequest(
        model, version, source_region, tuple(targets), _parse_time(event_time, "event_time"), origin
    )


CONF_FIELDS = {"model", "version", "source_region", "targets", "event_time"}


def from_conf(catalogue: Catalogue, conf: dict) -> ReplicationRequest:
    """A request from a DAG run's ``conf`` (trigger form or ``POST /api/v2/dags/.../dagRuns``)."""
    if not isinstance(conf, dict):
        raise InvalidRequest("conf must be a JSON object")
    unknown = sorted(set(conf) - CONF_FIELDS)
    if unknown:
        raise InvalidRequest(f"unknown field(s) {unknown}; expected {sorted(CONF_FIELDS)}")
    for name in ("model", "version"):
        if conf.get(name) in (None, ""):
            raise InvalidRequest(f"{name}: required field is missing")
    return build_request(
        catalogue,
        conf["model"],
        conf["version"],
        conf.get("source_region") or catalogue.primary.name,
        conf.get("targets"),
        conf.get("event_time"),
    )


def _source_region_of_uri(catalogue: Catalogue, uri: object) -> str | None:
    if not isinstance(uri, str):
        return None
    parts = urlsplit(uri)
    provider = URI_PROVIDERS.get(parts.scheme)
    if provider is None:
        return None
    bucket = parts.netloc.split("@")[0]  # abfss://container@account...
    region = catalogue.region_of_bucket(provider, bucket)
    return region.name if region else None


def _object(value: object, where: str) -> dict:
    """``value`` if it is a JSON object (``{}`` for null), else ``InvalidRequest`` naming ``where``."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidRequest(f"{where} must be a JSON object, got {type(value).__name__}")
    return value


def from_registry_event(catalogue: Catalogue, body: str | dict) -> ReplicationRequest | None:
    """A request from a registry event, or None for an event that asks for no replication.

    Returns None for other MLflow events and for SageMaker packages that are not ``Approved``.
    """
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except ValueError:
            raise InvalidRequest(f"event body is not JSON: {quoted(body)}") from None
    if not isinstance(body, dict):
        raise InvalidRequest("event body must be a JSON object")

    if body.get("source") == "aws.sagemaker":
        if body.get("detail-type") != "SageMaker Model Package State Change":
            return None
        detail = _object(body.get("detail"), "SageMaker event: detail")
        if detail.get("ModelApprovalStatus") != "Approved":
            return None
        specification = _object(detail.get("InferenceSpecification"), "SageMaker event: InferenceSpecification")
        containers = specification.get("Containers") or [{}]
        if not isinstance(containers, list):
            raise InvalidRequest("SageMaker event: InferenceSpecification.Containers must be a list")
        container = _object(containers[0], "SageMaker event: InferenceSpecification.Containers[0]")
        source = _source_region_of_uri(catalogue, container.get("ModelDataUrl"))
        if source is None:
            aws_region = body.get("region")
            source = next(
                (r.name for r in catalogue.regions if r.provider == "aws" and r.cloud_region == aws_region), None
            )
        if source is None:
            raise InvalidRequest(
                f"SageMaker event: no catalogue region for ModelDataUrl or region {body.get('region')!r}"
            )
        return build_request(
            catalogue,
            detail.get("ModelPackageGroupName"),
            detail.get("ModelPackageVersion"),
            source,
            event_time=body.get("time"),
            origin="sagemaker",
        )

    if body.get("entity") == "model_version" or "action" in body:
        if (body.get("entity"), body.get("action")) != ("model_version", "created"):
            return None
        data = body.get("data")
        if not isinstance(data, dict):
            raise InvalidRequest("MLflow event: 'data' must be an object with name and version")
        tags = _object(data.get("tags"), "MLflow event: data.tags")
        source = tags.get(SOURCE_REGION_TAG) or _source_region_of_uri(catalogue, data.get("source"))
        if source is None:
            raise InvalidRequest(
                f"MLflow event: cannot tell the source region of {data.get('source')!r}; "
                f"use a model bucket from the catalogue or the tag {SOURCE_REGION_TAG!r}"
            )
        return build_request(
            catalogue, data.get("name"), data.get("version"), source, event_time=body.get("timestamp"), origin="mlflow"
        )

    raise InvalidRequest("event is neither an MLflow model_version webhook nor a SageMaker state change")


def merge_requests(requests: list[ReplicationRequest]) -> list[ReplicationRequest]:
    """One request per (model, version, source): duplicates (registries retry) collapse into the first,
    keeping the earliest event time and the union of targets."""
    merged: dict[tuple[str, str, str], ReplicationRequest] = {}
    for request in requests:
        first = merged.get(request.key)
        if first is None:
            merged[request.key] = request
            continue
        times = [t for t in (first.event_time, request.event_time) if t]
        targets = first.targets + tuple(t for t in request.targets if t not in first.targets)
        merged[request.key] = ReplicationRequest(
            first.model, first.version, first.source_region, targets, min(times) if times else None, first.origin
        )
    return list(merged.values())
