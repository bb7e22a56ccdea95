"""Health loop at scale: does the probe interval hold with 30 regions, and are dead regions still caught on time?

It generates a catalogue of ``--regions`` regions (default 30; aws, gcp and azure in turn) with the local
catalogue's health and failover settings (``config/regions.yaml``: probes every 2 s from 3 vantage points,
quorum 2, 1 s timeout, UNHEALTHY after 3 failed rounds over at least 6 s), written to a temporary file and
validated by ``load_catalogue``. ``--interval`` overrides ``probe_interval_seconds``, nothing else.

Each region gets its own serving process on 127.0.0.1: the real serving app (``include.serving.app.create_app``
under uvicorn, as ``python -m include.serving`` runs it), with its real ``/health``, ``/ready`` and ``/metrics``
and its store-following thread (``--reload-interval 2 --verify-interval 10``, as ``localdev/serving.py`` starts
it). The one difference: the region's object store is in the process's memory instead of a cloud emulator, so
30 regions need no 30 buckets on moto, fake-gcs-server and Azurite. Each process releases the demo model
(``localdev.demo.demo_model_files``) into its store at start-up, signed with a key generated for this run whose
public half is the only trusted key, and serves it only once it has verified it like any replica. The probes
never touch a store, so the store's kind does not change what is measured.

The health watch then runs for ``--seconds`` (default 60), one round every interval. A round (``watch_round``)
is the watch's own: ``probe_round`` for every region from every vantage point, then ``HealthWatch.after_probes``
(``observe`` for every region and one ``FailoverStore.save`` of the records that changed, with their
transitions, on a SQLite state database of its own, schema from ``upgrade_state_db``; DNS switches recorded
instead of made); then the loop sleeps the rest of the interval, as ``watch_reports`` does. Midway, 3 serving
processes are SIGKILLed, as ``make region-down`` does.

The reference, measured in the same run on the same processes: the same loop over 3 regions (the local
platform's size) for the same duration, one of them SIGKILLed midway and started again afterwards.

For each run it prints the round's duration (probes, then observe + save), the start-to-start interval against
the configured one (p50, p99, max, drift), the loop process's CPU, the serving processes' CPU, the machine's,
the HTTP requests per round (counted by the client's event hooks), the ``/ready`` latency of live regions as
probed, probes that were not ok on live regions (outvoted or not), the rounds from each kill to UNHEALTHY
against the thresholds, and the false transitions (any state change of a region that was not killed, or other
than HEALTHY -> DEGRADED -> UNHEALTHY of a killed one).

Every process it starts listens on 127.0.0.1 only and ends with it: on exit, on error, on Ctrl-C; a serving
process also ends when this script dies (``PR_SET_PDEATHSIG``) and after a lifetime that covers the run.

    make bench-health-scale                                   # 30 regions, 60 s; or:
    .venv/bin/python benchmarks/health_scale.py --regions 30 --seconds 60
    .venv/bin/python benchmarks/health_scale.py --regions 60 --interval 2
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import logging
import math
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from include.catalogue import DEFAULT_CATALOGUE, REPO_ROOT, Catalogue, load_catalogue
from localdev.serving import token_file

REFERENCE_REGIONS = 3  # the local platform's catalogue
KILLED = 3  # serving processes SIGKILLed midway through the scaled run
REFERENCE_KILLED = 1
FALSE_SHOWN = 6  # false transitions listed one by one
TOLERANCE = 0.05  # the interval holds while its p99 is within this fraction of the configured one
MODEL, VERSION, KEY_ID = "health-scale-iris", "1", "health-scale-release"
RELOAD_INTERVAL, VERIFY_INTERVAL = 2.0, 10.0  # as localdev/serving.py starts serving
STOPPED_BY_SIGNAL = 128

# Real region names, so that the generated catalogue validates as a real one would.
CLOUD_REGIONS = {
    "aws": "us-east-1 us-east-2 us-west-1 us-west-2 ca-central-1 eu-west-1 eu-west-2 eu-west-3 eu-central-1 "
    "eu-north-1 eu-south-1 ap-south-1 ap-northeast-1 ap-northeast-2 ap-northeast-3 ap-southeast-1 "
    "ap-southeast-2 sa-east-1 me-south-1 af-south-1".split(),
    "gcp": "us-central1 us-east1 us-east4 us-west1 us-west2 us-west3 us-west4 northamerica-northeast1 "
    "southamerica-east1 europe-west1 europe-west2 europe-west3 europe-west4 europe-west6 europe-north1 "
    "asia-east1 asia-east2 asia-northeast1 asia-south1 australia-southeast1".split(),
    "azure": "eastus eastus2 westus westus2 westus3 centralus northcentralus southcentralus canadacentral "
    "brazilsouth northeurope westeurope uksouth francecentral germanywestcentral swedencentral japaneast "
    "koreacentral southeastasia australiaeast".split(),
}
PROVIDERS = ("aws", "gcp", "azure")
ZONE = "mlp.example.internal"
SERVING_CONNECTION = "health_scale_serving"  # every region's connections.serving: the token the probes send


# --- the catalogue -------------------------------------------------------------------------------------------


def generate_catalogue(regions: int, interval: float, ports: list[int]) -> dict:
    """A catalogue of ``regions`` regions (providers in turn) serving on ``ports``, with the local catalogue's
    health and failover settings (``interval`` as ``probe_interval_seconds``)."""
    local = load_catalogue(DEFAULT_CATALOGUE)
    entries = []
    for index in range(regions):
        provider = PROVIDERS[index % len(PROVIDERS)]
        names = CLOUD_REGIONS[provider]
        cloud_region = names[(index // len(PROVIDERS)) % len(names)]
        lap = index // (len(PROVIDERS) * len(names))
        name = f"{provider}-{cloud_region}" + (f"-{lap}" if lap else "")
        entry = {
            "name": name,
            "provider": provider,
            "cloud_region": cloud_region,
            "primary": index == 0,
            "bucket": f"mlp-models-{index:03d}",
            "serving_endpoint": f"http://127.0.0.1:{ports[index]}",
            "dns_record": f"{name}.scale.{ZONE}",
            "connections": {"storage": f"health_scale_{provider}", "serving": SERVING_CONNECTION},
        }
        if provider != "aws":
            entry["latency_region"] = CLOUD_REGIONS["aws"][index % len(CLOUD_REGIONS["aws"])]
        entries.append(entry)
    health = local.health.model_dump(mode="json") | {"probe_interval_seconds": interval}
    return {
        "dns": {
            "zone": ZONE,
            "record": f"scale.{ZONE}",
            "latency_record": f"latency.scale.{ZONE}",
            "failover_record": f"failover.scale.{ZONE}",
            "connection": "health_scale_route53",
        },
        "replication": {"state_connection": "mlp_state_health_scale"},
        "health": health,
        "failover": local.failover.model_dump(mode="json"),
        "regions": entries,
    }


def write_catalogue(data: dict, path: Path) -> Catalogue:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return load_catalogue(path)


def expected_rounds(catalogue: Catalogue) -> int:
    """Failed rounds from a region's death to UNHEALTHY by the thresholds, at the configured interval: at least
    ``unhealthy_after_failures``, and enough to span ``unhealthy_after_seconds`` from the first."""
    health = catalogue.health
    spanning = math.ceil(health.unhealthy_after_seconds / health.probe_interval_seconds - 1e-9) + 1
    return max(health.unhealthy_after_failures, spanning)


# --- one serving process (the child mode) --------------------------------------------------------------------


class MemoryStore:
    """A region's object store in this process's memory: what serving reads (GET, HEAD with an ETag, streams)."""

    def __init__(self, region):
        self.region = region
        self.objects: dict[str, tuple[bytes, str]] = {}

    def url(self, key: str) -> str:
        return f"memory://{self.region.name}/{key}"

    def put_bytes(self, key: str, data: bytes, metadata: dict[str, str] | None = None) -> None:
        self.objects[key] = (data, f"etag-{len(self.objects)}-{hashlib.md5(data).hexdigest()}")  # noqa: S324

    def get_bytes(self, key: str) -> bytes:
        from include.errors import ObjectNotFound

        if key not in self.objects:
            raise ObjectNotFound(self.url(key))
        return self.objects[key][0]

    def read_stream(self, key: str, chunk_size: int) -> Iterator[bytes]:
        data = self.get_bytes(key)
        for start in range(0, len(data), chunk_size):
            yield data[start : start + chunk_size]

    def read_range(self, key: str, start: int, length: int) -> bytes:
        return self.get_bytes(key)[start : start + length]

    def head(self, key: str):
        from include.clouds.objectstore import ObjectInfo

        if key not in self.objects:
            return None
        data, etag = self.objects[key]
        return ObjectInfo(key, len(data), {}, etag)

    def list_keys(self, prefix: str) -> list[str]:
        return sorted(key for key in self.objects if key.startswith(prefix))

    def release(self, files: dict[str, bytes], key) -> None:
        """Register ``files`` as the model's version, sign its manifest, point the region at it (as a release
        step and replication leave a region)."""
        from include.replication.manifest import Manifest, ModelFile, manifest_key, signature_key
        from include.replication.rollout import RolloutPointer, now_iso, pointer_key

        entries = [ModelFile(path, len(data), hashlib.sha256(data).hexdigest()) for path, data in files.items()]
        manifest = Manifest.build(MODEL, VERSION, self.region.name, entries)
        for path, data in files.items():
            self.put_bytes(manifest.key(path), data)
        manifest_bytes = manifest.to_json().encode()
        self.put_bytes(manifest_key(MODEL, VERSION), manifest_bytes)
        self.put_bytes(signature_key(MODEL, VERSION), key.sign(manifest_bytes).to_json())
        pointer = RolloutPointer(MODEL, VERSION, manifest.total_sha256, manifest.created_at, now_iso(), "replication")
        self.put_bytes(pointer_key(MODEL), pointer.to_json().encode())


def _end_with_parent(parent: int) -> None:
    """SIGTERM this process when the benchmark dies (Linux), and end now if it already has."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:
        sys.exit("the benchmark that started this serving process is gone")


