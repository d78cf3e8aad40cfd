"""The drain's pure decisions: deadlines, migration targets and pacing, state and metrics."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from agents.drain_plan import (
    EXIT_CODES,
    EXIT_RESERVE,
    MIGRATION_RESERVE,
    DrainState,
    Outcome,
    StateFormatError,
    carry_over,
    is_publisher,
    linger_budget,
    metric_families,
    migration_fits,
    migration_targets,
    next_kick_at,
    plan_times,
    plan_warnings,
    progress_fields,
    state_from_json,
)
from agents.errors import ConfigError


@dataclass(frozen=True)
class C:
    id: str
    type: str
    publish: bool = False


# -- deadlines ----------------------------------------------------------------------


def test_deadline_derived_from_grace_period_minus_margin() -> None:
    times = plan_times(deadline=0, grace_period=60, deadline_margin=5, pre_stop_delay=5)
    assert times.soft == 55
    assert times.hard == 60 - EXIT_RESERVE
    assert times.quit_at == 5
    # 50 s between the quit and the deadline: migration stops 10 s before the deadline
    assert times.migration_end == 55 - MIGRATION_RESERVE


def test_explicit_deadline_wins_over_margin() -> None:
    times = plan_times(deadline=20, grace_period=30, deadline_margin=5, pre_stop_delay=0)
    assert times.soft == 20
    assert times.hard == 30 - EXIT_RESERVE


def test_short_window_migrates_for_half_of_it() -> None:
    times = plan_times(deadline=0, grace_period=12, deadline_margin=2, pre_stop_delay=2)
    assert times.migration_end == 2 + (10 - 2) / 2


def test_deadline_past_grace_period_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"--deadline 40s is past the end of --grace-period"):
        plan_times(deadline=40, grace_period=30, deadline_margin=5, pre_stop_delay=0)


def test_margin_below_exit_reserve_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"--deadline-margin 0s must be at least"):
        plan_times(deadline=0, grace_period=30, deadline_margin=0, pre_stop_delay=0)


def test_no_time_left_after_pre_stop_delay_names_the_flags() -> None:
    with pytest.raises(ConfigError) as info:
        plan_times(deadline=0, grace_period=10, deadline_margin=5, pre_stop_delay=5)
    text = str(info.value)
    for flag in ("--grace-period 10s", "--deadline-margin 5s", "--pre-stop-delay 5s"):
        assert flag in text


def test_tiny_grace_period_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="--grace-period 1s is too short"):
        plan_times(deadline=0, grace_period=1, deadline_margin=0.5, pre_stop_delay=0)


def test_warning_when_margin_cannot_hold_srs_final_wait() -> None:
    tight = plan_times(deadline=0, grace_period=30, deadline_margin=2, pre_stop_delay=0)
    assert any("raise --deadline-margin" in w for w in plan_warnings(tight))
    roomy = plan_times(deadline=0, grace_period=30, deadline_margin=5, pre_stop_delay=0)
    assert plan_warnings(roomy) == []
    assert plan_warnings(roomy, final_wait=10) != []


# -- outcome ------------------------------------------------------------------------


def test_exit_codes_follow_the_contract() -> None:
    assert EXIT_CODES[Outcome.DRAINED] == 0
    assert EXIT_CODES[Outcome.DEADLINE] == 1
    assert EXIT_CODES[Outcome.SRS_GONE] == 0
    assert EXIT_CODES[Outcome.SRS_NOT_FOUND] == 0
    assert EXIT_CODES[Outcome.FAILED] == 2
    assert set(EXIT_CODES) == set(Outcome)


# -- migration ----------------------------------------------------------------------


def test_publishers_are_never_targets() -> None:
    clients = [
        C("p1", "fmle-publish", True),
        C("p2", "flash-publish", False),  # the type alone is enough
        C("p3", "rtc-publish", True),
        C("a", "rtmp-play"),
        C("b", "flv-play"),
        C("h", "hls-play"),
        C("c", "rtc-play"),
    ]
    targets = migration_targets(clients)
    assert targets.players == ("a", "b", "c")
    assert targets.publishers == 3
    assert targets.virtual == 1
    assert all(is_publisher(c) for c in clients[:3])


def test_kicks_are_spaced_by_one_over_rate() -> None:
    assert next_kick_at(None, 3.0, 10) == 3.0
    assert next_kick_at(3.0, 3.01, 10) == pytest.approx(3.1)
    # after a slow call the next kick goes at once, never two in less than 1/rate
    assert next_kick_at(3.0, 3.5, 10) == 3.5


def test_simulated_pacing_never_exceeds_the_rate() -> None:
    rate, now, previous = 4.0, 0.0, None
    sent = []
    for _ in range(20):
        at = next_kick_at(previous, now, rate)
        sent.append(at)
        previous = at
        now = at + 0.01  # each kick takes 10 ms
    for a, b in itertools.pairwise(sent):
        assert b - a >= 1 / rate - 1e-9
    assert max(sum(1 for t in sent if s <= t < s + 1) for s in sent) <= rate


def test_migration_fits() -> None:
    assert migration_fits(0, 1, 10, 10)
    assert migration_fits(11, 10, 0, 1)  # kicks at 0.0 .. 1.0
    assert not migration_fits(12, 10, 0, 1)


# -- state and metrics --------------------------------------------------------------


def test_state_round_trips_through_json() -> None:
    state = DrainState(phase="draining", started_at=1.5, grace_ends_at=61.5, connections=3,
                       connections_before_quit=5, listening=False, srs_pid=42, pod="edge-0",
                       kicked=2, outcomes={"drained": 1}, kicked_total=7)
    assert state_from_json(state.to_json()) == state


@pytest.mark.parametrize("text, problem", [
    ("nope", "not JSON"),
    ("[]", "not a JSON object"),
    ('{"format": 9}', "format 9"),
    ('{"format": 1, "connections": "3"}', "'connections'"),
    ('{"format": 1, "connections": true}', "'connections'"),
    ('{"format": 1, "outcomes": {"drained": "x"}}', "'outcomes'"),
])
def test_bad_state_names_the_problem(text: str, problem: str) -> None:
    with pytest.raises(StateFormatError, match=problem):
        state_from_json(text)


def test_counters_carry_over_between_drains() -> None:
    assert carry_over(None) == ({}, 0)
    previous = DrainState(outcomes={"deadline": 1}, kicked_total=4)
    assert carry_over(previous) == ({"deadline": 1}, 4)


def _scrape(state: DrainState | None) -> dict[str, list[tuple[dict[str, str], float]]]:
    class _Once(Collector):
        def collect(self) -> Iterable[Metric]:
            return metric_families(state)

    registry = CollectorRegistry()
    registry.register(_Once())
    text = generate_latest(registry).decode()
    return {
        f.name: [(s.labels, s.value) for s in f.samples if not s.name.endswith("_created")]
        for f in text_string_to_metric_families(text)
    }


def test_metrics_before_any_drain_are_zero_counters_only() -> None:
    metrics = _scrape(None)
    assert set(metrics) == {"srs_agent_drain_outcomes", "srs_agent_drain_kicked_players"}
    assert {labels["outcome"]: v for labels, v in metrics["srs_agent_drain_outcomes"]} == {
        o.value: 0.0 for o in Outcome}


def test_metrics_of_a_drain() -> None:
    state = DrainState(phase="draining", duration_seconds=4.5, connections=3,
                       connections_before_quit=8, outcomes={"deadline": 1}, kicked_total=5)
    metrics = _scrape(state)
    assert metrics["srs_agent_drain_connections"] == [({}, 3.0)]
    assert metrics["srs_agent_drain_connections_before_quit"] == [({}, 8.0)]
    assert metrics["srs_agent_drain_duration_seconds"] == [({}, 4.5)]
    assert metrics["srs_agent_drain_in_progress"] == [({}, 1.0)]
    assert metrics["srs_agent_drain_kicked_players"] == [({}, 5.0)]
    outcomes = {labels["outcome"]: v for labels, v in metrics["srs_agent_drain_outcomes"]}
    assert outcomes["deadline"] == 1.0 and outcomes["drained"] == 0.0


def test_unknown_connections_are_not_exported_as_zero() -> None:
    metrics = _scrape(DrainState(phase="done", connections=None))
    assert "srs_agent_drain_connections" not in metrics
    assert metrics["srs_agent_drain_in_progress"] == [({}, 0.0)]


def test_progress_fields() -> None:
    got = progress_fields(12.34, 55, 3, {8080: 1, 1935: 2}, False)
    assert got == {"connections": 3, "by_port": {"1935": 2, "8080": 1}, "listening": False,
                   "elapsed_seconds": 12.3, "seconds_to_deadline": 42.7}
    assert progress_fields(60, 55, None, {}, None)["connections"] == "unknown"
    assert progress_fields(60, 55, None, {}, None)["seconds_to_deadline"] == 0.0


def test_the_sidecar_lingers_no_later_than_the_grace_period_allows() -> None:
    assert linger_budget(None, now=100, wanted=15) == 15
    assert linger_budget(DrainState(), now=100, wanted=15) == 15  # grace end unknown
    state = DrainState(grace_ends_at=110.0)
    assert linger_budget(state, now=100, wanted=15) == 9.0  # one second kept back
    assert linger_budget(state, now=100, wanted=5) == 5
    assert linger_budget(state, now=112, wanted=15) == 0.0
