"""Replication under faults: bytes corrupted in transit or at rest, an emulator dying mid-copy, large models
in bounded memory, and bad inputs.

Faults are injected by ``tests.faults.proxy.FaultProxy``, an HTTP proxy put between the platform's object-store
clients and one emulator: the region's connection (``AIRFLOW_CONN_*``) is pointed at the proxy for the test,
as a real network path would sit between a worker and a cloud.
"""

from __future__ import annotations

import hashlib
import http.client
import http.server
import json
import os
import re
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from include.catalogue import load_catalogue
from include.clouds.objectstore import SHA256_METADATA, store_for
from include.errors import InvalidModelVersion, InvalidRequest, SourceMissing
from include.replication.manifest import Manifest, ModelFile, manifest_key
from include.replication.replicate import (
    Replica,
    copy_to_staging,
    is_published,
    load_source_manifest,
    read_manifest,
    register_model_version,
    settings_of,
    verify_and_publish,
)
from include.replication.requests import build_request, from_conf
from include.replication.status import StatusStore
from include.replication.transfer import ChecksumMismatch, sha256_of
from localdev.emulators import AZURITE_ACCOUNT
from tests.conftest import REPO_ROOT
from tests.faults.proxy import FaultProxy, FaultStats
from tests.integration.helpers import parse_dag, task_states

pytestmark = pytest.mark.integration

CATALOGUE = load_catalogue()
SOURCE = CATALOGUE.primary.name  # aws-us-west-2
GCS = "gcp-europe-west1"
AZURE = "azure-eastus"
SHA = re.compile(r"\b[0-9a-f]{64}\b")
MIB = 2**20


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def flipped(data: bytes, position: int) -> bytes:
    """``data`` with the byte at ``position`` XOR 0xFF, as the proxy corrupts it."""
    changed = bytearray(data)
    changed[position] ^= 0xFF
    return bytes(changed)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def proxies() -> Iterator[Callable[[int, str], FaultProxy]]:
    """Starts proxies on demand; stops (and joins) every one at the end of the test, passed or failed."""
    started: list[FaultProxy] = []

    def start(upstream_port: int, name: str) -> FaultProxy:
        proxy = FaultProxy(f"http://127.0.0.1:{upstream_port}", name=name, idle_timeout=30, lifetime=600).start()
        started.append(proxy)
        return proxy

    yield start
    for proxy in started:
        proxy.stop()


@pytest.fixture
def through_proxy(local_clouds, monkeypatch, proxies) -> Callable[[str], FaultProxy]:
    """Points one region's storage connection at a new proxy in front of its emulator, for this test only."""

    def route(region_name: str) -> FaultProxy:
        region = CATALOGUE.region(region_name)
        variable = f"AIRFLOW_CONN_{region.connections.storage.upper()}"
        conn = json.loads(local_clouds.connections[variable])
        ports = local_clouds.ports
        if region.provider == "azure":
            proxy = proxies(ports.azurite, f"proxy-{region_name}")
            conn["extra"]["connection_string"] = conn["extra"]["connection_string"].replace(
                ports.azurite_blob_url, f"{proxy.url}/{AZURITE_ACCOUNT}"
            )
        elif region.provider == "gcp":
            proxy = proxies(ports.gcs, f"proxy-{region_name}")
            conn["extra"]["api_endpoint"] = proxy.url
        else:
            proxy = proxies(ports.moto, f"proxy-{region_name}")
            conn["extra"]["endpoint_url"] = proxy.url
        monkeypatch.setenv(variable, json.dumps(conn))
        return proxy

    return route


def replica_of(model: str, version: str, target: str) -> Replica:
    """The replica of a registered version, with stores built from the connections as they are now."""
    source = CATALOGUE.region(SOURCE)
    manifest = load_source_manifest(source, model, version)
    return Replica(manifest, store_for(source), store_for(CATALOGUE.region(target)))


def leftovers(store, model: str) -> list[str]:
    """Every key of ``model`` in the target: staged or final."""
    return store.list_keys(f"_staging/{model}/") + store.list_keys(f"models/{model}/")


# -- the proxy itself --------------------------------------------------------------------------------------


