"""Load test of the three serving processes with locust, steady and during a failover, on the running local
platform.

Needs the platform up (``make demo``). ``benchmarks/locustfile.py`` is the scenario: ``--users`` clients, each
sending ``POST /predict`` back to back to the region its cached DNS answer names, keeping the answer for the
serving record's TTL (from the catalogue). This driver keeps that answer in step with Route 53 (moto) and
runs locust twice:

1. **steady**: every region healthy, ``--steady-seconds`` long: requests/s, p50/p99 latency and errors, per
   region and in all. This is the reference the failover phase is read against.
2. **failover**: the same load; after ``--kill-after`` seconds one region's serving process is SIGKILLed (as
   ``make region-down`` does), the health watch fails it over, and the run goes on for the TTL and
   ``--tail-seconds`` after Route 53 points away. Every failed request is placed on the timeline: between
   the kill and the end of the DNS window (pointed away + TTL) it is expected, since clients still hold the
   old answer; after the window it is not. Then the region is started again and the driver waits for the
   failback, leaving the platform as it found it.

``make load-test`` runs it; ``BENCH_ARGS="--users 50"``, ``"--no-failover"`` or ``"--region gcp-europe-west1"``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from failover import STATE_DIR, Platform, load_connections, wait_for

from include.catalogue import REPO_ROOT, load_catalogue

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
DNS_POLL_SECONDS = 0.5
DETECTION_BUDGET_SECONDS = 30  # the failover phase allows this long from the kill to Route 53 pointing away


@dataclass(frozen=True)
class Figures:
    """One row of locust's statistics: a region's, or ``Aggregated``."""

    name: str
    requests: int
    failures: int
    requests_per_second: float
    p50_ms: float
    p99_ms: float


def read_stats(path: Path) -> list[Figures]:
    """The rows of locust's ``<prefix>_stats.csv``."""
    with path.open() as stats:
        return [
            Figures(row["Name"], int(row["Request Count"]), int(row["Failure Count"]), float(row["Requests/s"]),
                    float(row["50%"] or 0), float(row["99%"] or 0))
            for row in csv.DictReader(stats)
        ]  # fmt: skip


class DnsView(threading.Thread):
    """Keeps the answer file the clients resolve from in step with Route 53's weights, and notes when the
    watched region is first pointed away from (weight 0)."""

    def __init__(self, platform: Platform, path: Path):
        super().__init__(daemon=True)
        self.platform, self.path = platform, path
        self.watched: str | None = None
        self.pointed_away_at: float | None = None
        self.stopping = threading.Event()
        self.refresh()

    def refresh(self) -> None:
        weights = self.platform.dns.read().weights
        partial = self.path.with_suffix(".partial")
        partial.write_text(json.dumps({"weights": weights}))
        partial.replace(self.path)  # a client never reads half a file
        if self.watched and self.pointed_away_at is None and weights[self.watched] == 0:
            self.pointed_away_at = time.time()

    def run(self) -> None:
        while not self.stopping.wait(DNS_POLL_SECONDS):
            self.refresh()


def locust_command(args, endpoints: dict[str, str], view: Path, ttl: float, failures: Path, prefix: Path,
                   seconds: float) -> list[str]:  # fmt: skip
    return [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--only-summary",
            "--users", str(args.users), "--spawn-rate", str(args.users), "--run-time", f"{seconds:.0f}s",
            "--csv", str(prefix), "--loglevel", "WARNING", "--exit-code-on-error", "0",
            "--endpoints", json.dumps(endpoints), "--dns-view", str(view), "--dns-ttl", str(ttl),
            "--token-file", str(args.token_file), "--failures-log", str(failures)]  # fmt: skip


def print_figures(title: str, rows: list[Figures]) -> None:
    print(f"{title}:")
    print(f"  {'':18} {'requests':>9} {'errors':>7} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7}")
    for row in rows:
        print(f"  {row.name:18} {row.requests:9d} {row.failures:7d} {row.requests_per_second:8.1f} "
              f"{row.p50_ms:7.0f} {row.p99_ms:7.0f}")  # fmt: skip