def serve(catalogue_path: Path, region: str, fd: int, work_dir: Path, lifetime: float, parent: int) -> None:
    """The child mode: the real serving app for ``region`` on the listening socket ``fd``, for ``lifetime`` s."""
    _end_with_parent(parent)
    import threading

    import uvicorn

    from include.replication.signing import SigningKey
    from include.serving.app import create_app

    catalogue = load_catalogue(catalogue_path)
    store = MemoryStore(catalogue.region(region))
    model_dir = work_dir / "model"
    store.release(
        {path.name: path.read_bytes() for path in sorted(model_dir.iterdir())},
        SigningKey.from_file(work_dir / "release-key" / f"{KEY_ID}.key"),
    )
    app = create_app(
        catalogue,
        region,
        MODEL,
        trusted_keys=work_dir / "trusted-keys",
        token_file=token_file(work_dir),
        store=store,
        reload_interval=RELOAD_INTERVAL,
        verify_interval=VERIFY_INTERVAL,
    )
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    ender = threading.Timer(lifetime, lambda: setattr(server, "should_exit", True))
    ender.daemon = True
    ender.start()
    server.run(sockets=[socket.socket(fileno=fd)])


# --- the fleet of serving processes --------------------------------------------------------------------------


def listening_socket(port: int = 0) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(128)
    return sock


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process (``/proc/<pid>/stat``); 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from ``/proc/stat``."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]  # guest is in user
    idle = values[3] + values[4]  # idle + iowait
    ticks = os.sysconf("SC_CLK_TCK")
    return (sum(values) - idle) / ticks, sum(values) / ticks


