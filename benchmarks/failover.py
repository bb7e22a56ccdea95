"""Failover benchmark: from a region's death to Route 53 pointing away from it, on the running local platform.

Needs the platform up (``make demo``): the real scheduler, triggerer and health DAG, the three serving
processes, Route 53 on moto. Each ``kill`` trial SIGKILLs one region's serving process (regions in turn) and
polls Route 53 every 0.2 s until the region's weighted record is at 0 and neither its latency nor its failover
records point at it; then it restarts the process and waits until the health DAG has failed it back. The
``flap`` and ``latency`` trials pause a serving process with SIGSTOP/SIGCONT (down 3 s / up 5 s; frozen
0.7 s in every 1.5 s) and count the failovers they cause, which should be none.

The circuit breaker counts these failovers too: the script refuses to start more kill trials than
``failover.max_failovers_per_hour`` still allows this hour. For more trials, start the platform on a copy of
the catalogue with a higher limit (``MLP_REGION_CATALOGUE``).

Prints the median and the worst time to switch, per strategy, beside the reference: Route 53's own
health-check failover, interval x failure threshold + TTL, computed from the catalogue and from Route 53's
defaults (moto's health checks are always healthy, so that one cannot be measured here).

    make bench-failover                       # or:
    .venv/bin/python benchmarks/failover.py --trials 6
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import statistics
import sys
import time
from pathlib import Path

from include.catalogue import REPO_ROOT, Catalogue, load_catalogue

STATE_DIR = Path(os.environ.get("MLP_STATE_DIR") or REPO_ROOT / ".local")


def load_connections() -> None:
    """The platform's connections (``.local/connections.env``) into this process's environment."""
    path = STATE_DIR / "connections.env"
    if not path.exists():
        sys.exit(f"{path} is missing: start the platform with `make demo` first")
    for line in path.read_text().splitlines():
        name, _, value = line.removeprefix("export ").partition("=")
        os.environ[name] = shlex.split(value)[0]


class Platform:
    """The running local platform's serving processes, failover store and Route 53 records."""

    def __init__(self, catalogue: Catalogue):
        from include.clouds.route53 import Route53Traffic
        from include.failover.store import FailoverStore
        from localdev.processes import ProcessTable

        self.catalogue = catalogue
        self.table = ProcessTable(STATE_DIR / "run", STATE_DIR / "logs")
        self.store = FailoverStore.from_connection(catalogue.replication.state_connection)
        self.dns = Route53Traffic(catalogue)

    def pid(self, region: str) -> int:
        from localdev.serving import serving_name

        pid = self.table.pid(serving_name(region))
        if pid is None:
            sys.exit(f"the serving process of {region} is not running: is the platform up (`make demo`)?")
        return pid

    def pointed_away(self, region: str) -> bool:
        traffic = self.dns.read()
        return traffic.weights[region] == 0 and region not in traffic.latency_regions | set(traffic.failover.values())

    def all_healthy(self) -> bool:
        records = self.store.load([r.name for r in self.catalogue.regions])
        weights = self.dns.read().weights
        return all(str(r.state) == "HEALTHY" for r in records.values()) and set(weights.values()) == {100}

    def failovers_since(self, since: float) -> int:
        return sum(1 for t in self.store.transitions(since=since) if str(t.to_state) == "FAILOVER")

    def restart(self, region: str) -> None:
        from localdev.demo import DEMO_MODEL, trusted_keys_dir
        from localdev.serving import serving_commands, serving_name

        argv = serving_commands(self.catalogue, DEMO_MODEL, trusted_keys_dir(STATE_DIR))[serving_name(region)]
        self.table.start(serving_name(region), argv, env=dict(os.environ), cwd=REPO_ROOT)


