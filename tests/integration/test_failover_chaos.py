"""Chaos tests of health sensing and failover against real serving regions on loopback.

Each region runs a real serving process (``python -m include.serving``) on its emulated store, behind a fault
proxy; the health loop is the health DAG's own code (the trigger's probes from three vantage points, the
state machine, the strategies) driving Route 53 on moto. moto's own health checks always report healthy,
so what moves traffic here is only the platform's probing. Detection time (fault to UNHEALTHY) and switch
time (fault to the region's weight at 0 in Route 53) are printed in the test summary.
"""

from __future__ import annotations

import threading
import time

import pytest

from tests.integration.failover_harness import (
    AWS,
    AZURE,
    GCP,
    SLOW_DELAY_SECONDS,
    TIMEOUT_DELAY_SECONDS,
    HealthLoop,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def regions(chaos_regions):
    return chaos_regions


@pytest.fixture
def make_loop(regions, request):
    """A health loop on a catalogue of its own (records, state database) for this test."""
    regions.heal()
    tag = request.node.name.replace("_", "-")[:30].strip("-")

    loops: list[HealthLoop] = []

    def make(overrides: dict | None = None) -> HealthLoop:
        catalogue, path = regions.catalogue_for(tag, overrides)
        loops.append(HealthLoop(catalogue, path))
        return loops[-1]

    yield make
    for loop in loops:
        loop.close()
    regions.heal()


def false_failovers(loop: HealthLoop) -> int:
    """Failovers recorded by a loop whose regions never really failed."""
    return sum(1 for _, _, to in loop.transitions() if to == "FAILOVER")


def fail_over_and_back(loop: HealthLoop, region: str, fault, heal, label: str, figures) -> None:
    """Inject ``fault`` into ``region``, expect a failover, ``heal`` it, expect the failback; record timings."""
    loop.run_for(1.5)  # a few quiet rounds first: nothing moves
    assert loop.transitions() == [] and set(loop.weights().values()) == {100}
    fault_at = time.time()
    fault()
    loop.run_until(lambda lp: lp.weights()[region] == 0, timeout=30)
    figures(f"{label}: DNS switched", time.time() - fault_at)
    unhealthy_at = next(t.at for t in loop.store.transitions(region=region) if str(t.to_state) == "UNHEALTHY")
    figures(f"{label}: detected", unhealthy_at - fault_at)
    states = [(f, t) for r, f, t in loop.transitions() if r == region]
    assert states[:3] == [("HEALTHY", "DEGRADED"), ("DEGRADED", "UNHEALTHY"), ("UNHEALTHY", "FAILOVER")]
    others = {name: weight for name, weight in loop.weights().items() if name != region}
    assert set(others.values()) == {100}, loop.describe()
    traffic = loop.controller.dns.read()
    assert region not in traffic.latency_regions and region not in traffic.failover.values()
    assert loop.states()[region] == "FAILOVER" and {loop.states()[n] for n in others} == {"HEALTHY"}

    heal()
    loop.run_until(lambda lp: lp.states()[region] == "HEALTHY", timeout=40)
    assert [(f, t) for r, f, t in loop.transitions() if r == region][3:] == [
        ("FAILOVER", "RECOVERING"),
        ("RECOVERING", "HEALTHY"),
    ], loop.describe()
    traffic = loop.controller.dns.read()
    assert set(traffic.weights.values()) == {100} and region in traffic.latency_regions


def test_killed_region_fails_over_at_once_and_comes_back_gradually(regions, make_loop, failover_figures):
    loop = make_loop()
    fail_over_and_back(
        loop,
        AZURE,
        fault=lambda: regions.kill(AZURE),
        heal=lambda: (regions.start(AZURE), regions.wait_ready(AZURE)),
        label="kill (automatic)",
        figures=failover_figures,
    )
    failback_weights = [what for _, what in loop.timeline if "failback step (stepped)" in what]
    assert len(failback_weights) == len(loop.catalogue.failover.failback_steps), loop.describe()


def test_region_answering_errors_fails_over_the_primary_record(regions, make_loop, failover_figures):
    loop = make_loop()
    fail_over_and_back(
        loop,
        AWS,
        fault=lambda: regions.regions[AWS].proxy.errors(500),
        heal=lambda: regions.regions[AWS].proxy.heal(),
        label="HTTP 500 (automatic)",
        figures=failover_figures,
    )


def test_corrupted_model_fails_the_region_over(regions, make_loop, failover_figures):
    loop = make_loop()
    fail_over_and_back(
        loop,
        AZURE,
        fault=lambda: regions.corrupt_model(AZURE),
        heal=lambda: regions.restore_model(AZURE),
        label="corrupt model (automatic)",
        figures=failover_figures,
    )
    corrupted = next(t for t in loop.store.transitions(region=AZURE) if str(t.to_state) == "UNHEALTHY")
    assert "SHA-256" in corrupted.reason


def test_graceful_drain_steps_the_weight_down(regions, make_loop, failover_figures):
    loop = make_loop()  # gcp-europe-west1 is graceful in the catalogue
    fail_over_and_back(
        loop,
        GCP,
        fault=lambda: regions.kill(GCP),
        heal=lambda: (regions.start(GCP), regions.wait_ready(GCP)),
        label="kill (graceful)",
        figures=failover_figures,
    )
    drain = [what for _, what in loop.timeline if f"dns {GCP} failover step (stepped)" in what]
    assert [f"'{GCP}': {w}" in step for step, w in zip(drain, [75, 50, 25, 0], strict=True)] == [True] * 4


def test_an_interrupted_graceful_drain_resumes_where_it_stopped(regions, make_loop):
    loop = make_loop()
    loop.controller.set_weight(GCP, 50, [AWS, AZURE], serving=True)  # as left by a drain cut short
    regions.kill(GCP)
    loop.run_until(lambda lp: lp.weights()[GCP] == 0, timeout=60)
    drain = [what for _, what in loop.timeline if f"dns {GCP} failover step (stepped)" in what]
    assert len(drain) == 2 and f"'{GCP}': 25" in drain[0], loop.describe()  # 50 -> 25 -> 0, never up to 75


def test_graceful_drain_pauses_while_the_receivers_are_degraded(regions, make_loop):
    """The thundering herd: after the first step both receivers slow down, so the drain waits for them."""
    loop = make_loop()
    outcomes = []

    def slow_receivers_after_first_step(plan, outcome):
        outcomes.append(outcome)
        receivers = [regions.regions[name].proxy for name in (AWS, AZURE)]
        if outcomes == ["stepped"]:
            for proxy in receivers:
                proxy.delay(SLOW_DELAY_SECONDS)
        elif outcomes.count("paused") == 2:
            for proxy in receivers:
                proxy.heal()

    loop.on_step = slow_receivers_after_first_step
    regions.kill(GCP)
    loop.run_until(lambda lp: lp.weights()[GCP] == 0, timeout=60)
    assert outcomes == ["stepped", "paused", "paused", "stepped", "stepped", "stepped"], loop.describe()
    assert loop.weights() == {AWS: 100, GCP: 0, AZURE: 100}


def test_a_short_blip_degrades_but_never_fails_over(regions, make_loop, failover_figures):
    loop = make_loop()
    proxy = regions.regions[AWS].proxy

    def blip():  # down for 1 s while the loop watches: shorter than the 1.5 s threshold
        time.sleep(1.0)
        proxy.down()
        time.sleep(1.0)
        proxy.heal()

    blipping = threading.Thread(target=blip)
    blipping.start()
    loop.run_for(6)
    blipping.join()
    assert loop.transitions() == [(AWS, "HEALTHY", "DEGRADED"), (AWS, "DEGRADED", "HEALTHY")], loop.describe()
    assert set(loop.weights().values()) == {100}
    failover_figures("blip 1 s: false failovers", false_failovers(loop))


def test_slow_region_is_degraded_but_not_failed_over(regions, make_loop, failover_figures):
    loop = make_loop()
    regions.regions[GCP].proxy.delay(SLOW_DELAY_SECONDS)
    loop.run_for(6)
    assert (GCP, "HEALTHY", "DEGRADED") in loop.transitions()
    assert all(to != "UNHEALTHY" for _, _, to in loop.transitions()), loop.describe()
    assert set(loop.weights().values()) == {100}
    regions.regions[GCP].proxy.heal()
    loop.run_until(lambda lp: lp.states()[GCP] == "HEALTHY", timeout=15)
    failover_figures(f"slow {SLOW_DELAY_SECONDS:g} s: false failovers", false_failovers(loop))


def test_region_slower_than_the_timeout_fails_over(regions, make_loop, failover_figures):
    loop = make_loop()
    fail_over_and_back(
        loop,
        AZURE,
        fault=lambda: regions.regions[AZURE].proxy.delay(TIMEOUT_DELAY_SECONDS),
        heal=lambda: regions.regions[AZURE].proxy.heal(),
        label=f"latency {TIMEOUT_DELAY_SECONDS:g} s (automatic)",
        figures=failover_figures,
    )


def test_flapping_region_never_fails_over(regions, make_loop, failover_figures):
    loop = make_loop()
    regions.regions[AZURE].proxy.flap(up_seconds=0.7, down_seconds=0.7)
    loop.run_for(10)
    assert all(to not in ("UNHEALTHY", "FAILOVER") for _, _, to in loop.transitions()), loop.describe()
    assert set(loop.weights().values()) == {100}
    failover_figures("flapping 0.7 s: false failovers", false_failovers(loop))


def test_one_bad_vantage_point_is_outvoted(regions, make_loop, failover_figures):
    blackhole = "http://127.0.0.1:9"  # discard port: nothing listens, every probe from probe-c fails
    loop = make_loop(
        {
            "health": {
                "vantage_points": [
                    {"name": "probe-a"},
                    {"name": "probe-b"},
                    {"name": "probe-c", "endpoints": {AWS: blackhole}},
                ]
            }
        }
    )
    loop.run_for(5)
    assert loop.transitions() == [], loop.describe()
    assert set(loop.weights().values()) == {100}
    failover_figures("one vantage point down: false failovers", false_failovers(loop))


def test_the_last_healthy_region_is_never_drained(regions, make_loop):
    loop = make_loop()
    regions.kill(AWS)
    loop.run_until(lambda lp: lp.weights()[AWS] == 0, timeout=30)
    regions.kill(GCP)
    loop.run_until(lambda lp: lp.weights()[GCP] == 0, timeout=30)
    regions.kill(AZURE)
    loop.run_until(lambda lp: lp.states()[AZURE] == "UNHEALTHY", timeout=30)
    loop.cycle()  # the refused move is retried at the end of a watch and refused again
    assert loop.weights() == {AWS: 0, GCP: 0, AZURE: 100}, loop.describe()
    assert any("no other region is healthy" in refusal for refusal in loop.refusals)
    traffic = loop.controller.dns.read()
    assert traffic.latency_regions == {AZURE} and set(traffic.failover.values()) == {AZURE}


def test_circuit_breaker_refuses_failovers_past_the_hourly_limit(regions, make_loop):
    loop = make_loop({"failover": {"max_failovers_per_hour": 1}})
    regions.kill(AWS)
    loop.run_until(lambda lp: lp.weights()[AWS] == 0, timeout=30)
    regions.kill(AZURE)
    loop.run_until(lambda lp: lp.refusals, timeout=30)
    assert "circuit breaker open, 1 failovers in the last hour (limit 1" in loop.refusals[0]
    assert loop.weights()[AZURE] == 100 and loop.states()[AZURE] == "UNHEALTHY"