class Fleet:
    """One serving process per region of ``catalogue``, started by this script in its child mode."""

    def __init__(self, catalogue: Catalogue, catalogue_file: Path, work_dir: Path, lifetime: float):
        self.catalogue = catalogue
        self.catalogue_file = catalogue_file
        self.work_dir = work_dir
        self.lifetime = lifetime
        self.processes: dict[str, subprocess.Popen] = {}
        self.cpu_of_dead = 0.0  # CPU seconds of processes killed, sampled just before each kill

    def start(self, region: str, sock: socket.socket) -> None:
        log = open(self.work_dir / f"serving-{region}.log", "ab")  # noqa: SIM115 - the process owns it
        argv = [sys.executable, str(Path(__file__).resolve()), "--serve", region, "--fd", str(sock.fileno())]
        argv += ["--catalogue", str(self.catalogue_file), "--work-dir", str(self.work_dir)]
        argv += ["--lifetime", str(self.lifetime), "--parent", str(os.getpid())]
        try:
            self.processes[region] = subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                pass_fds=[sock.fileno()],
                cwd=REPO_ROOT,
                env={k: v for k, v in os.environ.items() if not k.startswith("MLP_")},
            )
        finally:
            log.close()
            sock.close()  # the child holds the listening socket now: once it dies, connections are refused

    def wait_ready(self, regions: list[str], timeout: float) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        waiting = list(regions)
        with httpx.Client(timeout=2) as client:
            while waiting:
                region = waiting[0]
                process = self.processes[region]
                if process.poll() is not None:
                    log = (self.work_dir / f"serving-{region}.log").read_text()[-2000:]
                    raise RuntimeError(f"the serving process of {region} ended ({process.returncode}):\n{log}")
                try:
                    ready = client.get(self.catalogue.region(region).serving_endpoint + "/ready").status_code == 200
                except httpx.HTTPError:
                    ready = False
                if ready:
                    waiting.pop(0)
                    continue
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{len(waiting)} serving processes not ready within {timeout:.0f}s: {waiting}")
                time.sleep(0.2)

    def kill(self, region: str) -> None:
        """SIGKILL ``region``'s serving process, as when its node dies."""
        process = self.processes[region]
        self.cpu_of_dead += cpu_seconds(process.pid)
        process.kill()
        process.wait(10)

    def restart(self, region: str) -> None:
        port = int(self.catalogue.region(region).serving_endpoint.rsplit(":", 1)[1])
        self.start(region, listening_socket(port))
        self.wait_ready([region], 60)

    def cpu(self) -> float:
        """CPU seconds of every serving process so far (the killed ones' up to their kill)."""
        return self.cpu_of_dead + sum(cpu_seconds(p.pid) for p in self.processes.values() if p.poll() is None)

    def rss(self) -> list[float]:
        return [rss_mib(p.pid) for p in self.processes.values() if p.poll() is None]

    def close(self) -> None:
        """Stop every serving process: SIGTERM, then SIGKILL what is left after 10 s."""
        live = [p for p in self.processes.values() if p.poll() is None]
        for process in live:
            process.terminate()
        deadline = time.monotonic() + 10
        for process in live:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


