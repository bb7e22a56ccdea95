"""Replication under faults: bytes corrupted in transit or at rest, an emulator dying mid-copy, large models
in bounded memory, and bad inputs.

Corruption in flight is caught by the targets' checksums as the emulators apply them (measured in
test_objectstore.py); that real S3 and GCS refuse mismatching checksums themselves cannot be checked here.

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
    copy_version,
    is_published,
    load_source_manifest,
    read_manifest,
    register_model_version,
    settings_of,
    verify_and_publish,
)
from include.replication.requests import build_request, from_conf
from include.replication.transfer import ChecksumMismatch, sha256_of
from localdev.emulators import AZURITE_ACCOUNT
from tests.conftest import REPO_ROOT
from tests.faults.proxy import FaultProxy, FaultStats

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


def replica_of(model: str, version: str, target: str, source_name: str = SOURCE) -> Replica:
    """The replica of a registered version, with stores built from the connections as they are now."""
    source = CATALOGUE.region(source_name)
    manifest = load_source_manifest(source, model, version)
    return Replica(manifest, store_for(source), store_for(CATALOGUE.region(target)))


def leftovers(store, model: str) -> list[str]:
    """Every key of ``model`` in the target: final objects, GCS part objects, manifest."""
    return store.list_keys(f"models/{model}/")


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


UPLOAD_SIZE = 5 * MIB + 17  # one part (8 MiB parts): the only large upload request is the file's


@pytest.mark.parametrize(
    ("source_name", "target_name", "checksum"),
    [(SOURCE, GCS, "crc32c"), (SOURCE, AZURE, "MD5"), (GCS, SOURCE, "CRC64NVME")],
    ids=["gcs-part-crc32c", "azure-put-block-md5", "s3-full-object-crc64nvme"],
)
def test_corruption_on_upload_is_caught_by_provider_checksums_and_repaired_by_retry(
    local_clouds, through_proxy, source_name, target_name, checksum
):
    """A byte flipped on its way into the target is invisible to the pass (the source hashed fine) but caught by
    the target's own checksums, without reading the object back: the copy fails with ``ChecksumMismatch`` naming
    the file and both checksums, the file never appears at its final key (and no part object is left), there is
    no manifest, and the retry publishes a replica equal to the source."""
    model, version = unique("corrupt-upload"), "1"
    weights = os.urandom(UPLOAD_SIZE)
    files = {"weights.bin": weights, "config.json": b'{"layers": 4}'}
    manifest = register_model_version(CATALOGUE.region(source_name), model, version, files)
    proxy = through_proxy(target_name)
    replica, settings = replica_of(model, version, target_name, source_name), settings_of(CATALOGUE)

    proxy.corrupt_requests(1)
    with pytest.raises(ChecksumMismatch) as caught:
        copy_version([replica], settings)
    message = str(caught.value)
    assert "weights.bin" in message and message.count(checksum) == 2, message
    assert proxy.stats().corrupted_requests == 1
    target = replica.target
    assert leftovers(target, model) == [manifest.key("config.json")], "only the file that was not hit is there"
    assert read_manifest(target, model, version) is None

    assert copy_version([replica], settings)[target_name] == {"copied": ["weights.bin"], "skipped": ["config.json"]}
    assert verify_and_publish(replica, settings)["sha256"] == manifest.total_sha256  # the proxy is healthy again
    assert read_manifest(target, model, version) == manifest
    assert target.get_bytes(manifest.key("weights.bin")) == weights
    assert sorted(leftovers(target, model)) == sorted([*(manifest.key(p) for p in files), manifest_key(model, version)])
    assert proxy.stats().corrupted_requests == 1


# -- b. corruption in transit on read -----------------------------------------------------------------------


def test_corruption_on_read_from_the_source_fails_the_copy_and_leaves_nothing(local_clouds, through_proxy, monkeypatch):
    """A byte flipped while reading from the source is caught by the SHA-256 computed during the one pass that
    feeds both targets: the copy fails naming both checksums, every upload is aborted, and neither target holds
    anything of the version.

    botocore's own response checksums are turned off (``when_required``), as they are in effect for ranged
    reads from real S3, which returns no checksum for a range; moto does, see the next test."""
    monkeypatch.setenv("AWS_RESPONSE_CHECKSUM_VALIDATION", "when_required")
    model, version = unique("corrupt-read"), "1"
    weights = os.urandom(5 * MIB + 17)
    manifest = register_model_version(CATALOGUE.region(SOURCE), model, version, {"weights.bin": weights})
    proxy = through_proxy(SOURCE)
    replicas = [replica_of(model, version, target) for target in (GCS, AZURE)]

    proxy.corrupt_responses(1)
    with pytest.raises(ChecksumMismatch) as caught:
        copy_version(replicas, settings_of(CATALOGUE))
    message = str(caught.value)
    assert manifest.key("weights.bin") in message
    assert SHA.findall(message) == [sha256(flipped(weights, len(weights) // 2)), sha256(weights)]
    assert proxy.stats().corrupted_responses == 1
    for replica in replicas:
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
        copy_version([replica], settings_of(CATALOGUE))
    assert proxy.stats().corrupted_responses == 1
    assert leftovers(replica.target, model) == []


# -- c. corruption at rest ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("source_name", "target_name"), [(SOURCE, GCS), (SOURCE, AZURE), (GCS, SOURCE)])
def test_corruption_at_rest_is_detected_by_reading_the_object_back(local_clouds, source_name, target_name):
    """A copied object whose bytes later change while its metadata still claims the manifest's SHA-256 passes
    the cheap metadata check (``is_published``); only reading it back (``sha256_of``) detects it. In a
    ``read_back`` region (moto's S3: it completes uploads whatever checksums they carry) ``verify_and_publish``
    does so before writing the manifest: it deletes the object and fails, and the retry copies it again."""
    model, version = unique("corrupt-at-rest"), "1"
    weights = os.urandom(3 * MIB + 5)
    manifest = register_model_version(CATALOGUE.region(source_name), model, version, {"weights.bin": weights})
    replica, settings = replica_of(model, version, target_name, source_name), settings_of(CATALOGUE)
    copy_version([replica], settings)
    target, (model_file,) = replica.target, manifest.files
    key, rotten = manifest.key(model_file.path), flipped(weights, 12345)
    target.put_bytes(key, rotten, {SHA256_METADATA: model_file.sha256})

    assert is_published(target, manifest, model_file), "size and metadata alone cannot tell"
    assert sha256_of(target, key, model_file.size, settings) == sha256(rotten)
    if target.region.verification == "read_back":
        with pytest.raises(ChecksumMismatch) as caught:
            verify_and_publish(replica, settings)
        assert SHA.findall(str(caught.value)) == [sha256(rotten), sha256(weights)] and "weights.bin" in str(
            caught.value
        )
        assert target.head(key) is None and read_manifest(target, model, version) is None
        verify_and_publish(replica, settings)  # the retry: copied again, read back, published
        assert target.get_bytes(key) == weights and read_manifest(target, model, version) == manifest


# -- d. the emulator dies mid-copy --------------------------------------------------------------------------


def test_emulator_dying_mid_upload_fails_that_target_only_and_a_retry_publishes(local_clouds, through_proxy):
    """Azure's emulator goes away 3 MiB into a 24 MiB upload (connection reset, then refused) while the same pass
    feeds GCS: the GCS copy completes, the Azure one fails with nothing visible there, and once Azure is back the
    task's retry copies to Azure alone (GCS is skipped) and both publish a replica equal to the source."""
    model, version = unique("emulator-dies"), "1"
    weights = os.urandom(24 * MIB)
    manifest = register_model_version(CATALOGUE.region(SOURCE), model, version, {"weights.bin": weights})
    proxy = through_proxy(AZURE)
    gcs, azure, settings = replica_of(model, version, GCS), replica_of(model, version, AZURE), settings_of(CATALOGUE)

    proxy.cut_after_bytes(3 * MIB, then_down=True)
    with pytest.raises(Exception) as caught:
        copy_version([gcs, azure], settings)
    assert not isinstance(caught.value, ChecksumMismatch), caught.value
    stats = proxy.stats()
    assert stats.cuts == 1 and stats.refused >= 1, stats
    assert is_published(gcs.target, manifest, manifest.files[0]), "the healthy target lost its copy"

    proxy.heal()
    assert leftovers(azure.target, model) == []
    results = copy_version([gcs, azure], settings)
    assert (results[GCS]["skipped"], results[AZURE]["copied"]) == (["weights.bin"], ["weights.bin"])
    for replica in (gcs, azure):
        verify_and_publish(replica, settings)
        assert read_manifest(replica.target, model, version) == manifest
        assert sha256_of(replica.target, manifest.key("weights.bin"), len(weights), settings) == sha256(weights)


# -- e. memory stays bounded with the model's size ----------------------------------------------------------

# Peak RSS is read from VmHWM, the high-water mark of this process image. ru_maxrss (getrusage) is not used:
# Linux carries it across fork and exec, so a child spawned by a large pytest process reports the parent's
# peak (measured: 513 MiB "before copying" after the DAG tests had run in the same session).
REPLICATE_AND_MEASURE = """
import json, sys
from include.catalogue import load_catalogue
from include.clouds.objectstore import store_for
from include.replication.replicate import (
    Replica, copy_version, load_source_manifest, read_manifest, settings_of, verify_and_publish,
)

def peak_kib():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))

model, version, *targets = sys.argv[1:]
catalogue = load_catalogue()
source = catalogue.primary
manifest = load_source_manifest(source, model, version)
settings = settings_of(catalogue)
replicas = [Replica(manifest, store_for(source), store_for(catalogue.region(name))) for name in targets]
before = peak_kib()
copy_version(replicas, settings)
for replica in replicas:
    verify_and_publish(replica, settings)
    assert read_manifest(replica.target, model, version) == manifest, replica.target.region.name
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
            for key in store.list_keys(f"models/{model}/"):
                store.delete(key)


def test_memory_stays_bounded_whatever_the_model_size(local_clouds, tmp_path):
    """Replicating a 300 MiB model to both other clouds in one pass peaks under 270 MiB RSS (measured: 250, 207
    of it before copying), and above that, or the peak for 30 MiB, by less than the parts in flight can hold
    (2 x workers x part size, 64 MiB with the catalogue's settings): memory does not grow with the model."""
    small, large = replicate_in_subprocess(tmp_path, 30 * MIB), replicate_in_subprocess(tmp_path, 300 * MIB)
    print(
        f"\npeak RSS replicating S3 -> GCS and S3 -> Azure: 30 MiB model {small['peak_kib'] / 1024:.0f} MiB, "
        f"300 MiB model {large['peak_kib'] / 1024:.0f} MiB (after imports, before copying: "
        f"{small['before_kib'] / 1024:.0f} and {large['before_kib'] / 1024:.0f} MiB)"
    )
    assert large["peak_kib"] < 270 * 1024
    in_flight_kib = 2 * settings_of(CATALOGUE).workers * settings_of(CATALOGUE).part_size // 1024
    assert large["peak_kib"] - large["before_kib"] < in_flight_kib
    assert large["peak_kib"] - small["peak_kib"] < in_flight_kib


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
