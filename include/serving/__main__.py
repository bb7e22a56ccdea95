"""Serve a model version from a region's store: ``python -m include.serving --region R --model M --version V``.

Binds 127.0.0.1 unless ``--host`` says otherwise (in Kubernetes the pod's address). Uses the Airflow
connections in the environment to reach the region's store.
"""

from __future__ import annotations

import argparse

from include.catalogue import load_catalogue
from include.serving.app import create_app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m include.serving", description=__doc__.splitlines()[0])
    parser.add_argument("--region", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--version", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8101)
    args = parser.parse_args(argv)
    import uvicorn

    app = create_app(load_catalogue(), args.region, args.model, args.version)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