# --- the health loop -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """A state change a round made."""

    region: str
    from_state: str
    to_state: str
    at: float


@dataclass(frozen=True)
class RoundOutcome:
    """What one round found: each region's verdict and probes (when the round exposes them) and its changes."""

    verdicts: dict | None
    changes: list[Change]
    probed_at: float  # time.monotonic() once the probes were done


class _RecordedSwitches:
    """Stands in for the watch's TrafficController: records each DNS switch instead of calling Route 53."""

    def __init__(self):
        self.switched: list[str] = []

    def switch_now(self, region: str, reason: str, started_by: str = "") -> dict:
        self.switched.append(region)
        return {"region": region, "reason": reason, "at": time.time(), "recorded_only": True}


def health_watch(catalogue: Catalogue, store):
    """The health watch the loop drives (its DNS switches recorded instead of made)."""
    from include.failover.health_watch import HealthWatch

    logging.getLogger("include.failover.health_watch").setLevel(logging.ERROR)  # a line per verdict and transition
    return HealthWatch(catalogue, store, _RecordedSwitches())


async def watch_round(watch, client) -> RoundOutcome:
    """One round of the health watch, timed in two parts: ``probe_round`` for every region from every vantage
    point, then ``HealthWatch.after_probes`` (``observe`` for each region, one ``save`` of the records that
    changed, the switches) in a thread, as ``HealthWatch.round`` does."""
    from include.health.probes import probe_round

    verdicts = await probe_round(watch.catalogue, client)
    probed_at = time.monotonic()
    report = await asyncio.to_thread(watch.after_probes, verdicts, time.time())
    changes = [Change(t["region"], t["from_state"], t["to_state"], t["at"]) for t in report.transitions]
    return RoundOutcome(verdicts, changes, probed_at)


@dataclass
class Round:
    started: float  # time.monotonic()
    probe_seconds: float
    persist_seconds: float
    duration: float
    cpu: float  # this process's CPU seconds at the round's start
    requests: int
    responses: int
    outcome: RoundOutcome


@dataclass
class Run:
    """One bounded run of the loop over a catalogue, with its kills and everything measured."""

    label: str
    catalogue: Catalogue
    killed: list[str]
    rounds: list[Round] = field(default_factory=list)
    started_at: float = 0.0  # time.time() when the first round started
    killed_at: float | None = None  # time.time() of the kills
    kill_round: int | None = None  # index of the first round after the kills
    wall: float = 0.0
    cpu: float = 0.0
    serving_cpu: float = 0.0
    machine_cpu: float = 0.0  # busy seconds of every core, over the run


