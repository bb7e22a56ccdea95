"""Real serving regions on loopback behind fault proxies, and a driver of the health loop, for chaos tests.

``ChaosRegions`` releases a signed model in each emulated region's store (registered, signed, the rollout
pointer moved to it), runs one real ``python -m include.serving`` process per region, trusting the release key
and accepting one bearer token (whose ``connections.serving`` connections it defines, as the local platform
does, so the probes read ``/metrics``), and puts a ``FaultProxy`` in front of each, so a test can kill a
region, slow it, make it answer errors, flap it, or corrupt the model it serves. ``catalogue_for`` writes a
catalogue whose serving endpoints are the proxies, with its own DNS record names and its own state database,
so tests sharing one moto never see each other's records or states.

``HealthLoop`` drives the same code the triggerer and failover_moves run, without a scheduler: the health watch
(``watch_reports``: real asyncio, real HTTP probes, its DNS switches), ``moves_due``, and the listed moves through
``advance_moves``, as the strategy tasks make them, sleeping where they defer. The watch advances only while the
loop waits for a report, as if the triggerer were paused while a task runs. It timestamps every transition and
DNS change.
"""

from __future__ import annotations

import asyncio
import copy
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from include.catalogue import REPO_ROOT, Catalogue, catalogue_path, load_catalogue
from include.clouds.objectstore import store_for
from include.replication.replicate import read_manifest
from include.serving.auth import ensure_token_file
from include.state.migrate import upgrade_state_db
from localdev.demo import demo_model_files, release_keys, trusted_keys_dir
from localdev.processes import free_port
from localdev.serving import http_status, serving_connection_env, token_file
from tests.faults.proxy import FaultProxy
from tests.integration.releases import catalogue_reporting_to, release

AWS, GCP, AZURE = "aws-us-west-2", "gcp-europe-west1", "azure-eastus"
CHAOS_MODEL = "chaos-iris"
CHAOS_VERSION = "1"
MODEL_FILE = "model.skops"
MODEL_KEY = f"models/{CHAOS_MODEL}/{CHAOS_VERSION}/{MODEL_FILE}"

# Thresholds scaled down from the local catalogue so a scenario takes seconds: probe every 0.5 s, a region
# is unhealthy after 3 failed rounds over at least 1.5 s, healthy after 3 good rounds, failed back after 3 s.
# The latency thresholds leave room for a loaded two-core runner, where a healthy region's /ready has taken
# 445 ms: "slow" starts at 1 s and a probe gives up at 2.5 s.
SLOW_MS = 1000
PROBE_TIMEOUT_SECONDS = 2.5
SLOW_DELAY_SECONDS = 1.5  # a proxy delay that degrades a region: above SLOW_MS, below the timeout
TIMEOUT_DELAY_SECONDS = 4.0  # a proxy delay past the probe timeout: a failed round
FAST_SETTINGS = {
    "health": {
        "probe_interval_seconds": 0.5,
        "timeout_seconds": PROBE_TIMEOUT_SECONDS,
        "slow_ms": SLOW_MS,
        "quorum": 2,
        "unhealthy_after_failures": 3,
        "unhealthy_after_seconds": 1.5,
        "healthy_after_successes": 3,
        "rerequest_seconds": 10,
    },
    "failover": {
        "stable_seconds": 3,
        "step_pause_seconds": 0.3,
        "max_failovers_per_hour": 10,
    },
}


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} within {timeout}s")
        time.sleep(0.1)


@dataclass
class ServedRegion:
    name: str
    port: int
    proxy: FaultProxy
    process: subprocess.Popen | None = None