class _EchoStore(http.server.BaseHTTPRequestHandler):
    """PUT stores a body, GET returns it, HEAD its length: HTTP/1.1 keep-alive, as the emulators speak it."""

    protocol_version = "HTTP/1.1"
    objects: dict[str, bytes] = {}

    def log_message(self, *args) -> None:
        pass

    def do_PUT(self) -> None:
        self.objects[self.path] = self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(201)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        body = self.objects.get(self.path, b"")
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_HEAD(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.objects.get(self.path, b""))))
        self.end_headers()


@pytest.fixture
def echo_server() -> Iterator[int]:
    _EchoStore.objects.clear()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _EchoStore)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_fault_proxy_injects_exactly_the_faults_it_is_asked_for(echo_server, proxies):
    """On one keep-alive connection, only the next large upload and the next large GET response get a byte
    flipped (small requests and HEADs pass untouched); a cut resets the connection after the given bytes and
    ``then_down`` refuses the next ones until ``heal()``."""
    proxy = proxies(echo_server, "proxy-self-test")
    data = os.urandom(100_000)
    client = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)

    def call(method: str, path: str, body: bytes | None = None) -> bytes:
        client.request(method, path, body)
        return client.getresponse().read()

    proxy.corrupt_requests(1, offset=-1)
    call("PUT", "/small", b"s" * 1024)  # not more than 1 KiB: never corrupted
    call("PUT", "/a", data)
    call("PUT", "/b", data)
    call("HEAD", "/a")
    assert _EchoStore.objects["/small"] == b"s" * 1024
    assert _EchoStore.objects["/a"] == flipped(data, len(data) - 1)
    assert _EchoStore.objects["/b"] == data

    proxy.corrupt_responses(1, offset=0)
    call("GET", "/small")
    assert call("GET", "/b") == flipped(data, 0)
    assert call("GET", "/b") == data

    proxy.cut_after_bytes(5000, then_down=True)
    with pytest.raises((ConnectionError, http.client.HTTPException)):
        call("PUT", "/c", data)
    assert "/c" not in _EchoStore.objects
    client = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
    with pytest.raises((ConnectionError, http.client.HTTPException)):
        call("GET", "/b")
    proxy.heal()
    client = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
    assert call("GET", "/b") == data
    assert proxy.stats() == FaultStats(
        connections=2, refused=1, forwarded=9, corrupted_requests=1, corrupted_responses=1, cuts=1
    )
    client.close()


# -- a. corruption in transit on upload --------------------------------------------------------------------


UPLOAD_SIZE = 5 * MIB + 17  # one part (8 MiB parts): the flipped byte's place in the file is known