async def run_loop(run: Run, watch, fleet: Fleet, seconds: float) -> None:
    """Rounds every interval for ``seconds``, each timed; the kills after the first round past halfway."""
    import httpx

    counts = Counter()

    async def on_request(request):
        counts["requests"] += 1

    async def on_response(response):
        counts["responses"] += 1

    interval = run.catalogue.health.probe_interval_seconds
    hooks = {"request": [on_request], "response": [on_response]}
    async with httpx.AsyncClient(event_hooks=hooks) as client:  # as the watch's client, plus counting hooks
        began, cpu0, serving0, machine0 = time.monotonic(), time.process_time(), fleet.cpu(), machine_busy()[0]
        run.started_at = time.time()
        while time.monotonic() - began < seconds:
            started, cpu, before = time.monotonic(), time.process_time(), dict(counts)
            outcome = await watch_round(watch, client)
            ended = time.monotonic()
            run.rounds.append(
                Round(
                    started,
                    outcome.probed_at - started,
                    ended - outcome.probed_at,
                    ended - started,
                    cpu,
                    counts["requests"] - before.get("requests", 0),
                    counts["responses"] - before.get("responses", 0),
                    outcome,
                )
            )
            if run.killed_at is None and ended - began >= seconds / 2:
                for region in run.killed:
                    fleet.kill(region)
                run.killed_at, run.kill_round = time.time(), len(run.rounds)
            await asyncio.sleep(max(0.0, interval - (time.monotonic() - started)))
        run.wall = time.monotonic() - began
        run.cpu = time.process_time() - cpu0
        run.serving_cpu = fleet.cpu() - serving0
        run.machine_cpu = machine_busy()[0] - machine0


def measure(label: str, catalogue: Catalogue, killed: list[str], fleet: Fleet, seconds: float, work_dir: Path) -> Run:
    """One run of the loop on a fresh state database."""
    import sqlalchemy as sa

    from include.failover.store import FailoverStore
    from include.state.migrate import upgrade_state_db

    url = f"sqlite:///{work_dir / f'state-{len(catalogue.regions)}-{label.split()[0]}.db'}"
    logging.getLogger("alembic").setLevel(logging.WARNING)  # its info lines would land among the figures
    upgrade_state_db(url)
    engine = sa.create_engine(url)
    try:
        run = Run(label, catalogue, killed)
        asyncio.run(run_loop(run, health_watch(catalogue, FailoverStore(engine)), fleet, seconds))
    finally:
        engine.dispose()
    return run


# --- figures -------------------------------------------------------------------------------------------------


def pct(values: list[float], q: int) -> float:
    """The q-th percentile (inclusive method); the value itself for one sample."""
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


@dataclass
class Figures:
    run: Run
    intervals: list[float]
    expected: int
    to_unhealthy: dict[str, tuple[int, float] | None]  # region -> (rounds after the kill, seconds), None: never
    at_kill: dict[str, str]  # each killed region's state when it was killed
    false: list[Change]

    @property
    def interval(self) -> float:
        return self.run.catalogue.health.probe_interval_seconds

    @property
    def p99(self) -> float:
        return pct(self.intervals, 99) if self.intervals else float("nan")

    @property
    def holds(self) -> bool:
        return bool(self.intervals) and self.p99 <= self.interval * (1 + TOLERANCE)

    @property
    def caught(self) -> bool:
        return all(v is not None and v[0] <= self.expected + 1 for v in self.to_unhealthy.values())


EXPECTED_CHANGES = {("HEALTHY", "DEGRADED"), ("DEGRADED", "UNHEALTHY")}  # of a killed region, after its kill


def figures(run: Run) -> Figures:
    """The intervals, each killed region's rounds to UNHEALTHY, and the false transitions of a run."""
    killed = set(run.killed)
    intervals = [b.started - a.started for a, b in zip(run.rounds, run.rounds[1:], strict=False)]
    states = {region.name: "HEALTHY" for region in run.catalogue.regions}
    false, to_unhealthy, at_kill = [], {}, {}
    for index, rnd in enumerate(run.rounds):
        if index == run.kill_round:
            at_kill = {region: states[region] for region in run.killed}
        for change in rnd.outcome.changes:
            states[change.region] = change.to_state
            after_kill = run.kill_round is not None and index >= run.kill_round
            if (
                change.region not in killed
                or not after_kill
                or (change.from_state, change.to_state) not in EXPECTED_CHANGES
            ):
                false.append(change)
            elif change.to_state == "UNHEALTHY" and change.region not in to_unhealthy:
                to_unhealthy[change.region] = (index - run.kill_round + 1, change.at - run.killed_at)
    for region in run.killed:
        to_unhealthy.setdefault(region, None)
        at_kill.setdefault(region, states[region])
    return Figures(run, intervals, expected_rounds(run.catalogue), to_unhealthy, at_kill, false)


