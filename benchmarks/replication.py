"""Replication benchmark: our one-pass verified replication against rclone's copy-and-verify, on the local clouds.

Starts moto (S3), Azurite and fake-gcs-server on free loopback ports in a temporary directory, registers a
random file of ``--size-mib`` as model ``bench`` in the primary (S3) region, and then times, in the same run:

- ours: ``copy_version`` (one read of the source feeding every other region of the catalogue) and
  ``verify_and_publish`` for each, in a fresh subprocess so that its peak RSS is the replication's alone;
- each single leg: ours writing to one target region alone (its copy is deleted before and after); the
  slowest one is what a fan-out from one read can at best come down to;
- rclone: ``rclone copy --checksum`` of the same object to the same regions, then
  ``rclone hashsum sha256 --download`` of each copy, checked against the manifest.

It prints the times, MiB/s (bytes delivered to all targets per second), peak RSS, ours against its slowest
single leg, and rclone/ours (above 1: ours is faster). ``--sizes 1024,4096`` times ours alone at each size, to
show that peak RSS stays under 300 MiB whatever the model; ``--azurite-only`` puts every region on Azurite, for
sizes that moto and fake-gcs-server cannot assemble in memory. Run from the repository root:

    .venv/bin/python benchmarks/replication.py
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Generator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

from include.catalogue import CATALOGUE_ENV, Catalogue, Region, load_catalogue, parse_catalogue
from include.clouds.objectstore import store_for
from include.replication.manifest import Manifest, version_prefix
from include.replication.replicate import (
    Replica,
    copy_version,
    load_source_manifest,
    register_model_version,
    settings_of,
    verify_and_publish,
)
from include.replication.transfer import TransferSettings
from localdev.airflow_local import AirflowSettings, state_connection_env
from localdev.emulators import (
    AZURITE_ACCOUNT,
    AZURITE_KEY,
    LOCAL_AWS_KEY,
    EmulatorPorts,
    connection_env,
    start_emulators,
)
from localdev.processes import ProcessTable, free_port
from localdev.provision import provision

MODEL = "bench"
FILE_NAME = "model.bin"
CHUNK = 8 * 2**20
RSS_SAMPLE_SECONDS = 0.05
RCLONE_REMOTES = {"aws": "s3", "gcp": "gcs", "azure": "az"}
GOAL_PEAK_RSS_MIB = 300  # issue 13: replication's peak RSS under 300 MiB at 1 GiB and 4 GiB


class BenchmarkError(RuntimeError):
    """A step of the benchmark failed; the message says which."""


@dataclass(frozen=True)
class Measured:
    seconds: float
    peak_rss_kib: int
    stdout: str


def targets_of(catalogue: Catalogue) -> list[Region]:
    return [region for region in catalogue.regions if not region.primary]


# --- measuring ----------------------------------------------------------------------------------------


def peak_rss_kib(pid: int | str) -> int:
    """The high-water mark of a live process's resident memory (``VmHWM``), in KiB; 0 once it has exited.

    Not ``getrusage``'s ``ru_maxrss``: Linux carries the parent's peak across fork and exec into it, so every
    subprocess of this Airflow-importing process would report at least this process's peak.
    """
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return 0
    return next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")), 0)


def run_measured(argv: list[str], env: dict[str, str]) -> Measured:
    """Run ``argv`` to completion, timing it and sampling its peak RSS; fail on a non-zero exit."""
    started, peak = time.monotonic(), 0
    with subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, text=True) as proc:
        while True:
            peak = max(peak, peak_rss_kib(proc.pid))
            try:
                stdout, _ = proc.communicate(timeout=RSS_SAMPLE_SECONDS)
                break
            except subprocess.TimeoutExpired:
                continue
    if proc.returncode:
        raise BenchmarkError(f"`{' '.join(argv)}` exited with status {proc.returncode}")
    return Measured(time.monotonic() - started, peak, stdout)


# --- ours, in a subprocess ----------------------------------------------------------------------------


def replicate_version(catalogue: Catalogue, version: str, settings: TransferSettings, targets: list[str]) -> dict:
    """Replicate ``bench``/``version`` to ``targets`` in one pass; seconds and peak RSS of this process.

    The stores (each an Airflow hook and its client) are created before the clock starts, as an Airflow
    worker has its providers loaded already; that set-up is reported separately.
    """
    started = time.monotonic()
    source = store_for(catalogue.primary)
    stores = [store_for(catalogue.region(name)) for name in targets]
    setup_seconds = time.monotonic() - started
    setup_rss_kib = peak_rss_kib("self")
    started = time.monotonic()
    manifest = load_source_manifest(catalogue.primary, MODEL, version)
    replicas = [Replica(manifest, source, store) for store in stores]
    for name, result in copy_version(replicas, settings).items():
        if result["skipped"]:
            raise BenchmarkError(f"{name} already had {result['skipped']}: nothing to measure")
    for replica in replicas:
        verify_and_publish(replica, settings)
    return {
        "seconds": time.monotonic() - started,
        "setup_seconds": setup_seconds,
        "setup_rss_kib": setup_rss_kib,
        "peak_rss_kib": peak_rss_kib("self"),
    }


def run_ours(version: str, args: argparse.Namespace, targets: list[Region]) -> dict:
    """Run ``replicate_version`` to ``targets`` in a fresh interpreter; its JSON result."""
    argv = [sys.executable, __file__, f"--replicate-version={version}", f"--workers={args.workers}"]
    names = ",".join(region.name for region in targets)
    done = subprocess.run(
        [*argv, f"--part-mib={args.part_mib}", f"--targets={names}"], stdout=subprocess.PIPE, text=True
    )
    if done.returncode:
        raise BenchmarkError(f"the replication of {MODEL} {version} to {names} exited with status {done.returncode}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def delete_copy(region: Region, version: str) -> None:
    """Delete ``bench``/``version`` from ``region``, so that the next run copies it again."""
    store = store_for(region)
    for key in store.list_keys(f"{version_prefix(MODEL, version)}/"):
        store.delete(key)


def run_single_legs(catalogue: Catalogue, version: str, args: argparse.Namespace) -> dict[str, dict]:
    """Ours writing to each target region alone, one after the other, each from an empty target."""
    legs = {}
    for region in targets_of(catalogue):
        delete_copy(region, version)
        legs[region.name] = run_ours(version, args, [region])
        delete_copy(region, version)
    return legs


# --- rclone -------------------------------------------------------------------------------------------


def rclone_env(catalogue: Catalogue, ports: EmulatorPorts) -> dict[str, str]:
    """This environment without ``AWS_CA_BUNDLE`` (rclone's S3 backend fails on it), plus the three remotes."""
    from azure.storage.blob import AccountSasPermissions, ResourceTypes, generate_account_sas

    sas = generate_account_sas(
        AZURITE_ACCOUNT,
        AZURITE_KEY,
        ResourceTypes(service=True, container=True, object=True),
        AccountSasPermissions(read=True, write=True, delete=True, list=True, add=True, create=True),
        expiry=datetime.now(UTC) + timedelta(days=1),
    )
    env = {name: value for name, value in os.environ.items() if name != "AWS_CA_BUNDLE"}
    return env | {
        "RCLONE_CONFIG": os.devnull,  # remotes come from the variables below only
        "RCLONE_CONFIG_S3_TYPE": "s3",
        "RCLONE_CONFIG_S3_PROVIDER": "Other",
        "RCLONE_CONFIG_S3_ENDPOINT": ports.moto_url,
        "RCLONE_CONFIG_S3_ACCESS_KEY_ID": LOCAL_AWS_KEY,
        "RCLONE_CONFIG_S3_SECRET_ACCESS_KEY": LOCAL_AWS_KEY,
        "RCLONE_CONFIG_S3_REGION": catalogue.primary.cloud_region,
        "RCLONE_CONFIG_S3_FORCE_PATH_STYLE": "true",
        "RCLONE_CONFIG_AZ_TYPE": "azureblob",
        "RCLONE_CONFIG_AZ_SAS_URL": f"{ports.azurite_blob_url}?{sas}",
        "RCLONE_CONFIG_GCS_TYPE": "google cloud storage",
        "RCLONE_CONFIG_GCS_ANONYMOUS": "true",
        "RCLONE_CONFIG_GCS_ENDPOINT": f"{ports.gcs_url}/storage/v1/",
        "RCLONE_CONFIG_GCS_PROJECT_NUMBER": "test",
        "RCLONE_CONFIG_GCS_BUCKET_POLICY_ONLY": "true",
    }


def remote(region: Region, key: str) -> str:
    return f"{RCLONE_REMOTES[region.provider]}:{region.bucket}/{key}"


def run_rclone(catalogue: Catalogue, ports: EmulatorPorts, manifest: Manifest) -> dict:
    """``rclone copy --checksum`` to every target, then ``hashsum sha256 --download`` of each copy."""
    env = rclone_env(catalogue, ports)
    source = remote(catalogue.primary, manifest.key(FILE_NAME))
    expected = manifest.files[0].sha256
    steps, peak = {}, 0
    for region in targets_of(catalogue):
        measured = run_measured(["rclone", "copy", "--checksum", source, remote(region, "rclone/")], env)
        steps[f"copy to {region.name}"] = measured.seconds
        peak = max(peak, measured.peak_rss_kib)
    for region in targets_of(catalogue):
        copy = remote(region, f"rclone/{FILE_NAME}")
        measured = run_measured(["rclone", "hashsum", "sha256", "--download", copy], env)
        landed = measured.stdout.split()[0] if measured.stdout.strip() else "nothing"
        if landed != expected:
            raise BenchmarkError(f"rclone hashsum of {copy} gave {landed}; the manifest says {expected}")
        steps[f"hashsum {region.name}"] = measured.seconds
        peak = max(peak, measured.peak_rss_kib)
    return {"seconds": sum(steps.values()), "steps": steps, "peak_rss_kib": peak}


# --- set-up -------------------------------------------------------------------------------------------


def on_azurite(catalogue: Catalogue) -> Catalogue:
    """``catalogue`` with every region an Azure container of its own, all on Azurite.

    moto and fake-gcs-server hold about four times an object in memory to complete a multipart upload or a
    compose (measured: moto was OOM-killed at 15.7 GiB completing a 4 GiB upload; fake-gcs-server peaked at
    4.1 GiB composing 1 GiB); Azurite keeps blocks on disk, so larger models can be measured on it.
    """
    data = catalogue.model_dump(mode="json")
    for index, region in enumerate(data["regions"]):
        region.update(
            provider="azure",
            cloud_region=f"region{index}",
            bucket=f"bench-{index}",
            latency_region=region["latency_region"] or region["cloud_region"],
            verification="provider_checksum",
        )
        region["connections"] = {"storage": f"azurite_{index}"}
    data["events"] = None  # its queue's connection was the S3 region's
    return parse_catalogue(data, source="the catalogue on Azurite")


@contextmanager
def local_clouds(state_dir: Path, catalogue: Catalogue) -> Generator[EmulatorPorts]:
    """The three emulators on free loopback ports, provisioned, with their connections in ``os.environ``, and a
    state database of its own (SQLite in ``state_dir``): nothing of a running platform is needed."""
    table = ProcessTable(state_dir / "run", state_dir / "logs")
    ports = EmulatorPorts(
        moto=free_port(), azurite=free_port(), gcs=free_port(), bigquery=free_port(), cost_management=free_port()
    )
    os.environ["AIRFLOW_HOME"] = str(state_dir / "airflow")
    os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "WARNING"
    os.environ.update(connection_env(catalogue, ports, state_dir / "data"))
    os.environ.update(state_connection_env(catalogue, AirflowSettings(state_dir=state_dir)))
    try:
        start_emulators(table, ports, state_dir / "data")
        provision(catalogue)
        yield ports
    finally:
        table.stop_all()


def register_random_model(catalogue: Catalogue, path: Path, size_mib: int, version: str, part_size: int) -> Manifest:
    """Write ``size_mib`` MiB of random bytes to ``path`` and register them as ``bench``/``version``."""
    with path.open("wb") as stream:
        for start in range(0, size_mib * 2**20, CHUNK):
            stream.write(os.urandom(min(CHUNK, size_mib * 2**20 - start)))
    try:
        return register_model_version(catalogue.primary, MODEL, version, {FILE_NAME: path}, part_size)
    finally:
        path.unlink()


# --- reports ------------------------------------------------------------------------------------------


def mib_per_second(size_mib: int, targets: int, seconds: float) -> float:
    return targets * size_mib / seconds


def print_comparison(size_mib: int, targets: int, ours: dict, legs: dict[str, dict], rclone: dict) -> None:
    print(f"\n{size_mib} MiB to {targets} regions, copied and verified")
    print(f"{'':32}{'seconds':>10}{'MiB/s':>10}{'peak RSS MiB':>15}")
    rows = [("ours, one pass to all", ours, targets)]
    rows += [(f"ours, alone to {name}", leg, 1) for name, leg in legs.items()]
    rows.append(("rclone copy + hashsum", rclone, targets))
    for name, result, count in rows:
        rate = mib_per_second(size_mib, count, result["seconds"])
        print(f"{name:32}{result['seconds']:>10.1f}{rate:>10.1f}{result['peak_rss_kib'] / 1024:>15.1f}")
    print("rclone steps: " + ", ".join(f"{step} {seconds:.1f} s" for step, seconds in rclone["steps"].items()))
    print(
        f"ours: stores created in {ours['setup_seconds']:.1f} s before the clock started; "
        f"peak RSS {ours['setup_rss_kib'] / 1024:.1f} MiB by then"
    )
    slowest = max(legs, key=lambda name: legs[name]["seconds"])
    over_leg = ours["seconds"] / legs[slowest]["seconds"]
    print(f"ours/slowest single leg ({slowest}): {over_leg:.2f} (1: every target in the time of that one alone)")
    ratio = rclone["seconds"] / ours["seconds"]
    print(
        f"Headline: rclone/ours {ratio:.2f} for {size_mib} MiB to {targets} regions, {over_leg:.2f} x our slowest "
        f"single leg (goal: ours faster than rclone's copy and verify, above 1): {'met' if ratio > 1 else 'NOT met'}"
    )


def print_sizes(targets: int, results: dict[int, dict]) -> None:
    print(f"\nours, to {targets} regions, copied and verified")
    print(f"{'MiB':>6}{'seconds':>10}{'MiB/s':>10}{'peak RSS MiB':>15}{'before copying':>16}")
    for size_mib, result in results.items():
        rate = mib_per_second(size_mib, targets, result["seconds"])
        peak, setup = result["peak_rss_kib"] / 1024, result["setup_rss_kib"] / 1024
        print(f"{size_mib:>6}{result['seconds']:>10.1f}{rate:>10.1f}{peak:>15.1f}{setup:>16.1f}")
    peak = max(result["peak_rss_kib"] for result in results.values()) / 1024
    print(
        f"Headline: peak RSS at most {peak:.0f} MiB for {', '.join(map(str, results))} MiB "
        f"(goal: under {GOAL_PEAK_RSS_MIB} MiB at every size): {'met' if peak < GOAL_PEAK_RSS_MIB else 'NOT met'}"
    )


# --- command line -------------------------------------------------------------------------------------


def positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number, 1 or more")
    return int(text)


def positives(text: str) -> list[int]:
    return [positive(item) for item in text.split(",")]


def parse_args(argv: list[str] | None, defaults: TransferSettings) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=positive, default=1024, help="model size for the comparison (default 1024)")
    parser.add_argument("--sizes", type=positives, help="MiB sizes, such as 64,256,1024: time ours alone at each")
    parser.add_argument(
        "--workers", type=positive, default=defaults.workers, help="threads per copy (default: the catalogue's)"
    )
    parser.add_argument(
        "--part-mib", type=positive, default=defaults.part_size // 2**20, help="part size (default: the catalogue's)"
    )
    parser.add_argument(
        "--azurite-only", action="store_true", help="every region an Azurite container: for models above 1 GiB"
    )
    parser.add_argument("--keep-state", action="store_true", help="keep the temporary directory (data, logs)")
    parser.add_argument("--replicate-version", help=argparse.SUPPRESS)  # the subprocess of ours ...
    parser.add_argument("--targets", help=argparse.SUPPRESS)  # ... and its target regions, comma-separated
    return parser.parse_args(argv)


