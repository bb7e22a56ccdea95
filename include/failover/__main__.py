"""Failover from the command line: ``python -m include.failover status [--transitions N] [--json]``.

Prints every region's failover state, where the Route 53 traffic records point, and the latest transitions
with their reasons (``--json``: the same as one JSON document). Uses the Airflow connections in the
environment (``source .local/connections.env`` for the local platform).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import UTC, datetime

from include.catalogue import load_catalogue
from include.errors import CatalogueError


def cmd_status(args: argparse.Namespace) -> int:
    from include.clouds.route53 import Route53Traffic
    from include.failover.store import FailoverStore, format_states

    catalogue = load_catalogue()
    store = FailoverStore.from_connection(catalogue.replication.state_connection)
    records = store.load([r.name for r in catalogue.regions])
    traffic = Route53Traffic(catalogue).read()
    recent = store.transitions(since=time.time() - 7 * 86400)[-args.transitions :]
    if args.json:
        document = {
            "regions": {name: record.as_dict() for name, record in records.items()},
            "dns": traffic.as_dict(),
            "transitions": [transition.as_dict() for transition in recent],
        }
        print(json.dumps(document, indent=2, default=str))
        return 0
    print(format_states(records))
    print(f"\nRoute 53 ({catalogue.dns.zone}, TTL {catalogue.dns.ttl}s)")
    weights = ", ".join(f"{name} {weight}" for name, weight in traffic.weights.items())
    print(f"  {catalogue.dns.record:40} weighted  {weights}")
    print(f"  {catalogue.dns.latency_record:40} latency   {', '.join(sorted(traffic.latency_regions))}")
    failover = ", ".join(f"{role} -> {name}" for role, name in sorted(traffic.failover.items()))
    print(f"  {catalogue.dns.failover_record:40} failover  {failover}")
    print(f"\nLast {args.transitions} transitions (UTC)")
    for transition in recent:
        at = datetime.fromtimestamp(transition.at, UTC).strftime("%Y-%m-%d %H:%M:%S")
        print(f"  {at}  {transition.describe()}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m include.failover", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    status = commands.add_parser("status", help="region states, DNS records and recent transitions")
    status.add_argument("--transitions", type=int, default=10, help="how many recent transitions to list")
    status.add_argument("--json", action="store_true", help="one JSON document instead of tables")
    status.set_defaults(func=cmd_status)
    args = parser.parse_args(argv)
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")  # the hooks' info lines go to stdout
    try:
        return args.func(args)
    except CatalogueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
