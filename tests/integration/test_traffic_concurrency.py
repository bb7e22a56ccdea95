"""Traffic moves made concurrently against moto's Route 53 never undo each other, never leave every weight at 0,
and the circuit breaker's limit holds, over many seeded interleavings.

Each interleaving runs one mover per region in its own thread, as failover_moves, manual_failover and the
health watch can: a mover walks its region through random moves (an automatic or immediate failover in one
step, a graceful drain 75 -> 50 -> 25 -> 0, an operator's manual drain, held, that overrides the circuit
breaker half the time, a failback 25 -> 50 -> 75 -> 100) with random pauses, each step through
``TrafficController.set_weight`` (the serialised path), and a failover only after ``check_failover`` let it
(the breaker, the last-healthy-region rule, as a move checks them). A monitor samples Route 53 throughout.
The moves' probes, warm-up and the manual move's approval are left out: they decide whether a move starts,
not how its weights are written, which is what this test is about.
"""

from __future__ import annotations

import random
import threading
import time

import pytest
import sqlalchemy as sa

from include.errors import MoveRefused, UnsafeTrafficChange
from include.failover.machine import State
from include.failover.store import FailoverStore
from include.failover.traffic import TrafficController
from include.state.migrate import upgrade_state_db
from tests.integration.dns_zone import catalogue_in_fresh_zone

pytestmark = pytest.mark.integration

SEEDS = range(12)
BREAKER_LIMIT = 4
MOVES = {
    "automatic": [0],
    "immediate": [0],
    "graceful": [75, 50, 25, 0],
    "manual": [75, 50, 25, 0],
    "failback": [25, 50, 75, 100],
}


@pytest.fixture(scope="module")
def catalogue(local_clouds):
    base = catalogue_in_fresh_zone(ttl=1)
    data = base.model_dump(mode="json")
    data["failover"]["max_failovers_per_hour"] = BREAKER_LIMIT
    from include.catalogue import parse_catalogue

    catalogue = parse_catalogue(data, source="concurrency test")
    from include.clouds.route53 import Route53Traffic

    Route53Traffic(catalogue).ensure_baseline()
    return catalogue


@pytest.mark.parametrize("seed", SEEDS)
def test_concurrent_moves_never_undo_each_other(catalogue, tmp_path, seed):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'state.db'}")
    upgrade_state_db(engine)
    controller = TrafficController(catalogue, FailoverStore(engine))
    names = [region.name for region in catalogue.regions]
    controller.dns.apply(dict.fromkeys(names, 100), set(names))
    final: dict[str, int] = dict.fromkeys(names, 100)  # each mover's last weight written
    samples: list[dict[str, int]] = []
    stop = threading.Event()
    errors: list[BaseException] = []

    def mover(region: str, rng: random.Random) -> None:
        mine = TrafficController(catalogue, controller.store)  # one controller per task, as in Airflow
        try:
            for _ in range(3):
                kind = (
                    "failback" if final[region] == 0 else rng.choice(["automatic", "immediate", "graceful", "manual"])
                )
                if kind != "failback":
                    override = kind == "manual" and rng.random() < 0.5
                    try:
                        receivers = mine.check_failover(
                            region, started_by=f"{region}-{seed}", strategy=kind, override_breaker=override
                        )
                    except MoveRefused:
                        continue
                    # the episode: each failover of a region is its own (the records' since moves on)
                    mine.record(region, State.FAILOVER, "test drain", {}, held=kind == "manual")
                else:
                    receivers = []
                for weight in MOVES[kind]:
                    try:
                        mine.set_weight(region, weight, receivers, serving=weight > 0, holder=region)
                    except UnsafeTrafficChange:
                        break  # refused as a whole, nothing changed: the region keeps its last weight
                    final[region] = weight
                    time.sleep(rng.uniform(0, 0.05))
                if kind == "failback" and final[region] == 100:
                    mine.record(region, State.HEALTHY, "test failback", {})
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    def monitor() -> None:
        while not stop.is_set():
            samples.append(controller.dns.read().weights)
            time.sleep(0.02)

    rng = random.Random(seed)
    threads = [threading.Thread(target=mover, args=(name, random.Random(rng.random()))) for name in names]
    watcher = threading.Thread(target=monitor)
    watcher.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    stop.set()
    watcher.join()
    assert errors == []
    weights = controller.dns.read().weights
    assert weights == final  # every region's weight is its own mover's last write: no move undid another's
    assert samples and all(any(w > 0 for w in sample.values()) for sample in samples)
    started = controller.store.failovers_started(time.time() - 3600)
    assert len([start for start in started if not start["override"]]) <= BREAKER_LIMIT  # overrides may pass it
    engine.dispose()
