"""Serve a region's rolled-out model: ``python -m include.serving --region R --model M --trusted-keys DIR``.

Serves the version the region's rollout pointer names (``models/<model>/_current.json``), once its signature
is from a key in ``--trusted-keys`` (a directory of ``<key_id>.pub`` files) and every file matches its
manifest. Binds 127.0.0.1 unless ``--host`` says otherwise (in Kubernetes the pod's address). Uses the Airflow
connections in the environment to reach the region's store. The pointer is read every ``--reload-interval``
seconds (default 5), the served version re-verified every ``--verify-interval`` seconds (default 30, 0
disables); at most ``--capacity`` predictions (default 32) run at once.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from include.catalogue import load_catalogue
from include.serving.app import create_app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m include.serving", description=__doc__.splitlines()[0])
    parser.add_argument("--region", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--trusted-keys", required=True, type=Path, help="directory of trusted <key_id>.pub keys")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8101)
    parser.add_argument("--reload-interval", type=float, default=5.0, help="seconds between rollout pointer reads")
    parser.add_argument("--verify-interval", type=float, default=30.0, help="seconds between re-verifications")
    parser.add_argument("--capacity", type=int, default=32, help="predictions running at once")
    args = parser.parse_args(argv)
    import uvicorn

    try:
        app = create_app(
            load_catalogue(),
            args.region,
            args.model,
            trusted_keys=args.trusted_keys,
            reload_interval=args.reload_interval,
            verify_interval=args.verify_interval,
            capacity=args.capacity,
        )
    except ValueError as exc:
        parser.error(str(exc))
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
