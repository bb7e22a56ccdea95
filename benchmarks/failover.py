"""Failover benchmark: from a region's death to Route 53 pointing away from it, per strategy, on the running
local platform.

Needs the platform up (``make demo``): the real scheduler and triggerer, the health watch, the three serving
processes, Route 53 on moto. Each ``kill`` trial SIGKILLs one region's serving process and polls Route 53
every 0.1 s, timing each phase from the death: the health watch's UNHEALTHY verdict, the first DNS change,
Route 53 pointing away (the weighted record at 0 and neither its latency nor its failover records pointing
at it), and the FAILOVER recorded by failover_moves. Then it restarts the process and waits until the region
is failed back. The ``flap`` and ``latency`` trials pause a serving process with SIGSTOP/SIGCONT (down 3 s /
up 5 s; frozen 0.7 s in every 1.5 s) and count the failovers they cause, which should be none.

``--trials N`` runs N kill trials per strategy the catalogue uses. The circuit breaker counts them: the local
catalogue allows 3 failovers an hour, so write the benchmark's catalogue copy first (``--write-catalogue``:
the breaker at 200 an hour, failback after 10 s of stability, and azure-eastus on ``immediate`` so all three
strategies are measured) and start the platform on it:

    .venv/bin/python benchmarks/failover.py --write-catalogue .local/bench-regions.yaml
    MLP_REGION_CATALOGUE=$PWD/.local/bench-regions.yaml make demo
    MLP_REGION_CATALOGUE=$PWD/.local/bench-regions.yaml make bench-failover BENCH_ARGS="--trials 9"

The reference printed beside the figures is Route 53's own health-check failover, interval x failure
threshold + TTL, computed from the catalogue and from Route 53's defaults (moto's health checks are always
healthy, so that one cannot be measured here).
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

import yaml

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

    def transition_at(self, region: str, state: str, since: float) -> float | None:
        """When ``region`` first went to ``state`` at or after ``since`` (None: not yet)."""
        return next((t.at for t in self.store.transitions(since, region) if str(t.to_state) == state), None)

    def restart(self, region: str) -> None:
        from localdev.demo import DEMO_MODEL, trusted_keys_dir
        from localdev.serving import serving_commands, serving_name, token_file

        commands = serving_commands(self.catalogue, DEMO_MODEL, trusted_keys_dir(STATE_DIR), token_file(STATE_DIR))
        argv = commands[serving_name(region)]
        self.table.start(serving_name(region), argv, env=dict(os.environ), cwd=REPO_ROOT)


def wait_for(predicate, timeout: float, what: str, interval: float = 0.2):
    """Poll until ``predicate()`` is true; its value, or the seconds it took if that is ``True``."""
    started = time.monotonic()
    while not (value := predicate()):
        if time.monotonic() - started > timeout:
            sys.exit(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)
    return time.monotonic() - started if value is True else value


PHASES = ("detected", "first DNS change", "pointed away", "recorded")


def kill_trial(platform: Platform, region: str) -> dict[str, float]:
    """SIGKILL ``region``'s serving process; the seconds from the death to each of ``PHASES``. Restores it
    after."""
    wait_for(platform.all_healthy, 300, "every region HEALTHY at weight 100 before the trial")
    killed = time.time()
    os.kill(platform.pid(region), signal.SIGKILL)
    first_change = pointed_away = None
    deadline = time.monotonic() + 300
    while pointed_away is None:
        if time.monotonic() > deadline:
            sys.exit(f"timed out after 300s waiting for Route 53 to point away from {region}")
        traffic = platform.dns.read()
        if first_change is None and traffic.weights[region] < 100:
            first_change = time.time() - killed
        if traffic.weights[region] == 0 and region not in traffic.latency_regions | set(traffic.failover.values()):
            pointed_away = time.time() - killed
        time.sleep(0.1)
    recorded = wait_for(lambda: platform.transition_at(region, "FAILOVER", killed), 120, f"{region} FAILOVER")
    phases = {
        "detected": platform.transition_at(region, "UNHEALTHY", killed) - killed,
        "first DNS change": first_change,
        "pointed away": pointed_away,
        "recorded": recorded - killed,
    }
    platform.restart(region)
    back = wait_for(platform.all_healthy, 600, f"{region} to be failed back", interval=1)
    print(f"  kill {region:18} " + ", ".join(f"{name} {phases[name]:5.1f}s" for name in PHASES) + f"; back {back:.0f}s")
    return phases


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


def write_catalogue(path: Path) -> None:
    """The benchmark's catalogue: the one in use with room for many trials and every strategy measured."""
    from include.catalogue import catalogue_path

    data = yaml.safe_load(catalogue_path().read_text())
    data["failover"].update({"max_failovers_per_hour": 200, "stable_seconds": 10})
    for region in data["regions"]:
        if region["name"] == "azure-eastus":
            region["failover_strategy"] = "immediate"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    load_catalogue(path)
    print(f"Wrote {path}: start the platform with MLP_REGION_CATALOGUE={path.resolve()} make demo")


