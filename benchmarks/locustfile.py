"""The locust scenario of the serving load test (``benchmarks/load_test.py`` runs it; see benchmarks/README.md).

Each simulated client sends ``POST /predict`` with the serving bearer token to one region, chosen the way
Route 53's weighted routing answers: at random, in proportion to the regions' weights. Like a client behind
a caching resolver, it keeps the answer for the record's TTL before it looks again; the answer it looks up
is the file ``--dns-view`` that the driver keeps in step with Route 53 (``{"weights": {region: weight}}``),
so after a failover a client goes on sending to the dead region for at most one TTL.

Every request is named after its region in locust's statistics, and every failure is appended to
``--failures-log`` as a JSON line (``at``, ``region``, ``error``) for the driver to place on the failover's
timeline.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

from locust import FastHttpUser, events, task

IRIS_INSTANCES = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]


@events.init_command_line_parser.add_listener
def _arguments(parser) -> None:
    parser.add_argument("--endpoints", required=True, help='JSON {"<region>": "<serving endpoint>"}')
    parser.add_argument("--dns-view", required=True, help="file of the weights Route 53 answers with")
    parser.add_argument("--dns-ttl", type=float, required=True, help="seconds a client keeps an answer")
    parser.add_argument("--token-file", required=True, help="the serving bearer token")
    parser.add_argument("--failures-log", required=True, help="JSON lines of failures, appended")


def read_weights(path: Path) -> dict[str, int]:
    """The weights in the DNS view file (the driver replaces it atomically)."""
    return json.loads(path.read_text())["weights"]


def pick_region(weights: dict[str, int], rng: random.Random) -> str:
    """A region at random in proportion to its weight, as a weighted record set answers; when every weight
    is 0, Route 53 answers as if all were equal."""
    regions = sorted(weights)
    shares = [weights[region] for region in regions]
    return rng.choices(regions, weights=shares if any(shares) else None)[0]


class PredictClient(FastHttpUser):
    """One client: resolves the serving record once per TTL and sends predictions to the region it got."""

    host = "http://127.0.0.1"  # each request names its region's full URL

    def on_start(self) -> None:
        options = self.environment.parsed_options
        self.endpoints = json.loads(options.endpoints)
        self.view = Path(options.dns_view)
        self.ttl = options.dns_ttl
        self.failures = Path(options.failures_log)
        token = Path(options.token_file).read_text().split()[0]
        self.headers = {"Authorization": f"Bearer {token}"}
        self.rng = random.Random()  # noqa: S311 - load spreading, not security
        # clients resolved at different moments before the test: each answer is already part-way through its TTL
        self.resolved_at = time.monotonic() - self.rng.uniform(0, self.ttl)
        self.region = pick_region(read_weights(self.view), self.rng)

    @task
    def predict(self) -> None:
        if time.monotonic() - self.resolved_at >= self.ttl:
            self.region = pick_region(read_weights(self.view), self.rng)
            self.resolved_at = time.monotonic()
        url = self.endpoints[self.region].rstrip("/") + "/predict"
        with self.client.post(
            url, json={"instances": IRIS_INSTANCES}, headers=self.headers, name=self.region, catch_response=True
        ) as response:
            if response.status_code != 200:
                error = f"HTTP {response.status_code}" if response.status_code else str(response.error)
                response.failure(error)
                with self.failures.open("a") as log:
                    log.write(json.dumps({"at": time.time(), "region": self.region, "error": error}) + "\n")
