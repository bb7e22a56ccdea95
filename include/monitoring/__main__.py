"""The platform exporter from the command line: ``python -m include.monitoring [--port 9470] [--host 127.0.0.1]``.

Serves ``/metrics`` (``include.monitoring.exporter``) until stopped, reading the catalogue
(``$MLP_REGION_CATALOGUE`` or the embedded default) and the Airflow connections in the environment
(``source .local/connections.env`` for the local platform). Binds 127.0.0.1 unless ``--host`` says otherwise.
"""

from __future__ import annotations

import argparse
import os
import sys

from include.catalogue import load_catalogue
from include.errors import CatalogueError, quoted

DEFAULT_PORT = 9470


def port_number(text: str) -> int:
    """A TCP port, 0 (any free one) to 65535; anything else is refused naming the value."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"the port must be a number from 0 to 65535, not {quoted(text)}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"the port must be from 0 to 65535, not {port}")
    return port


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m include.monitoring", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=port_number, default=DEFAULT_PORT, help=f"default {DEFAULT_PORT}")
    parser.add_argument("--host", default="127.0.0.1", help="the address to bind (default 127.0.0.1)")
    args = parser.parse_args(argv)
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")  # the hooks' info lines on every scrape

    from airflow.sdk.exceptions import AirflowNotFoundException
    from prometheus_client import CollectorRegistry, start_http_server

    from include.monitoring.exporter import open_collector

    try:
        catalogue = load_catalogue()
        registry = CollectorRegistry()
        registry.register(open_collector(catalogue))
    except (CatalogueError, AirflowNotFoundException) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    server, thread = start_http_server(args.port, addr=args.host, registry=registry)
    print(f"Serving the platform's metrics on http://{args.host}:{server.server_port}/metrics", flush=True)
    thread.join()
    return 0


if __name__ == "__main__":
    sys.exit(main())