def benchmark(args: argparse.Namespace, catalogue: Catalogue, state_dir: Path) -> None:
    sizes = args.sizes or [args.size_mib]
    part_size = args.part_mib * 2**20
    targets = targets_of(catalogue)
    with local_clouds(state_dir, catalogue) as ports:
        results, manifest = {}, None
        for version, size_mib in enumerate(sizes, start=1):
            started = time.monotonic()
            manifest = register_random_model(
                catalogue, state_dir / f"{size_mib}.bin", size_mib, str(version), part_size
            )
            print(f"{size_mib} MiB registered as {MODEL} {version} in {time.monotonic() - started:.1f} s", flush=True)
            results[size_mib] = run_ours(str(version), args, targets)
            print(f"ours, one pass to all: {results[size_mib]['seconds']:.1f} s", flush=True)
        if args.sizes:
            print_sizes(len(targets), results)
            return
        legs = run_single_legs(catalogue, manifest.version, args)
        print("single legs: " + ", ".join(f"{name} {leg['seconds']:.1f} s" for name, leg in legs.items()), flush=True)
        rclone = run_rclone(catalogue, ports, manifest)
    print_comparison(args.size_mib, len(targets), results[args.size_mib], legs, rclone)


def main(argv: list[str] | None = None) -> int:
    catalogue = load_catalogue()
    args = parse_args(argv, settings_of(catalogue))
    if args.replicate_version:
        settings = replace(settings_of(catalogue), part_size=args.part_mib * 2**20, workers=args.workers)
        print(json.dumps(replicate_version(catalogue, args.replicate_version, settings, args.targets.split(","))))
        return 0
    if not args.sizes and shutil.which("rclone") is None:
        print("rclone is not on PATH: install it (Debian: apt-get install rclone) or use --sizes.", file=sys.stderr)
        return 1
    print(f"workers {args.workers}, parts of {args.part_mib} MiB, one read of the source for every target", flush=True)
    state_dir = Path(tempfile.mkdtemp(prefix="mlp-bench-"))
    if args.azurite_only:
        catalogue = on_azurite(catalogue)
        (state_dir / "regions.yaml").write_text(yaml.safe_dump(catalogue.model_dump(mode="json"), sort_keys=False))
        os.environ[CATALOGUE_ENV] = str(state_dir / "regions.yaml")  # for the subprocesses of ours
        print(f"every region on Azurite: {', '.join(region.name for region in catalogue.regions)}", flush=True)
    try:
        benchmark(args, catalogue, state_dir)
    except BenchmarkError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    finally:
        if args.keep_state:
            print(f"state kept in {state_dir}")
        else:
            shutil.rmtree(state_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
