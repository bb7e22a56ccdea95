"""Replication from the command line: ``python -m include.replication status | register | notify | sign | ...``.

``status`` lists the replication status of every model version in every region. ``register`` uploads a
model version's files to a region, writes its manifest, with ``--signing-key`` signs it, and with ``--notify``
puts an MLflow-shaped ``model_version.created`` event on the catalogue's queue, which starts the replication
DAG; ``notify`` sends that event alone for a version already registered. ``keygen`` makes a release signing
key pair and ``sign`` (re-)signs a registered version in its source region and its replicas: the release
step's commands, as Airflow never holds the private key (docs/provenance.md). ``rollback`` points regions
back at an earlier version (every region unless ``--region`` names some), the same move as the
``model_rollback`` DAG, without Airflow. All use the Airflow connections in the environment
(``source .local/connections.env`` for the local platform).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

from include.catalogue import Catalogue, load_catalogue
from include.errors import CatalogueError


def registry_event(catalogue: Catalogue, model: str, version: str, region_name: str) -> str:
    """An MLflow ``model_version.created`` webhook body for a version registered in ``region_name``."""
    region = catalogue.region(region_name)
    scheme = {"aws": "s3", "gcp": "gs", "azure": "azure"}[region.provider]
    return json.dumps(
        {
            "entity": "model_version",
            "action": "created",
            "timestamp": int(datetime.now(UTC).timestamp() * 1000),
            "data": {
                "name": model,
                "version": version,
                "source": f"{scheme}://{region.bucket}/models/{model}/{version}",
                "tags": {},
            },
        }
    )


def send_event(catalogue: Catalogue, body: str) -> str:
    """Put one message on the catalogue's event queue; return its message id."""
    from airflow.providers.amazon.aws.hooks.sqs import SqsHook

    if catalogue.events is None:
        raise CatalogueError("the catalogue has no events section: no queue to notify")
    hook = SqsHook(aws_conn_id=catalogue.events.connection)
    return hook.send_message(queue_url=catalogue.events.queue_url, message_body=body)["MessageId"]


def cmd_status(args: argparse.Namespace) -> int:
    from include.replication.status import StatusStore, format_table

    catalogue = load_catalogue()
    rows = StatusStore.from_connection(catalogue.replication.state_connection).rows(args.model, args.version)
    print(format_table(rows) if rows else "No replication recorded yet.")
    return 0


def cmd_register(args: argparse.Namespace) -> int:
    from include.clouds.objectstore import store_for
    from include.replication.replicate import register_model_version
    from include.replication.signing import SigningKey, sign_version

    catalogue = load_catalogue()
    region = catalogue.region(args.region or catalogue.primary.name)
    files = {path.name: path for path in map(Path, args.files)}
    key = SigningKey.from_file(Path(args.signing_key)) if args.signing_key else None
    manifest = register_model_version(region, args.model, args.version, files)
    print(f"Registered {manifest.model} {manifest.version} in {region.name}: {len(manifest.files)} file(s), "
          f"{manifest.total_size:,} bytes, SHA-256 {manifest.total_sha256}")  # fmt: skip
    if key is not None:
        sign_version(store_for(region), [], args.model, args.version, key)
        print(f"Signed it with key {key.key_id}")
    else:
        print("Not signed (no --signing-key): serving refuses it until `sign` signs it")
    if args.notify:
        message_id = send_event(catalogue, registry_event(catalogue, args.model, args.version, region.name))
        print(f"Sent model_version.created to {catalogue.events.queue_url} (message {message_id})")
    return 0


def cmd_notify(args: argparse.Namespace) -> int:
    catalogue = load_catalogue()
    region = catalogue.region(args.region or catalogue.primary.name)
    message_id = send_event(catalogue, registry_event(catalogue, args.model, args.version, region.name))
    print(f"Sent model_version.created for {args.model} {args.version} (message {message_id})")
    return 0