def wait_for(predicate, timeout: float, what: str, interval: float = 0.2) -> float:
    """Poll until ``predicate()``; the seconds it took."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            sys.exit(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)
    return time.monotonic() - started


def kill_trial(platform: Platform, region: str) -> float:
    """SIGKILL ``region``'s serving process; seconds until Route 53 points away from it. Restores it after."""
    wait_for(platform.all_healthy, 300, "every region HEALTHY at weight 100 before the trial")
    os.kill(platform.pid(region), signal.SIGKILL)
    switched = wait_for(lambda: platform.pointed_away(region), 300, f"Route 53 to point away from {region}")
    platform.restart(region)
    recovered = wait_for(platform.all_healthy, 600, f"{region} to be failed back", interval=1)
    print(f"  kill {region:18} DNS switched after {switched:5.1f}s; failed back {recovered:5.1f}s after restart")
    return switched


def pause_trial(platform: Platform, region: str, frozen: float, running: float, duration: float) -> int:
    """Freeze ``region``'s serving process for ``frozen`` s every ``frozen + running`` s; failovers caused."""
    wait_for(platform.all_healthy, 300, "every region HEALTHY at weight 100 before the trial")
    started, pid = time.time(), platform.pid(region)
    try:
        while time.time() - started < duration:
            os.kill(pid, signal.SIGSTOP)
            time.sleep(frozen)
            os.kill(pid, signal.SIGCONT)
            time.sleep(running)
    finally:
        os.kill(pid, signal.SIGCONT)
    time.sleep(platform.catalogue.health.probe_interval_seconds * 3)  # let the last rounds land
    return platform.failovers_since(started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=6, help="kill trials (the regions take turns)")
    parser.add_argument("--pause-seconds", type=float, default=60, help="duration of the flap and latency trials")
    args = parser.parse_args()
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")  # the hooks' info lines go to stdout
    load_connections()
    catalogue = load_catalogue()
    platform = Platform(catalogue)
    health, dns = catalogue.health, catalogue.dns
    print(
        f"Failover benchmark: probes every {health.probe_interval_seconds}s from {len(health.vantage_points)} "
        f"vantage points (quorum {health.required_quorum}), unhealthy after {health.unhealthy_after_failures} "
        f"failed rounds over >= {health.unhealthy_after_seconds}s"
    )
    allowed = catalogue.failover.max_failovers_per_hour - platform.failovers_since(time.time() - 3600)
    if args.trials > allowed:
        sys.exit(
            f"the circuit breaker allows {allowed} more failovers this hour (failover.max_failovers_per_hour is "
            f"{catalogue.failover.max_failovers_per_hour}): run with --trials {max(allowed, 0)}, or start the "
            "platform on a catalogue copy with a higher limit (MLP_REGION_CATALOGUE)"
        )
    by_strategy: dict[str, list[float]] = {}
    for trial in range(args.trials):
        region = catalogue.regions[trial % len(catalogue.regions)]
        by_strategy.setdefault(catalogue.strategy_of(region), []).append(kill_trial(platform, region.name))
    target = catalogue.regions[-1].name
    flaps = pause_trial(platform, target, frozen=3.0, running=5.0, duration=args.pause_seconds)
    print(f"  flap {target}: down 3 s / up 5 s for {args.pause_seconds:.0f}s -> {flaps} failovers")
    slow = pause_trial(platform, target, frozen=0.7, running=0.8, duration=args.pause_seconds)
    print(f"  latency {target}: frozen 0.7 s in every 1.5 s for {args.pause_seconds:.0f}s -> {slow} failovers")

    print("\nTime from a region's death to Route 53 pointing away from it")
    every = [s for times in by_strategy.values() for s in times]
    for strategy, times in [*by_strategy.items(), ("all", every)]:
        print(
            f"  {strategy:10} trials {len(times):2}  median {statistics.median(times):5.1f}s  worst {max(times):5.1f}s"
        )
    fast = dns.health_check_interval * dns.health_check_failure_threshold + dns.ttl
    print(
        "  reference  Route 53 health-check failover (computed, interval x threshold + TTL): "
        f"{fast}s with this catalogue's checks, {30 * 3 + dns.ttl}s with Route 53's defaults (30 s x 3)"
    )
    print(f"  false failovers: flapping {flaps}, latency {slow}")
    met = max(every) < 60 and flaps == slow == 0
    print(
        f"Headline: worst {max(every):.1f}s from a region's death to DNS switched, {flaps + slow} false failovers "
        f"(goal: worst under 60 s, no false failover): {'met' if met else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