def describe(fig: Figures) -> list[str]:
    run, health = fig.run, fig.run.catalogue.health
    rounds, n = run.rounds, len(run.catalogue.regions)
    lines = [
        f"{run.label}: {n} regions x {len(health.vantage_points)} vantage points, {len(rounds)} rounds "
        f"in {run.wall:.1f}s, every {fig.interval:g}s"
    ]
    if not rounds:
        return [*lines, "  no round ran"]

    def row(what: str, values: list[float], unit: str = "s", digits: int = 3) -> str:
        p50, p99, top = pct(values, 50), pct(values, 99), max(values)
        return f"  {what:34} p50 {p50:7.{digits}f}{unit}  p99 {p99:7.{digits}f}{unit}  max {top:7.{digits}f}{unit}"

    lines.append(row("round duration", [r.duration for r in rounds]))
    lines.append(row("  probe_round", [r.probe_seconds for r in rounds]))
    lines.append(row("  observe + save (thread)", [r.persist_seconds for r in rounds]))
    if fig.intervals:
        drift = rounds[-1].started - rounds[0].started - (len(rounds) - 1) * fig.interval
        lines.append(row("start-to-start interval", fig.intervals))
        lines.append(
            f"  {'drift':34} {drift * 1000:+.0f} ms over {len(fig.intervals)} intervals "
            f"({drift / len(fig.intervals) * 1000:+.1f} ms per round) against {fig.interval:g}s each"
        )
    per_interval = [(b.cpu - a.cpu) / (b.started - a.started) * 100 for a, b in zip(rounds, rounds[1:], strict=False)]
    cores = os.cpu_count() or 1
    lines.append(
        f"  {'loop process CPU':34} {run.cpu / run.wall * 100:5.1f}% of one core"
        + (f" (worst interval {max(per_interval):.0f}%)" if per_interval else "")
        + f"; {run.cpu / len(rounds) * 1000:.0f} ms per round"
    )
    lines.append(
        f"  {'serving processes CPU':34} {run.serving_cpu / run.wall * 100:5.1f}% of one core "
        f"(every serving process, probed or not)"
    )
    lines.append(f"  {'machine CPU busy':34} {run.machine_cpu / run.wall / cores * 100:5.1f}% of {cores} cores")
    requests = [r.requests for r in rounds]
    unanswered = [r.requests - r.responses for r in rounds]
    expected_requests = n * len(health.vantage_points) * 3
    lines.append(
        f"  {'HTTP requests per round':34} {min(requests)} to {max(requests)} "
        f"(expected {expected_requests}: regions x vantage points x 3); unanswered per round "
        f"{min(unanswered)} to {max(unanswered)}"
    )
    killed = set(run.killed)
    ready_ms, not_ok = [], Counter()
    for index, rnd in enumerate(rounds):
        for name, verdict in rnd.outcome.verdicts.items():
            if name in killed and run.kill_round is not None and index >= run.kill_round:
                continue  # dead on purpose
            for probe in verdict.probes:
                if probe.ready_ms is not None and probe.outcome != "failed":
                    ready_ms.append(probe.ready_ms)
                if probe.outcome != "ok":
                    not_ok[probe.outcome] += 1
    if ready_ms:
        lines.append(row("/ready latency as probed (live)", ready_ms, " ms", 1))
    total = sum(not_ok.values())
    lines.append(
        f"  {'probes not ok on live regions':34} {total}"
        + (f" ({', '.join(f'{k} {v}' for k, v in sorted(not_ok.items()))})" if total else "")
    )
    thresholds = (
        f"thresholds: {health.unhealthy_after_failures} failed rounds over >= "
        f"{health.unhealthy_after_seconds:g}s at {fig.interval:g}s -> {fig.expected} rounds"
    )
    for region, value in fig.to_unhealthy.items():
        if value is not None:
            lines.append(f"  killed {region:27} UNHEALTHY after {value[0]} rounds, {value[1]:.1f}s ({thresholds})")
        elif fig.at_kill[region] != "HEALTHY":
            lines.append(f"  killed {region:27} was already {fig.at_kill[region]} when killed ({thresholds})")
        else:
            lines.append(f"  killed {region:27} not UNHEALTHY by the end of the run ({thresholds})")
    kinds = Counter(f"{c.from_state} -> {c.to_state}" for c in fig.false)
    lines.append(
        f"  {'false transitions':34} {len(fig.false)}"
        + (
            f" in {len({c.region for c in fig.false})} regions: "
            + ", ".join(f"{kind} {count}" for kind, count in kinds.most_common())
            if fig.false
            else ""
        )
    )
    for change in fig.false[:FALSE_SHOWN]:
        lines.append(
            f"    round at +{change.at - run.started_at:5.1f}s  {change.region}: {change.from_state} -> "
            f"{change.to_state}"
        )
    if len(fig.false) > FALSE_SHOWN:
        lines.append(f"    ... and {len(fig.false) - FALSE_SHOWN} more")
    return lines