def cmd_keygen(args: argparse.Namespace) -> int:
    from include.replication.signing import generate_key_pair

    private_path, public_path = generate_key_pair(Path(args.out), args.key_id)
    print(f"Private key {private_path} (mode 0600): keep it with the release step, never in Airflow")
    print(f"Public key  {public_path}: add it to serving's trusted keys (--trusted-keys, mlp-trusted-keys)")
    return 0


def cmd_sign(args: argparse.Namespace) -> int:
    from include.clouds.objectstore import store_for
    from include.replication.replicate import read_manifest
    from include.replication.signing import SigningKey, sign_version

    catalogue = load_catalogue()
    key = SigningKey.from_file(Path(args.key))
    regions = [catalogue.region(name) for name in args.region] if args.region else list(catalogue.regions)
    stores = {region.name: store_for(region) for region in regions}
    manifest = next(
        (found for store in stores.values() if (found := read_manifest(store, args.model, args.version))), None
    )
    if manifest is None:
        raise LookupError(f"{args.model} {args.version} has no manifest in {', '.join(stores)}")
    source = stores.get(manifest.source_region) or store_for(catalogue.region(manifest.source_region))
    replicas = [store for name, store in stores.items() if name != manifest.source_region]
    for region_name, outcome in sign_version(source, replicas, args.model, args.version, key).items():
        print(f"{region_name}: {outcome}")
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    from include.clouds.objectstore import store_for
    from include.replication.rollout import rollback

    catalogue = load_catalogue()
    regions = [catalogue.region(name) for name in args.region] if args.region else list(catalogue.regions)
    reason = args.reason or "rollback from the command line"
    pointers = rollback([store_for(region) for region in regions], args.model, args.version, reason)
    for region, pointer in zip(regions, pointers, strict=True):
        print(f"{region.name}: {pointer.model} points at version {pointer.version} ({pointer.manifest_sha256[:16]})")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m include.replication", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    status = commands.add_parser("status", help="list replication status")
    status.add_argument("--model")
    status.add_argument("--version")
    status.set_defaults(func=cmd_status)
    register = commands.add_parser("register", help="upload a model version and write its manifest")
    register.add_argument("--model", required=True)
    register.add_argument("--version", required=True)
    register.add_argument("--region", help="source region (default: the primary)")
    register.add_argument("--notify", action="store_true", help="send a model_version.created event")
    register.add_argument("--signing-key", help="the release step's private key: sign the version's manifest")
    register.add_argument("files", nargs="+", help="the version's files (stored under their base names)")
    register.set_defaults(func=cmd_register)
    notify = commands.add_parser("notify", help="send a model_version.created event for a registered version")
    notify.add_argument("--model", required=True)
    notify.add_argument("--version", required=True)
    notify.add_argument("--region", help="source region (default: the primary)")
    notify.set_defaults(func=cmd_notify)
    keygen = commands.add_parser("keygen", help="make a release signing key pair (<key-id>.key, <key-id>.pub)")
    keygen.add_argument("--out", required=True, help="directory to write the two key files to")
    keygen.add_argument("--key-id", required=True, help="the key's id: its files' name, recorded in signatures")
    keygen.set_defaults(func=cmd_keygen)
    sign = commands.add_parser("sign", help="sign a registered version in its source region and its replicas")
    sign.add_argument("--key", required=True, help="the release step's private key (<key-id>.key)")
    sign.add_argument("--model", required=True)
    sign.add_argument("--version", required=True)
    sign.add_argument("--region", action="append", help="a region whose replica to sign (repeat; default: every)")
    sign.set_defaults(func=cmd_sign)
    rollback = commands.add_parser("rollback", help="point regions back at an earlier version of a model")
    rollback.add_argument("--model", required=True)
    rollback.add_argument("--version", required=True, help="a version that is a finished replica in each region")
    rollback.add_argument("--region", action="append", help="a region to roll back (repeat; default: every region)")
    rollback.add_argument("--reason", help="recorded in the rollout pointer")
    rollback.set_defaults(func=cmd_rollback)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (CatalogueError, ValueError, LookupError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