@pytest.mark.parametrize(
    ("offset", "index"),
    [(0, 0), (None, UPLOAD_SIZE // 2), (-1, UPLOAD_SIZE - 1)],
    ids=["first-byte", "middle-byte", "last-byte"],
)
def test_corruption_on_upload_is_caught_before_publication_and_repaired_by_retry(
    local_clouds, through_proxy, offset, index
):
    """A byte flipped on its way into the target is invisible to the copy (the source hashed fine) but caught
    by the read-back: the staged copy is deleted, no final object or manifest ever appears, and the retry
    of ``verify_and_publish`` copies the file again and publishes a replica equal to the source."""
    model, version = unique("corrupt-upload"), "1"
    weights = os.urandom(UPLOAD_SIZE)
    files = {"weights.bin": weights, "config.json": b'{"layers": 4}'}
    manifest = register_model_version(CATALOGUE.region(SOURCE), model, version, files)
    proxy = through_proxy(AZURE)
    replica = replica_of(model, version, AZURE)
    settings = settings_of(CATALOGUE)

    proxy.corrupt_requests(1, offset=offset)
    staged = copy_to_staging(replica, settings)["staged"]
    assert sorted(staged) == ["config.json", "weights.bin"]
    assert proxy.stats().corrupted_requests == 1

    with pytest.raises(ChecksumMismatch) as caught:
        verify_and_publish(replica, staged, settings)
    message = str(caught.value)
    assert "weights.bin" in message
    assert SHA.findall(message) == [sha256(flipped(weights, index)), sha256(weights)]
    target = replica.target
    assert target.head(replica.staging_key("weights.bin")) is None, "the corrupt staged copy was kept"
    for model_file in manifest.files:
        assert target.head(manifest.key(model_file.path)) is None, f"{model_file.path} became visible"
    assert read_manifest(target, model, version) is None

    result = verify_and_publish(replica, staged, settings)  # the task's retry: the proxy is healthy again
    assert result["sha256"] == manifest.total_sha256
    assert read_manifest(target, model, version) == manifest
    assert target.get_bytes(manifest.key("weights.bin")) == weights
    assert target.list_keys(f"_staging/{model}/") == []
    assert proxy.stats().corrupted_requests == 1


# -- b. corruption in transit on read -----------------------------------------------------------------------


@pytest.mark.parametrize("target_name", [GCS, AZURE])
def test_corruption_on_read_from_the_source_fails_the_copy_and_leaves_nothing(
    local_clouds, through_proxy, monkeypatch, target_name
):
    """A byte flipped while reading from the source is caught by the SHA-256 computed during the copy: the
    copy fails naming both checksums, its upload is aborted, and the target holds nothing of the version.

    botocore's own response checksums are turned off (``when_required``), as they are in effect for ranged
    reads from real S3, which returns no checksum for a range; moto does, see the next test."""
    monkeypatch.setenv("AWS_RESPONSE_CHECKSUM_VALIDATION", "when_required")
    model, version = unique("corrupt-read"), "1"
    weights = os.urandom(5 * MIB + 17)
    manifest = register_model_version(CATALOGUE.region(SOURCE), model, version, {"weights.bin": weights})
    proxy = through_proxy(SOURCE)
    replica = replica_of(model, version, target_name)

    proxy.corrupt_responses(1)
    with pytest.raises(ChecksumMismatch) as caught:
        copy_to_staging(replica, settings_of(CATALOGUE))
    message = str(caught.value)
    assert manifest.key("weights.bin") in message
    assert SHA.findall(message) == [sha256(flipped(weights, len(weights) // 2)), sha256(weights)]
    assert proxy.stats().corrupted_responses == 1
    assert leftovers(replica.target, model) == []


def test_corruption_on_read_caught_by_botocore_also_leaves_nothing(local_clouds, through_proxy):
    """With botocore's default response checksum validation, moto's per-range CRC32 catches the flipped byte
    even before the platform's SHA-256 does; the copy fails all the same and nothing is left in the target."""
    from botocore.exceptions import FlexibleChecksumError

    model, version = unique("corrupt-read-crc"), "1"
    register_model_version(CATALOGUE.region(SOURCE), model, version, {"weights.bin": os.urandom(5 * MIB + 17)})
    proxy = through_proxy(SOURCE)
    replica = replica_of(model, version, GCS)

    proxy.corrupt_responses(1)
    with pytest.raises((FlexibleChecksumError, ChecksumMismatch)):
        copy_to_staging(replica, settings_of(CATALOGUE))
    assert proxy.stats().corrupted_responses == 1
    assert leftovers(replica.target, model) == []


# -- c. corruption at rest ----------------------------------------------------------------------------------


@pytest.mark.parametrize("target_name", [GCS, AZURE])
def test_corruption_at_rest_is_detected_by_reading_the_object_back(local_clouds, target_name):
    """A published object whose bytes later change while its metadata still claims the manifest's SHA-256
    passes the cheap metadata check (``is_published``); only reading it back (``sha256_of``) detects it."""
    model, version = unique("corrupt-at-rest"), "1"
    weights = os.urandom(3 * MIB + 5)
    manifest = register_model_version(CATALOGUE.region(SOURCE), model, version, {"weights.bin": weights})
    replica = replica_of(model, version, target_name)
    settings = settings_of(CATALOGUE)
    verify_and_publish(replica, copy_to_staging(replica, settings)["staged"], settings)
    target, (model_file,) = replica.target, manifest.files
    key = manifest.key(model_file.path)
    assert sha256_of(target, key, model_file.size, settings) == model_file.sha256

    rotten = flipped(weights, 12345)
    target.put_bytes(key, rotten, {SHA256_METADATA: model_file.sha256})

    assert is_published(target, manifest, model_file), "size and metadata alone cannot tell"
    found = sha256_of(target, key, model_file.size, settings)
    assert found != model_file.sha256
    assert found == sha256(rotten)


# -- d. the emulator dies mid-copy --------------------------------------------------------------------------


def test_emulator_dying_mid_upload_fails_the_copy_and_a_retry_publishes(local_clouds, through_proxy):
    """The target's emulator goes away 3 MiB into a 24 MiB upload (connection reset, then refused): the copy
    raises, nothing is visible (no final object, staged object or manifest), and once the target is back the
    task's retry (copy then verify) publishes a replica equal to the source."""
    model, version = unique("emulator-dies"), "1"
    weights = os.urandom(24 * MIB)
    manifest = register_model_version(CATALOGUE.region(SOURCE), model, version, {"weights.bin": weights})
    proxy = through_proxy(AZURE)
    replica = replica_of(model, version, AZURE)
    settings = settings_of(CATALOGUE)

    proxy.cut_after_bytes(3 * MIB, then_down=True)
    with pytest.raises(Exception) as caught:
        copy_to_staging(replica, settings)
    assert not isinstance(caught.value, ChecksumMismatch), caught.value
    stats = proxy.stats()
    assert stats.cuts == 1 and stats.refused >= 1, stats

    proxy.heal()
    target = replica.target
    assert target.head(replica.staging_key("weights.bin")) is None
    assert target.head(manifest.key("weights.bin")) is None
    assert read_manifest(target, model, version) is None

    staged = copy_to_staging(replica, settings)["staged"]
    verify_and_publish(replica, staged, settings)
    assert read_manifest(target, model, version) == manifest
    assert sha256_of(target, manifest.key("weights.bin"), len(weights), settings) == sha256(weights)


# -- e. memory stays bounded with the model's size ----------------------------------------------------------

# Peak RSS is read from VmHWM, the high-water mark of this process image. ru_maxrss (getrusage) is not used:
# Linux carries it across fork and exec, so a child spawned by a large pytest process reports the parent's
# peak (measured: 513 MiB "before copying" after the DAG tests had run in the same session).
REPLICATE_AND_MEASURE = """
import json, sys
from include.catalogue import load_catalogue
from include.clouds.objectstore import store_for
from include.replication.replicate import (
    Replica, copy_to_staging, load_source_manifest, read_manifest, settings_of, verify_and_publish,
)

def peak_kib():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))

model, version, *targets = sys.argv[1:]
catalogue = load_catalogue()
source = catalogue.primary
manifest = load_source_manifest(source, model, version)
settings = settings_of(catalogue)
stores = {name: store_for(catalogue.region(name)) for name in targets}
before = peak_kib()
for name, target in stores.items():
    replica = Replica(manifest, store_for(source), target)
    staged = copy_to_staging(replica, settings)["staged"]
    verify_and_publish(replica, staged, settings)
    assert read_manifest(target, model, version) == manifest, name
print(json.dumps({"before_kib": before, "peak_kib": peak_kib()}))
"""


def replicate_in_subprocess(tmp_path: Path, size: int) -> dict:
    """Register a ``size``-byte model from a file, replicate it S3 -> GCS and S3 -> Azure in a fresh
    interpreter, and return that interpreter's peak RSS (KiB) before and after copying."""
    model, version = unique(f"large-{size // MIB}mib"), "1"
    path = tmp_path / f"{model}.bin"
    with path.open("wb") as stream:
        for start in range(0, size, 4 * MIB):
            stream.write(os.urandom(min(4 * MIB, size - start)))
    register_model_version(CATALOGUE.region(SOURCE), model, version, {"weights.bin": path})
    path.unlink()
    try:
        done = subprocess.run(
            [sys.executable, "-c", REPLICATE_AND_MEASURE, model, version, GCS, AZURE],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr[-4000:]
        return json.loads(done.stdout.strip().splitlines()[-1])
    finally:
        for name in (SOURCE, GCS, AZURE):  # the emulators keep objects in memory or on disk: free them
            store = store_for(CATALOGUE.region(name))
            for key in store.list_keys(f"models/{model}/") + store.list_keys(f"_staging/{model}/"):
                store.delete(key)


def test_memory_stays_bounded_whatever_the_model_size(local_clouds, tmp_path):
    """Replicating a 300 MiB model to both other clouds peaks under 400 MiB RSS, and above the peak for a
    30 MiB model by less than the parts in flight can hold (3 x workers x part size, 96 MiB with the
    catalogue's settings): memory is bounded by the parts in flight, not by the model's size."""
    small = replicate_in_subprocess(tmp_path, 30 * MIB)
    large = replicate_in_subprocess(tmp_path, 300 * MIB)
    print(
        f"\npeak RSS replicating S3 -> GCS and S3 -> Azure: 30 MiB model {small['peak_kib'] / 1024:.0f} MiB, "
        f"300 MiB model {large['peak_kib'] / 1024:.0f} MiB (after imports, before copying: "
        f"{small['before_kib'] / 1024:.0f} and {large['before_kib'] / 1024:.0f} MiB)"
    )
    assert large["peak_kib"] < 400 * 1024
    settings = settings_of(CATALOGUE)
    assert large["peak_kib"] - small["peak_kib"] < 3 * settings.workers * settings.part_size // 1024


# -- f. bad inputs ------------------------------------------------------------------------------------------


def test_unknown_region_is_rejected_naming_it_and_the_known_ones():
    """A source or target region that is not in the catalogue is refused before any cloud call."""
    known = [region.name for region in CATALOGUE.regions]
    with pytest.raises(InvalidRequest, match="mars-north1") as caught:
        from_conf(CATALOGUE, {"model": "fraud-detector", "version": "1", "source_region": "mars-north1"})
    assert "source_region" in str(caught.value) and all(name in str(caught.value) for name in known)
    with pytest.raises(InvalidRequest, match="venus-east2") as caught:
        build_request(CATALOGUE, "fraud-detector", "1", SOURCE, targets=["venus-east2"])
    assert "targets" in str(caught.value) and all(name in str(caught.value) for name in known)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("model", "../etc"),
        ("model", "a/b"),
        ("model", ".."),
        ("model", "/abs"),
        ("version", "../1"),
        ("version", "1/2"),
    ],
)
def test_path_traversal_in_a_model_name_or_version_is_rejected(field, value):
    """A model name or version that could escape ``models/<model>/<version>/`` is refused, naming it."""
    conf = {"model": "fraud-detector", "version": "1", field: value}
    label = {"model": "model name", "version": "model version"}[field]
    with pytest.raises(InvalidRequest, match=rf"{label} {re.escape(repr(value))} is not allowed"):
        from_conf(CATALOGUE, conf)


def test_unregistered_version_is_a_missing_source_naming_the_manifest(local_clouds):
    """Asking for a version that was never registered fails with ``SourceMissing`` naming the manifest URL."""
    model = unique("never-registered")
    url = store_for(CATALOGUE.region(SOURCE)).url(manifest_key(model, "7"))
    with pytest.raises(SourceMissing, match=re.escape(url)):
        load_source_manifest(CATALOGUE.region(SOURCE), model, "7")


def test_empty_file_is_rejected_naming_it(local_clouds):
    """A 0-byte model file is refused when the manifest is built, and registering it uploads nothing."""
    empty = ModelFile("weights.bin", 0, sha256(b""))
    with pytest.raises(InvalidModelVersion, match=r"'weights\.bin' is empty"):
        Manifest.build("fraud-detector", "1", SOURCE, [empty])
    model = unique("empty-file")
    with pytest.raises(InvalidModelVersion, match=r"'empty\.bin' is empty"):
        register_model_version(CATALOGUE.region(SOURCE), model, "1", {"empty.bin": b"", "ok.bin": b"x"})
    assert store_for(CATALOGUE.region(SOURCE)).list_keys(f"models/{model}/") == []


def test_malformed_checksum_is_rejected_naming_the_file():
    """A manifest whose checksum is not a SHA-256 is refused, naming the file and the value."""
    data = {
        "model": "fraud-detector",
        "version": "1",
        "source_region": SOURCE,
        "created_at": "2026-01-01T00:00:00+00:00",
        "files": [{"path": "weights.bin", "size": 10, "sha256": "xyz"}],
    }
    with pytest.raises(InvalidModelVersion, match=r"'weights\.bin'.*'xyz' is not a SHA-256"):
        Manifest.from_dict(data)


def test_replication_run_for_an_unregistered_version_fails_and_records_why(local_clouds, airflow_db):
    """The DAG run for a version that was never registered: plan rejects it (recorded ``failed`` with the
    manifest it looked for, nothing copied) and the summary fails the run."""
    model = unique("dag-missing")
    dag = parse_dag("model_replication.py", "model_replication")
    dag_run = dag.test(run_conf={"model": model, "version": "1"})

    states = task_states(dag_run)
    url = store_for(CATALOGUE.region(SOURCE)).url(manifest_key(model, "1"))
    rows = StatusStore.from_connection(CATALOGUE.replication.state_connection).rows(model, "1")
    assert {row.region for row in rows} == {GCS, AZURE}
    for row in rows:
        assert row.state == "failed"
        assert url in row.message
    assert states["plan"] == "success"
    assert states["copy"] == states["verify"] == "skipped", states  # mapped over nothing
    assert states["summary"] == "failed", states
    assert dag_run.state == "failed", states