def comparison(reference: Figures, scaled: Figures) -> list[str]:
    """The two runs side by side, and the scaled one's figures over the reference's."""
    columns = "regions  round p50  round p99  interval p50  interval p99  interval max  loop CPU  requests/round"
    columns += "  to UNHEALTHY  false"

    def summary(fig: Figures) -> str:
        rounds = fig.run.rounds
        durations = [r.duration for r in rounds]
        caught = [v[0] for v in fig.to_unhealthy.values() if v is not None]
        worst = f"{max(caught)} rounds" if len(caught) == len(fig.to_unhealthy) else "never"
        return (
            f"{len(fig.run.catalogue.regions):>7}  {pct(durations, 50):8.3f}s  {pct(durations, 99):8.3f}s  "
            f"{pct(fig.intervals, 50):11.3f}s  {fig.p99:11.3f}s  {max(fig.intervals):11.3f}s  "
            f"{fig.run.cpu / fig.run.wall * 100:7.1f}%  {max(r.requests for r in rounds):14}  {worst:>12}  "
            f"{len(fig.false):5}"
        )

    def per_round_cpu(fig: Figures) -> float:
        return fig.run.cpu / len(fig.run.rounds)

    round_p99 = [pct([r.duration for r in fig.run.rounds], 99) for fig in (reference, scaled)]
    return [
        "  " + columns,
        "  " + summary(reference) + "  <- reference: the local platform's size",
        "  " + summary(scaled),
        f"  {len(scaled.run.catalogue.regions)} regions / reference: p99 interval {scaled.p99 / reference.p99:.3f} x, "
        f"round p99 {round_p99[1] / round_p99[0]:.1f} x, loop CPU per round "
        f"{per_round_cpu(scaled) / per_round_cpu(reference):.1f} x, for "
        f"{len(scaled.run.catalogue.regions) / len(reference.run.catalogue.regions):.3g} x the regions",
    ]


def rounds_to_unhealthy(fig: Figures, region: str) -> str:
    """A killed region's rounds from its kill to UNHEALTHY, or why there are none."""
    value, before = fig.to_unhealthy[region], fig.at_kill[region]
    if value is not None:
        return str(value[0])
    return "never" if before == "HEALTHY" else f"already {before}"


def headline(fig: Figures) -> str:
    n, interval = len(fig.run.catalogue.regions), fig.interval
    caught = ", ".join(rounds_to_unhealthy(fig, region) for region in fig.to_unhealthy)
    met = fig.holds and fig.caught and not fig.false
    return (
        f"Headline: probe interval holds at {n} regions: {'yes' if fig.holds else 'no'} (p99 interval "
        f"{fig.p99:.3f} s vs configured {interval:g} s); rounds to UNHEALTHY of the {len(fig.to_unhealthy)} killed "
        f"regions: {caught} (thresholds: {fig.expected}); {len(fig.false)} false transitions (goal: p99 interval "
        f"within {TOLERANCE:.0%} of {interval:g} s, every killed region UNHEALTHY within {fig.expected} + 1 rounds, "
        f"no false transition): {'met' if met else 'NOT met'}"
    )


# --- main ----------------------------------------------------------------------------------------------------


def prepare_release(work_dir: Path) -> None:
    """The demo model's files, a release key of this run whose public half is the only trusted key, and the
    serving processes' bearer token, which the probes send as the password of ``SERVING_CONNECTION``."""
    import shutil

    from include.replication.signing import PUBLIC_KEY_SUFFIX, generate_key_pair
    from include.serving.auth import ensure_token_file
    from localdev.demo import demo_model_files

    connection = {"conn_type": "generic", "password": ensure_token_file(token_file(work_dir))}
    os.environ[f"AIRFLOW_CONN_{SERVING_CONNECTION.upper()}"] = json.dumps(connection)

    model_dir = work_dir / "model"
    model_dir.mkdir()
    for name, data in demo_model_files().items():
        (model_dir / name).write_bytes(data)
    _, public = generate_key_pair(work_dir / "release-key", KEY_ID)
    (work_dir / "trusted-keys").mkdir()
    shutil.copyfile(public, work_dir / "trusted-keys" / f"{KEY_ID}{PUBLIC_KEY_SUFFIX}")


