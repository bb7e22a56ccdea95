"""Model lifecycle benchmark: from a registry event to every region serving the new version, and from a copy
corrupted at rest to its region repaired and serving again, on the running local platform.

Needs the platform up (``make demo``): the real scheduler and triggerer, the asset watchers on both queues, the
three serving processes following their rollout pointers. Each ``rollout`` trial registers a new version of
the demo model in the primary region, signs it with the local release key, sends its ``model_version.created``
event and polls every region's ``/ready`` every 0.2 s until all three serve the new version. Beside it, the
reference measured in the same trial: replication alone, from the event to the last replica verified (the
status rows' lag), so the difference is the rollout itself (pointer written, serving's check and switch).

Each ``corrupt`` trial flips bytes of the served model file in one non-primary region's store (keeping its
metadata, as damage at rest would) and polls that region's ``/ready`` until it serves the same version again
with the manifest's checksum: serving's detection, its report, the ``replica_repair`` run, and serving's
re-check. The reference is what repaired such a copy before: the hourly audit, up to 3600 s (computed).
A corrupt region leaves DNS while it is repaired; the failovers this causes count against the circuit breaker.

    make bench-lifecycle                      # or:
    .venv/bin/python benchmarks/lifecycle.py --rollouts 20 --corruptions 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
import urllib.error
import urllib.request

from failover import STATE_DIR, load_connections, wait_for

from include.catalogue import Catalogue, load_catalogue

AUDIT_PERIOD_SECONDS = 3600  # replication_audit runs @hourly


def readiness(endpoint: str) -> dict:
    """A serving process's ``/ready`` body, whatever its status; ``{}`` if it does not answer."""
    try:
        with urllib.request.urlopen(endpoint + "/ready", timeout=2) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return json.loads(exc.read() or b"{}")
    except (OSError, ValueError):
        return {}


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile of ``values``."""
    ranked = sorted(values)
    return ranked[min(len(ranked) - 1, max(0, round(fraction * len(ranked) + 0.5) - 1))]


def rollout_trial(catalogue: Catalogue, model: str, version: str) -> tuple[float, float]:
    """Register, sign and announce ``version``; seconds until every region serves it, and the replication lag."""
    from include.clouds.objectstore import store_for
    from include.replication.__main__ import registry_event, send_event
    from include.replication.replicate import register_model_version
    from include.replication.signing import sign_version
    from include.replication.status import StatusStore
    from localdev.demo import demo_model_files, release_keys

    files = demo_model_files()
    files["model_card.json"] = json.dumps({**json.loads(files["model_card.json"]), "version": version}).encode()
    primary = catalogue.primary
    register_model_version(primary, model, version, files)
    sign_version(store_for(primary), [], model, version, release_keys(STATE_DIR))
    started = time.monotonic()
    send_event(catalogue, registry_event(catalogue, model, version, primary.name))
    endpoints = [region.serving_endpoint for region in catalogue.regions]
    wait_for(
        lambda: all(readiness(endpoint).get("version") == version for endpoint in endpoints),
        180,
        f"every region serving {model} {version}",
    )
    seconds = time.monotonic() - started
    status = StatusStore.from_connection(catalogue.replication.state_connection)
    lags = [row.lag_seconds for row in status.rows(model, version) if row.lag_seconds is not None]
    return seconds, max(lags) if lags else float("nan")


def corrupt_trial(catalogue: Catalogue, model: str, region_name: str) -> float:
    """Damage the served model file in ``region_name``'s store; seconds until that region serves it repaired."""
    from include.clouds.objectstore import store_for
    from include.replication.replicate import read_manifest

    region = catalogue.region(region_name)
    wait_for(lambda: readiness(region.serving_endpoint).get("ready"), 300, f"{region_name} serving")
    ready = readiness(region.serving_endpoint)
    store = store_for(region)
    manifest = read_manifest(store, model, ready["version"])
    model_file = max(manifest.files, key=lambda f: f.size)
    key = manifest.key(model_file.path)
    damaged = bytearray(store.get_bytes(key))
    damaged[len(damaged) // 2] ^= 0xFF
    started = time.monotonic()
    store.put_bytes(key, bytes(damaged), store.head(key).metadata)
    wait_for(lambda: not readiness(region.serving_endpoint).get("ready"), 120, f"{region_name} to notice the damage")
    detected = time.monotonic() - started
    wait_for(
        lambda: (
            (answer := readiness(region.serving_endpoint)).get("ready")
            and answer.get("sha256") == manifest.total_sha256
        ),
        300,
        f"{region_name} repaired and serving again",
    )
    repaired = time.monotonic() - started
    print(f"  corrupt {region_name:18} {model_file.path}: detected after {detected:5.1f}s, "
          f"serving again after {repaired:5.1f}s")  # fmt: skip
    return repaired


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rollouts", type=int, default=20, help="registry events, one new version each")
    parser.add_argument("--corruptions", type=int, default=2, help="copies damaged at rest (non-primary regions)")
    args = parser.parse_args()
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")  # the hooks' info lines go to stdout
    load_connections()
    catalogue = load_catalogue()
    from localdev.demo import DEMO_MODEL

    print(f"Lifecycle benchmark: {args.rollouts} rollouts of {DEMO_MODEL}, {args.corruptions} corruptions at rest")
    stamp = time.strftime("%Y%m%d%H%M%S")
    rollouts, lags = [], []
    for trial in range(args.rollouts):
        version = f"bench-{stamp}-{trial:02d}"
        seconds, lag = rollout_trial(catalogue, DEMO_MODEL, version)
        print(f"  rollout {version}: every region serving after {seconds:5.1f}s (replication alone {lag:5.1f}s)")
        rollouts.append(seconds)
        lags.append(lag)
    others = [region.name for region in catalogue.regions if not region.primary]
    repairs = [corrupt_trial(catalogue, DEMO_MODEL, others[trial % len(others)]) for trial in range(args.corruptions)]

    p50, p99 = statistics.median(rollouts), percentile(rollouts, 0.99)
    print("\nFrom a registry event to every region serving the new version")
    print(f"  ours       trials {len(rollouts):2}  p50 {p50:5.1f}s  p99 {p99:5.1f}s")
    print(f"  reference  replication alone (event to last replica verified): p50 {statistics.median(lags):5.1f}s")
    figures, goals, met = [f"p50 {p50:.1f}s from event to every region serving"], ["p50 under 30 s"], p50 < 30
    if repairs:
        worst = max(repairs)
        print("From a copy corrupted at rest to its region serving again")
        print(f"  ours       trials {len(repairs):2}  worst {worst:5.1f}s")
        print(f"  reference  the hourly audit (computed): up to {AUDIT_PERIOD_SECONDS}s")
        figures.append(f"worst {worst:.1f}s from corruption to serving again")
        goals.append("worst under 60 s")
        met = met and worst < 60
    print(f"Headline: {', '.join(figures)} (goal: {', '.join(goals)}): {'met' if met else 'NOT met'}")


if __name__ == "__main__":
    main()