class ChaosRegions:
    """One serving process per catalogue region, each behind a fault proxy."""

    def __init__(self, work_dir: Path):
        self.work_dir = work_dir
        self.base = load_catalogue()
        self.model = demo_model_files()
        key = release_keys(work_dir)
        self.token_file = token_file(work_dir)
        os.environ.update(serving_connection_env(self.base, ensure_token_file(self.token_file)))
        for region in self.base.regions:
            if read_manifest(store_for(region), CHAOS_MODEL, CHAOS_VERSION) is None:
                release(region, CHAOS_MODEL, CHAOS_VERSION, self.model, key)
        # The serving processes' catalogue sends no corrupt-copy reports: the audit's queue is not the tests'.
        self.serving_catalogue = work_dir / "serving-regions.yaml"
        catalogue_reporting_to(self.serving_catalogue, None)
        self.regions: dict[str, ServedRegion] = {}
        for region in self.base.regions:
            port = free_port()
            proxy = FaultProxy(f"http://127.0.0.1:{port}", name=f"proxy-{region.name}").start()
            self.regions[region.name] = ServedRegion(region.name, port, proxy)
            self.start(region.name)
        for name in self.regions:
            self.wait_ready(name)

    def start(self, name: str) -> None:
        """Start ``name``'s serving process (again)."""
        served = self.regions[name]
        log = open(self.work_dir / f"serving-{name}.log", "ab")  # noqa: SIM115 - the process owns it
        served.process = subprocess.Popen(
            [sys.executable, "-m", "include.serving", "--region", name, "--model", CHAOS_MODEL]
            + ["--trusted-keys", str(trusted_keys_dir(self.work_dir)), "--port", str(served.port)]
            + ["--token-file", str(self.token_file)]
            + ["--reload-interval", "0.5", "--verify-interval", "1"],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO_ROOT,
            env=os.environ | {"MLP_REGION_CATALOGUE": str(self.serving_catalogue)},
        )
        _wait(lambda: http_status(f"http://127.0.0.1:{served.port}/health") == 200, 60, f"{name} serving to answer")

    def wait_ready(self, name: str, timeout: float = 30) -> None:
        port = self.regions[name].port
        _wait(lambda: http_status(f"http://127.0.0.1:{port}/ready") == 200, timeout, f"{name} to be ready")

    def kill(self, name: str) -> None:
        """SIGKILL the region's serving process, as when its node dies."""
        process = self.regions[name].process
        process.kill()
        process.wait(10)

    def corrupt_model(self, name: str) -> None:
        """Flip a byte of the model file in the region's store (the manifest keeps the old SHA-256)."""
        store = store_for(self.base.region(name))
        data = bytearray(store.get_bytes(MODEL_KEY))
        data[len(data) // 2] ^= 0xFF
        store.put_bytes(MODEL_KEY, bytes(data))

    def restore_model(self, name: str) -> None:
        store_for(self.base.region(name)).put_bytes(MODEL_KEY, self.model[MODEL_FILE])

    def heal(self) -> None:
        """Every proxy passes traffic, every model is intact, every process serves."""
        for name, served in self.regions.items():
            served.proxy.heal()
            self.restore_model(name)
            if served.process is None or served.process.poll() is not None:
                self.start(name)
        for name in self.regions:
            self.wait_ready(name)

    def close(self) -> None:
        for served in self.regions.values():
            served.proxy.stop()
            if served.process is not None and served.process.poll() is None:
                served.process.terminate()
                served.process.wait(10)

    def catalogue_for(self, tag: str, overrides: dict | None = None) -> tuple[Catalogue, Path]:
        """A catalogue for one test: endpoints through the proxies, its own records and state database."""
        data = yaml.safe_load(catalogue_path().read_text())
        zone = data["dns"]["zone"]
        data["dns"].update(
            record=f"{tag}.{zone}", latency_record=f"{tag}-latency.{zone}", failover_record=f"{tag}-failover.{zone}"
        )
        state_conn = f"mlp_state_{tag.replace('-', '_')}"
        state_url = f"sqlite:///{self.work_dir / f'{tag}-state.db'}"
        os.environ[f"AIRFLOW_CONN_{state_conn.upper()}"] = state_url
        upgrade_state_db(state_url)
        data["replication"]["state_connection"] = state_conn
        for region in data["regions"]:
            region["serving_endpoint"] = self.regions[region["name"]].proxy.url
        for section, values in FAST_SETTINGS.items():
            data[section].update(values)
        for section, values in (overrides or {}).items():
            if isinstance(values, dict) and isinstance(data.get(section), dict):
                data[section].update(copy.deepcopy(values))
            else:
                data[section] = copy.deepcopy(values)
        path = self.work_dir / f"{tag}-regions.yaml"
        path.write_text(yaml.safe_dump(data))
        return load_catalogue(path), path


@dataclass
class HealthLoop:
    """failover_moves' work, cycle after cycle: wait for the health watch's next report, make the moves due."""

    catalogue: Catalogue
    catalogue_file: Path
    watch_seconds: float = 3.0  # how long one cycle waits for a report before looking for moves anyway
    started: float = field(default_factory=time.monotonic)
    timeline: list[tuple[float, str]] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)
    on_step: Callable[[object, str], None] | None = None  # called with (plan, outcome) after each step

    def __post_init__(self):
        from include.failover.health_watch import HealthWatch, watch_reports
        from include.failover.store import FailoverStore
        from include.failover.traffic import TrafficController

        self.store = FailoverStore.from_connection(self.catalogue.replication.state_connection)
        self.controller = TrafficController(self.catalogue, self.store)
        self.controller.dns.ensure_baseline()
        self._loop = asyncio.new_event_loop()
        self._reports: asyncio.Queue = asyncio.Queue()
        health_watch = HealthWatch(self.catalogue, self.store, self.controller)

        async def produce():
            async for report in watch_reports(self.catalogue, health_watch):
                await self._reports.put(report)

        self._watch = self._loop.create_task(produce())

    def close(self) -> None:
        """Stop the health watch."""
        self._watch.cancel()
        self._loop.run_until_complete(asyncio.gather(self._watch, return_exceptions=True))
        self._loop.close()

    def note(self, what: str) -> float:
        """Record ``what`` on the timeline; seconds since the loop started."""
        at = time.monotonic() - self.started
        self.timeline.append((at, what))
        return at

    def watch(self, timeout: float | None = None) -> list[dict]:
        """Let the health watch run until it reports (at most ``timeout``, default ``watch_seconds``); the
        reports queued, as the asset events that would start one failover_moves run."""
        try:
            first = self._loop.run_until_complete(
                asyncio.wait_for(self._reports.get(), self.watch_seconds if timeout is None else timeout)
            )
        except TimeoutError:
            first = None
        if self._watch.done():
            self._watch.result()  # the watch died: raise why
        reports = [] if first is None else [first]
        while not self._reports.empty():
            reports.append(self._reports.get_nowait())
        for report in reports:
            for switch in report.switches:
                self.note(f"watch switched {switch['region']} -> {self.weights()}")
        return [report.as_dict() for report in reports]

    def cycle(self) -> dict:
        """One failover_moves run: wait for the watch's reports, alert on them, make the moves due."""
        from include.failover.watch import moves_due

        result = moves_due(self.catalogue, self.store, self.watch(), run_id="chaos")
        for alert in result["alerts"]:
            self.note(alert["text"])
        self.make_moves(result["actions"])
        return result

    def make_moves(self, actions: list[dict]) -> None:
        """Make the listed moves as the strategy tasks do (``advance_moves``), sleeping where they defer."""
        from include.failover.strategies import MoveProgress, advance_moves

        progress = MoveProgress(actions)
        while True:
            made = len(progress.results)
            progress = advance_moves(self.controller, progress, "chaos", on_step=self.stepped)
            for result in progress.results[made:]:
                if "refused" in result:
                    self.refusals.append(result["refused"])
                    self.note(f"refused: {result['refused']}")
                else:
                    self.note(result["alert"]["text"])
            if progress.done:
                return
            time.sleep(self.catalogue.failover.step_pause_seconds)

    def stepped(self, plan, outcome: str) -> None:
        """Timestamp a step with the weights after it, then call ``on_step``."""
        self.note(f"dns {plan.region} {plan.kind} step ({outcome}) -> {self.weights()}")
        if self.on_step is not None:
            self.on_step(plan, outcome)

    def weights(self) -> dict[str, int]:
        return self.controller.dns.read().weights

    def states(self) -> dict[str, str]:
        return {name: str(r.state) for name, r in self.store.load([r.name for r in self.catalogue.regions]).items()}

    def run_until(self, done, timeout: float) -> float:
        """Cycle until ``done(self)``; the seconds it took. Raises with the timeline if it never happens."""
        started = time.monotonic()
        while not done(self):
            if time.monotonic() - started > timeout:
                raise AssertionError(f"not reached within {timeout}s; timeline:\n{self.describe()}")
            self.cycle()
        return time.monotonic() - started

    def run_for(self, seconds: float) -> None:
        """Cycle for at least ``seconds``."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.cycle()

    def transitions(self) -> list[tuple[str, str, str]]:
        return [(t.region, str(t.from_state), str(t.to_state)) for t in self.store.transitions()]

    def describe(self) -> str:
        return "\n".join(f"  {at:7.2f}s  {what}" for at, what in self.timeline)
