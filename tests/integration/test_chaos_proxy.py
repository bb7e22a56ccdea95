"""``FaultProxy``'s modes in front of a real HTTP server on loopback: each does what it says, and the proxy
cleans up after itself. (Its corruption and cut faults are tested in ``test_replication_faults.py``.)"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from localdev.processes import free_port
from tests.faults.proxy import FaultProxy


class _EchoHandler(BaseHTTPRequestHandler):
    """Answers every request with its method, path and body as JSON, over keep-alive HTTP/1.1."""

    protocol_version = "HTTP/1.1"

    def _answer(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.received.append(self.path)
        payload = json.dumps({"method": self.command, "path": self.path, "body": body.decode()}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = _answer

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def upstream():
    """A threaded echo server on a free loopback port; ``server.received`` lists the paths it was asked."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _EchoHandler)
    server.received = []
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture
def proxy(upstream):
    with FaultProxy(f"http://127.0.0.1:{upstream.server_address[1]}", idle_timeout=5, lifetime=60) as faulty:
        yield faulty


@pytest.fixture
def client():
    with httpx.Client(timeout=3) as http:
        yield http


def request_in_background(client: httpx.Client, url: str) -> tuple[threading.Thread, list]:
    """GET ``url`` in a thread; the list receives the status code, or the seconds until the connection failed."""
    outcome = []

    def get():
        started = time.monotonic()
        try:
            outcome.append(client.get(url).status_code)
        except httpx.TransportError:
            outcome.append(time.monotonic() - started)

    thread = threading.Thread(target=get)
    thread.start()
    return thread, outcome


def test_passthrough_forwards_get_and_post(proxy, upstream, client):
    got = client.get(f"{proxy.url}/health?x=1")
    assert got.status_code == 200 and got.json() == {"method": "GET", "path": "/health?x=1", "body": ""}
    body = json.dumps({"instances": [[5.1, 3.5, 1.4, 0.2]] * 2000})  # larger than one socket read
    posted = client.post(f"{proxy.url}/predict", content=body, headers={"Content-Type": "application/json"})
    assert posted.status_code == 200 and posted.json()["body"] == body
    with urllib.request.urlopen(f"{proxy.url}/ready", timeout=3) as response:
        assert json.load(response)["path"] == "/ready"
    assert upstream.received == ["/health?x=1", "/predict", "/ready"]
    assert proxy.stats().forwarded == 3
    assert proxy.stats().connections == 2  # the GET and the POST on one keep-alive connection, urllib's own


def test_delay_adds_latency_before_forwarding(proxy, upstream, client):
    proxy.delay(0.4)
    started = time.monotonic()
    assert client.get(f"{proxy.url}/ready").status_code == 200
    assert time.monotonic() - started >= 0.4
    proxy.heal()
    started = time.monotonic()
    assert client.get(f"{proxy.url}/ready").status_code == 200
    assert time.monotonic() - started < 0.3
    assert upstream.received == ["/ready", "/ready"]
    assert proxy.stats().delayed == 1 and proxy.stats().forwarded == 1


def test_errors_answer_without_the_upstream(proxy, upstream, client):
    proxy.errors()
    assert client.get(f"{proxy.url}/health").status_code == 500
    proxy.errors(503)
    answered = client.post(f"{proxy.url}/predict", json={"instances": [[1.0]]})
    assert answered.status_code == 503 and proxy.name in answered.json()["detail"]
    assert upstream.received == []
    assert proxy.stats().errors == 2


def test_down_resets_connections_then_recovers(proxy, upstream, client):
    proxy.down()
    for _ in range(3):
        with pytest.raises(httpx.TransportError):
            client.get(f"{proxy.url}/health")
    assert upstream.received == [] and proxy.stats().refused == 3
    proxy.heal()
    assert client.get(f"{proxy.url}/health").status_code == 200


def test_down_cuts_requests_in_flight(proxy, upstream, client):
    proxy.delay(5)
    request, outcome = request_in_background(client, f"{proxy.url}/health")
    time.sleep(0.3)
    proxy.down()
    request.join(3)
    assert len(outcome) == 1 and isinstance(outcome[0], float) and outcome[0] < 1.5, outcome
    assert upstream.received == []


def test_flap_alternates_up_and_down(proxy, upstream, client):
    proxy.flap(up_seconds=0.3, down_seconds=0.3)
    timeline = []
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        try:
            timeline.append(client.get(f"{proxy.url}/health").status_code == 200)
        except httpx.TransportError:
            timeline.append(False)
        time.sleep(0.03)
    changes = sum(1 for before, after in zip(timeline, timeline[1:], strict=False) if before != after)
    assert timeline[0] is True and changes >= 3, timeline
    stats = proxy.stats()
    assert stats.forwarded == sum(timeline) and stats.refused == timeline.count(False)


def test_unreachable_upstream_resets_the_client(client):
    with FaultProxy(f"http://127.0.0.1:{free_port()}", lifetime=10) as proxy:
        with pytest.raises(httpx.TransportError):
            client.get(f"{proxy.url}/health")
        assert proxy.stats().upstream_errors == 1


def test_stops_accepting_after_its_lifetime_and_on_stop(upstream, client):
    upstream_url = f"http://127.0.0.1:{upstream.server_address[1]}"
    with FaultProxy(upstream_url, lifetime=0.5) as short_lived:
        assert client.get(f"{short_lived.url}/health").status_code == 200
        time.sleep(0.8)
        with pytest.raises(httpx.ConnectError):
            client.get(f"{short_lived.url}/health")
    stopped = FaultProxy(upstream_url).start()
    stopped.delay(30)
    request, outcome = request_in_background(client, f"{stopped.url}/health")
    time.sleep(0.2)
    started = time.monotonic()
    stopped.stop()  # cuts the delayed request and joins its thread
    assert time.monotonic() - started < 1
    request.join(3)
    assert len(outcome) == 1 and isinstance(outcome[0], float), outcome
    assert upstream.received == ["/health"]  # only the short-lived proxy's request
    with pytest.raises(httpx.ConnectError):
        client.get(f"{stopped.url}/health")


def test_rejects_bad_settings(proxy):
    for bad in (lambda: proxy.delay(-1), lambda: proxy.errors(99), lambda: proxy.flap(0, 1)):
        with pytest.raises(ValueError):
            bad()
    with pytest.raises(ValueError):
        FaultProxy("https://127.0.0.1:1")