def failure_times(path: Path) -> list[float]:
    return [json.loads(line)["at"] for line in path.read_text().splitlines()] if path.exists() else []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=30, help="concurrent clients (default 30)")
    parser.add_argument("--steady-seconds", type=float, default=30)
    parser.add_argument("--no-failover", action="store_true", help="the steady phase only")
    parser.add_argument("--region", default="azure-eastus", help="the region the failover phase kills")
    parser.add_argument("--kill-after", type=float, default=10, help="seconds into the failover phase")
    parser.add_argument("--tail-seconds", type=float, default=10, help="load after the DNS window ends")
    parser.add_argument("--token-file", type=Path, default=STATE_DIR / "serving-tokens")
    args = parser.parse_args()
    if not args.token_file.exists():
        sys.exit(f"{args.token_file} is missing: start the platform with `make demo` first")
    load_connections()
    catalogue = load_catalogue()
    region = catalogue.region(args.region).name
    platform = Platform(catalogue)
    endpoints = {r.name: r.serving_endpoint for r in catalogue.regions}
    ttl = float(catalogue.dns.ttl)
    wait_for(platform.all_healthy, 300, "every region HEALTHY at weight 100 before the load")
    print(f"{args.users} clients, back to back, each keeping its DNS answer for the record's TTL ({ttl:.0f} s)")
    with tempfile.TemporaryDirectory(prefix="mlp-load-") as scratch:
        work = Path(scratch)
        view = DnsView(platform, work / "dns-view.json")
        view.start()
        steady_failures = work / "steady-failures.jsonl"
        command = locust_command(args, endpoints, view.path, ttl, steady_failures, work / "steady",
                                 args.steady_seconds)  # fmt: skip
        subprocess.run(command, cwd=REPO_ROOT, check=True)
        steady = read_stats(work / "steady_stats.csv")
        print_figures(f"steady, {args.steady_seconds:.0f} s (the reference)", steady)
        if args.no_failover:
            aggregated = steady[-1]
            verdict = "met" if aggregated.failures == 0 else "NOT met"
            print(f"Headline: errors with every region healthy: {aggregated.failures} of {aggregated.requests} "
                  f"at {aggregated.requests_per_second:.0f} req/s (goal: 0): {verdict}")  # fmt: skip
            return
        failures = work / "failover-failures.jsonl"
        seconds = args.kill_after + DETECTION_BUDGET_SECONDS + ttl + args.tail_seconds
        command = locust_command(args, endpoints, view.path, ttl, failures, work / "failover", seconds)
        load = subprocess.Popen(command, cwd=REPO_ROOT)
        time.sleep(args.kill_after)
        view.watched = region
        killed = time.time()
        os.kill(platform.pid(region), signal.SIGKILL)
        load.wait(timeout=seconds + 60)
        view.stopping.set()
        rows = read_stats(work / "failover_stats.csv")
        print_figures(f"failover of {region}, {seconds:.0f} s, killed at {args.kill_after:.0f} s", rows)
        if view.pointed_away_at is None:
            sys.exit(f"Route 53 did not point away from {region} within {DETECTION_BUDGET_SECONDS} s of the kill")
        window_end = view.pointed_away_at + ttl
        times = failure_times(failures)
        before = sum(1 for at in times if at < killed)
        within = sum(1 for at in times if killed <= at <= window_end)
        beyond = sum(1 for at in times if at > window_end)
        last = f"{max(times) - killed:.1f} s" if times else "none"
        print(f"  Route 53 pointed away {view.pointed_away_at - killed:.1f} s after the kill; the DNS window "
              f"closed {window_end - killed:.1f} s after it; the last error came at {last}")  # fmt: skip
        print(f"  errors: {before} before the kill, {within} within the DNS window, {beyond} after it")
        platform.restart(region)
        back = wait_for(platform.all_healthy, 600, f"{region} to be failed back", interval=1)
        print(f"  {region} serving again and failed back after {back:.0f} s")
    verdict = "met" if before == 0 and beyond == 0 else "NOT met"
    print(f"Headline: errors outside the DNS TTL window during a failover: {before + beyond} of "
          f"{rows[-1].requests} at {rows[-1].requests_per_second:.0f} req/s (goal: 0): {verdict}")  # fmt: skip


if __name__ == "__main__":
    main()