def _stop_on_sigterm(signum, frame):
    raise SystemExit(STOPPED_BY_SIGNAL + signum)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--regions", type=int, default=30, help="regions (serving processes) to probe, default 30")
    parser.add_argument("--seconds", type=float, default=60, help="duration of each run of the loop, default 60")
    parser.add_argument(
        "--interval", type=float, default=None, help="probe_interval_seconds (default: the local catalogue's, 2)"
    )
    parser.add_argument("--keep-state", action="store_true", help="keep the temporary directory (logs, databases)")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--fd", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--catalogue", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--work-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--lifetime", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--parent", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.catalogue, args.serve, args.fd, args.work_dir, args.lifetime, args.parent)
        return 0
    if args.regions <= KILLED:
        parser.error(f"--regions must be more than the {KILLED} regions killed midway")
    interval = args.interval or load_catalogue(DEFAULT_CATALOGUE).health.probe_interval_seconds
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    work = tempfile.mkdtemp(prefix="mlp-health-scale-")
    work_dir = Path(work)
    fleet = None
    try:
        sockets = [listening_socket() for _ in range(args.regions)]
        data = generate_catalogue(args.regions, interval, [s.getsockname()[1] for s in sockets])
        catalogue_file = work_dir / "regions.yaml"
        catalogue = write_catalogue(data, catalogue_file)
        reference = write_catalogue(
            {**data, "regions": data["regions"][:REFERENCE_REGIONS]}, work_dir / "reference-regions.yaml"
        )
        health = catalogue.health
        providers = Counter(r.provider for r in catalogue.regions)
        print(
            f"generated catalogue: {args.regions} regions ({', '.join(f'{p} {c}' for p, c in providers.items())}) "
            f"in {catalogue_file}; probes every {health.probe_interval_seconds:g}s from "
            f"{len(health.vantage_points)} vantage points, quorum {health.required_quorum}, timeout "
            f"{health.timeout_seconds:g}s, slow above {health.slow_ms} ms; UNHEALTHY after "
            f"{health.unhealthy_after_failures} failed rounds over >= {health.unhealthy_after_seconds:g}s"
        )
        prepare_release(work_dir)
        startup = 60 + 5 * args.regions
        lifetime = startup + 2 * args.seconds + 300
        fleet = Fleet(catalogue, catalogue_file, work_dir, lifetime)
        started = time.monotonic()
        for region, sock in zip(catalogue.regions, sockets, strict=True):
            fleet.start(region.name, sock)
        fleet.wait_ready([r.name for r in catalogue.regions], startup)
        rss = fleet.rss()
        print(
            f"serving: {args.regions} processes of the real serving app (include.serving.app under uvicorn; each "
            f"region's store in its process's memory, holding the signed demo model), every one ready in "
            f"{time.monotonic() - started:.1f}s; RSS {statistics.median(rss):.0f} MiB each (median), "
            f"{sum(rss) / 1024:.2f} GiB in all"
        )
        import include.clouds.kubernetes  # noqa: F401 - probe_round imports it on its first call, timed otherwise

        print(f"each run {args.seconds:g}s, the kills once half of it has passed\n")
        names = [r.name for r in catalogue.regions]
        middle = len(names) // 2
        scaled_killed = names[middle - 1 : middle - 1 + KILLED]
        reference_killed = names[REFERENCE_REGIONS - REFERENCE_KILLED : REFERENCE_REGIONS]
        ref_run = measure("reference", reference, reference_killed, fleet, args.seconds, work_dir)
        for line in describe(ref_fig := figures(ref_run)):
            print(line)
        for region in reference_killed:
            fleet.restart(region)
        print()
        run = measure(f"{args.regions} regions", catalogue, scaled_killed, fleet, args.seconds, work_dir)
        for line in describe(fig := figures(run)):
            print(line)
        print()
        for line in comparison(ref_fig, fig):
            print(line)
        print(headline(fig))
        return 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        if fleet is not None:
            fleet.close()
        if args.keep_state:
            print(f"state kept in {work_dir}", file=sys.stderr)
        else:
            import shutil

            shutil.rmtree(work_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