def summarise(by_strategy: dict[str, list[dict[str, float]]]) -> None:
    """Median and worst of every phase, per strategy."""
    print("\nSeconds from a region's death, per strategy (median / worst)")
    print(f"  {'strategy':10} {'trials':>6}  " + "  ".join(f"{name:>16}" for name in PHASES))
    for strategy, trials in by_strategy.items():
        cells = []
        for name in PHASES:
            values = [trial[name] for trial in trials]
            cells.append(f"{statistics.median(values):7.1f} / {max(values):5.1f}")
        print(f"  {strategy:10} {len(trials):6}  " + "  ".join(f"{cell:>16}" for cell in cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=3, help="kill trials per strategy (its regions take turns)")
    parser.add_argument("--pause-seconds", type=float, default=60, help="duration of the flap and latency trials")
    parser.add_argument("--strategies", nargs="+", help="only the kill trials of these strategies (default: all)")
    parser.add_argument("--write-catalogue", type=Path, help="write the benchmark's catalogue copy here and stop")
    args = parser.parse_args()
    if args.write_catalogue:
        write_catalogue(args.write_catalogue)
        return
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
    regions_by_strategy: dict[str, list[str]] = {}
    for region in catalogue.regions:
        if args.strategies is None or catalogue.strategy_of(region) in args.strategies:
            regions_by_strategy.setdefault(catalogue.strategy_of(region), []).append(region.name)
    trials = [
        (strategy, names[trial % len(names)])
        for trial in range(args.trials)
        for strategy, names in regions_by_strategy.items()
    ]
    started = len(platform.store.failovers_started(time.time() - 3600))  # the circuit breaker's ledger
    allowed = catalogue.failover.max_failovers_per_hour - started
    if len(trials) > allowed:
        sys.exit(
            f"{len(trials)} kill trials, but the circuit breaker allows {allowed} more failovers this hour "
            f"(failover.max_failovers_per_hour is {catalogue.failover.max_failovers_per_hour}): start the "
            "platform on the benchmark's catalogue copy (see --write-catalogue)"
        )
    by_strategy: dict[str, list[dict[str, float]]] = {}
    for strategy, region in trials:
        by_strategy.setdefault(strategy, []).append(kill_trial(platform, region))
    target = catalogue.regions[-1].name
    flaps = pause_trial(platform, target, frozen=3.0, running=5.0, duration=args.pause_seconds)
    print(f"  flap {target}: down 3 s / up 5 s for {args.pause_seconds:.0f}s -> {flaps} failovers")
    slow = pause_trial(platform, target, frozen=0.7, running=0.8, duration=args.pause_seconds)
    print(f"  latency {target}: frozen 0.7 s in every 1.5 s for {args.pause_seconds:.0f}s -> {slow} failovers")

    summarise(by_strategy)
    fast = dns.health_check_interval * dns.health_check_failure_threshold + dns.ttl
    print(
        "  reference  Route 53 health-check failover (computed, interval x threshold + TTL): "
        f"{fast}s with this catalogue's checks, {30 * 3 + dns.ttl}s with Route 53's defaults (30 s x 3)"
    )
    print(f"  false failovers: flapping {flaps}, latency {slow}")
    switched = [t["pointed away"] for s, ts in by_strategy.items() if s != "graceful" for t in ts]
    if not switched:
        sys.exit("no region uses the automatic or immediate strategy: nothing to compare with the goal")
    median, worst = statistics.median(switched), max(switched)
    met = median <= 10 and worst <= 15 and flaps == slow == 0
    print(
        f"Headline: automatic and immediate: median {median:.1f}s, worst {worst:.1f}s from a region's death to DNS "
        f"pointing away, {flaps + slow} false failovers (goal: median <= 10 s, worst <= 15 s, no false failover): "
        f"{'met' if met else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
