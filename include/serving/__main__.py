"""Serve a region's rolled-out model: ``python -m include.serving --region R --model M --trusted-keys DIR
--token-file FILE``; ``python -m include.serving openapi`` prints the API's OpenAPI document.

Serves the version the region's rollout pointer names (``models/<model>/_current.json``), once its signature
is from a key in ``--trusted-keys`` (a directory of ``<key_id>.pub`` files) and every file matches its
manifest. ``/predict`` and ``/metrics`` need a bearer token of ``--token-file`` (one token a line); there is no
way to run without one. Binds 127.0.0.1 unless ``--host`` says otherwise (in Kubernetes the pod's address);
with ``--metrics-port``, ``/metrics`` is served on that port alone. Uses the Airflow connections in the
environment to reach the region's store. The pointer is read every ``--reload-interval`` seconds (default 5),
the served version re-verified every ``--verify-interval`` seconds (default 30, 0 disables); at most
``--capacity`` predictions (default 32) run at once.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from include.catalogue import load_catalogue
from include.serving.app import create_app, openapi_document
from include.serving.guard import Limits


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["openapi"]:
        openapi = argparse.ArgumentParser(prog="python -m include.serving openapi", description="print the OpenAPI")
        openapi.parse_args(argv[1:])
        print(json.dumps(openapi_document(), indent=2, sort_keys=True))
        return
    defaults = Limits()
    parser = argparse.ArgumentParser(prog="python -m include.serving", description=__doc__.splitlines()[0])
    parser.add_argument("--region", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--trusted-keys", required=True, type=Path, help="directory of trusted <key_id>.pub keys")
    parser.add_argument("--token-file", required=True, type=Path, help="the bearer tokens accepted, one a line")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8101)
    parser.add_argument("--metrics-port", type=int, help="serve /metrics on this port only (default: on --port)")
    parser.add_argument("--reload-interval", type=float, default=5.0, help="seconds between rollout pointer reads")
    parser.add_argument("--verify-interval", type=float, default=30.0, help="seconds between re-verifications")
    parser.add_argument("--capacity", type=int, default=32, help="predictions running at once")
    parser.add_argument("--max-body-bytes", type=int, default=defaults.max_body_bytes, help="largest request body")
    parser.add_argument("--max-instances", type=int, default=defaults.max_instances, help="instances per request")
    parser.add_argument("--rate-limit", type=float, default=defaults.rate, help="requests/s per client token")
    parser.add_argument("--rate-burst", type=int, default=defaults.burst, help="requests at once per client token")
    args = parser.parse_args(argv)
    if args.metrics_port == args.port:
        parser.error(f"--metrics-port must differ from --port ({args.port})")
    import uvicorn

    try:
        limits = Limits(args.max_body_bytes, args.max_instances, args.rate_limit, args.rate_burst)
        app = create_app(
            load_catalogue(),
            args.region,
            args.model,
            trusted_keys=args.trusted_keys,
            token_file=args.token_file,
            limits=limits,
            metrics_port=args.metrics_port,
            reload_interval=args.reload_interval,
            verify_interval=args.verify_interval,
            capacity=args.capacity,
        )
    except ValueError as exc:
        parser.error(str(exc))
    config = uvicorn.Config(app, host=args.host, port=args.port, log_level="warning")
    sockets = [config.bind_socket()]
    if args.metrics_port is not None:
        sockets.append(uvicorn.Config(app, host=args.host, port=args.metrics_port, log_level="warning").bind_socket())
    uvicorn.Server(config).run(sockets=sockets)


if __name__ == "__main__":
    main()
