"""The failover state machine: every transition, its thresholds and its hysteresis, on hand-made rounds."""

from __future__ import annotations

import pytest

from include.catalogue import load_catalogue
from include.failover.machine import RegionRecord, State, Transition, moved, observe

# The local catalogue: unhealthy after 3 failed rounds over >= 6 s, healthy after 3 good rounds,
# failback after 30 s of health.
CATALOGUE = load_catalogue()


def run(record: RegionRecord, rounds: list[tuple[float, str]]) -> tuple[RegionRecord, list[Transition]]:
    transitions = []
    for now, verdict in rounds:
        record, transition = observe(record, verdict, [f"{verdict} at {now}"], {"t": now}, now, CATALOGUE)
        if transition:
            transitions.append(transition)
    return record, transitions


def states(transitions: list[Transition]) -> list[tuple[str, str]]:
    return [(str(t.from_state), str(t.to_state)) for t in transitions]


def test_thresholds_settings_are_the_ones_these_tests_assume():
    assert CATALOGUE.health.unhealthy_after_failures == 3 and CATALOGUE.health.unhealthy_after_seconds == 6
    assert CATALOGUE.health.healthy_after_successes == 3 and CATALOGUE.failover.stable_seconds == 30


def test_ok_rounds_change_nothing():
    record, transitions = run(RegionRecord("r"), [(t, "ok") for t in range(10)])
    assert transitions == [] and record.state == State.HEALTHY and record.successes == 10


def test_a_failed_round_degrades_and_a_short_blip_recovers_without_failover():
    record, transitions = run(RegionRecord("r"), [(0, "failed"), (2, "failed"), (4, "ok"), (6, "ok"), (8, "ok")])
    assert states(transitions) == [("HEALTHY", "DEGRADED"), ("DEGRADED", "HEALTHY")]
    assert record.state == State.HEALTHY


def test_unhealthy_needs_both_the_round_count_and_the_duration():
    # Three failed rounds within 4 s are not enough (6 s required): the fourth, at 6 s, is.
    record, transitions = run(RegionRecord("r"), [(0, "failed"), (2, "failed"), (4, "failed")])
    assert record.state == State.DEGRADED and record.failures == 3
    record, more = run(record, [(6, "failed")])
    assert states(more) == [("DEGRADED", "UNHEALTHY")]
    assert "failed 4 rounds in a row over 6.0s" in more[0].reason
    assert more[0].evidence == {"t": 6}


def test_slow_rounds_degrade_but_never_fail_over():
    record, transitions = run(RegionRecord("r"), [(t, "degraded") for t in range(0, 60, 2)])
    assert states(transitions) == [("HEALTHY", "DEGRADED")] and record.state == State.DEGRADED


def test_flapping_never_reaches_unhealthy():
    rounds = [(t, "failed" if (t // 2) % 3 < 2 else "ok") for t in range(0, 120, 2)]
    record, transitions = run(RegionRecord("r"), rounds)
    assert State.UNHEALTHY not in {t.to_state for t in transitions}


def test_failover_waits_for_stable_health_before_recovering():
    record = RegionRecord("r", state=State.FAILOVER)
    # Good for 20 s, then a failure: the stability clock starts again.
    record, transitions = run(record, [(t, "ok") for t in range(0, 22, 2)] + [(22, "failed")])
    assert transitions == [] and record.healthy_since is None
    record, transitions = run(record, [(t, "ok") for t in range(24, 56, 2)])
    assert states(transitions) == [("FAILOVER", "RECOVERING")]
    assert transitions[0].at == 54  # 30 s after the first good round at 24


def test_an_operators_hold_keeps_a_healthy_region_failed_over():
    record = RegionRecord("r", state=State.FAILOVER, held=True)
    record, transitions = run(record, [(t, "ok") for t in range(0, 120, 2)])
    assert transitions == [] and record.state == State.FAILOVER


def test_recovering_region_that_fails_again_goes_unhealthy():
    record, transitions = run(RegionRecord("r", state=State.RECOVERING), [(t, "failed") for t in range(0, 8, 2)])
    assert states(transitions) == [("RECOVERING", "UNHEALTHY")]


def test_unhealthy_region_whose_failover_was_refused_recovers_by_hysteresis():
    record, transitions = run(RegionRecord("r", state=State.UNHEALTHY), [(0, "ok"), (2, "ok"), (4, "ok")])
    assert states(transitions) == [("UNHEALTHY", "HEALTHY")]


def test_moved_records_the_traffic_move_and_the_hold():
    record, transition = moved(RegionRecord("r", state=State.UNHEALTHY), State.FAILOVER, "drained", {"a": 1}, 5.0)
    assert record.state == State.FAILOVER and record.since == 5.0 and not record.held
    assert transition.describe() == "r: UNHEALTHY -> FAILOVER: drained"
    held, _ = moved(record, State.FAILOVER, "manual", {}, 6.0, held=True)
    assert held.held


@pytest.mark.parametrize("record", [RegionRecord("r", state=State.DEGRADED, failures=2, failing_since=1.5)])
def test_records_and_transitions_round_trip_through_json_dicts(record):
    assert RegionRecord.from_dict(record.as_dict()) == record
    _, transition = moved(record, State.UNHEALTHY, "why", {"k": [1]}, 3.0)
    assert Transition.from_dict(transition.as_dict()) == transition
