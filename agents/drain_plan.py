"""Pure decisions of `drain`: its deadlines, which clients to migrate and when, its outcome,
and the state it records for Prometheus.

Nothing here does I/O or reads a clock. The adapter (agents/drain.py) passes in seconds
since the drain began, the API's client list and the counts read from /proc/net/tcp*.

Times are seconds from the drain's own start (the preStop hook's start, give or take
the interpreter's start-up), which is at or after the moment the kubelet started the
grace period: a deadline measured from it is never later than one measured from the
pod's deletion would be, minus that start-up time, which --deadline-margin covers.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from agents.errors import ConfigError

MIN_DRAIN = 1.0
"""The shortest time SRS is given between the quit signal and the soft deadline."""

EXIT_RESERVE = 0.5
"""Kept back at the end of the grace period: the drain writes its files and returns by then."""

SIGINT_NOTICE = 1.0
"""SRS's drain loop notices SIGINT at its next 1 s poll (FACTS: run D2)."""

DEFAULT_FINAL_WAIT = 3.2
"""SRS's grace_final_wait when the config does not set it (3200 ms)."""

MIGRATION_RESERVE = 10.0
"""Migration stops this long before the soft deadline (or half-way, in a short window),
so the graceful quit still has time to run for players it did not reach."""

VIRTUAL_CLIENT_TYPES = frozenset({"hls-play"})
"""Clients with no socket of their own in SRS's connection manager: nothing to kick."""


class Outcome(enum.StrEnum):
    DRAINED = "drained"  # SRS exited by itself after the quit signal
    DEADLINE = "deadline"  # the soft deadline came first: SRS got SIGINT
    SRS_GONE = "srs_gone"  # SRS was found but exited before the quit signal
    SRS_NOT_FOUND = "srs_not_found"  # no SRS process in the shared PID namespace
    FAILED = "failed"  # the drain could not run (a setting, a permission)


EXIT_CODES: Mapping[Outcome, int] = {
    Outcome.DRAINED: 0,
    Outcome.DEADLINE: 1,
    Outcome.SRS_GONE: 0,
    Outcome.SRS_NOT_FOUND: 0,  # nothing to drain: let the pod stop
    Outcome.FAILED: ConfigError.exit_code,
}


# ---------------------------------------------------------------------------
# Deadlines
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DrainTimes:
    """The drain's schedule, in seconds from its start."""

    quit_at: float  # end of --pre-stop-delay (plus migration, at most migration_end)
    migration_end: float  # no player is kicked after this
    soft: float  # SIGINT to SRS
    hard: float  # the drain has returned by now, inside the grace period


def _s(value: float) -> str:
    return f"{value:g}s"


def plan_times(
    deadline: float, grace_period: float, deadline_margin: float, pre_stop_delay: float
) -> DrainTimes:
    """Check the timing settings against each other and place the drain's deadlines.

    The soft deadline is --deadline, or --grace-period minus --deadline-margin; the hard
    one is the grace period minus EXIT_RESERVE, so the drain never outlives it.
    """
    hard = grace_period - EXIT_RESERVE
    if hard < MIN_DRAIN:
        raise ConfigError(
            f"--grace-period {_s(grace_period)} is too short for a drain: it must be more "
            f"than {_s(MIN_DRAIN + EXIT_RESERVE)} (set it to the pod's "
            "terminationGracePeriodSeconds)"
        )
    if deadline > 0:
        soft = deadline
        if soft > hard:
            raise ConfigError(
                f"--deadline {_s(deadline)} is past the end of --grace-period "
                f"{_s(grace_period)} (it must be at most {_s(hard)}): the kubelet would "
                "SIGKILL SRS before the drain ends"
            )
        source = f"--deadline {_s(deadline)}"
    else:
        soft = grace_period - deadline_margin
        if soft > hard:
            raise ConfigError(
                f"--deadline-margin {_s(deadline_margin)} must be at least {_s(EXIT_RESERVE)}: "
                "SRS needs time after SIGINT to finalize and exit inside --grace-period"
            )
        source = (
            f"--grace-period {_s(grace_period)} minus --deadline-margin "
            f"{_s(deadline_margin)} (= {_s(soft)})"
        )
    if soft < pre_stop_delay + MIN_DRAIN:
        raise ConfigError(
            f"{source} leaves less than {_s(MIN_DRAIN)} for the drain after --pre-stop-delay "
            f"{_s(pre_stop_delay)}: raise --grace-period, or lower --deadline-margin or "
            "--pre-stop-delay"
        )
    window = soft - pre_stop_delay
    migration_end = pre_stop_delay + max(window / 2, window - MIGRATION_RESERVE)
    return DrainTimes(quit_at=pre_stop_delay, migration_end=migration_end, soft=soft, hard=hard)


def plan_warnings(times: DrainTimes, final_wait: float = DEFAULT_FINAL_WAIT) -> list[str]:
    """Settings that work but may leave SRS to the kubelet's SIGKILL."""
    warnings = []
    needed = SIGINT_NOTICE + final_wait
    if times.hard - times.soft < needed:
        warnings.append(
            f"only {_s(round(times.hard - times.soft, 3))} between the soft deadline and the "
            f"end of the grace period, and SRS needs about {_s(needed)} after SIGINT "
            f"({_s(SIGINT_NOTICE)} to notice it, then grace_final_wait {_s(final_wait)}): "
            "raise --deadline-margin"
        )
    return warnings


# ---------------------------------------------------------------------------
# Migration
# ---------------------------------------------------------------------------


class ClientLike(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def type(self) -> str: ...

    @property
    def publish(self) -> bool: ...


def is_publisher(client: ClientLike) -> bool:
    """A publisher by either sign: the flag, or a `*-publish` type (fmle-, flash-, rtc-...)."""
    return client.publish or "publish" in client.type.lower()


@dataclass(frozen=True)
class MigrationTargets:
    players: tuple[str, ...]  # ids to kick, in the order given
    publishers: int  # never kicked
    virtual: int  # hls-play sessions: no connection to close


def migration_targets(clients: Iterable[ClientLike]) -> MigrationTargets:
    """Players to kick: every client that is not a publisher and holds a connection."""
    players: list[str] = []
    publishers = virtual = 0
    for client in clients:
        if is_publisher(client):
            publishers += 1
        elif client.type.lower() in VIRTUAL_CLIENT_TYPES:
            virtual += 1
        else:
            players.append(client.id)
    return MigrationTargets(tuple(players), publishers, virtual)


def next_kick_at(previous: float | None, now: float, rate: float) -> float:
    """When the next kick may go: never sooner than 1/rate after the previous one, so no
    second ever holds more than `rate` kicks, even after a slow API call."""
    if previous is None:
        return now
    return max(now, previous + 1.0 / rate)


def migration_fits(players: int, rate: float, start: float, end: float) -> bool:
    """Whether `players` kicks at `rate` per second fit between `start` and `end`."""
    return players == 0 or start + (players - 1) / rate <= end


# ---------------------------------------------------------------------------
# State (what Prometheus sees) and progress
# ---------------------------------------------------------------------------

STATE_FORMAT = 1

PHASES = ("pre-stop-delay", "migrating", "draining", "finalizing", "done")


@dataclass
class DrainState:
    """The drain's figures; written as JSON beside the done-file, read by the sidecar."""

    phase: str = "pre-stop-delay"
    started_at: float = 0.0  # Unix time
    updated_at: float = 0.0  # Unix time
    grace_ends_at: float | None = None  # Unix time: the end of the pod's grace period
    duration_seconds: float = 0.0
    connections: int | None = None  # on SRS's ports, at the last reading
    connections_before_quit: int | None = None
    listening: bool | None = None  # SRS's listeners still open at the last reading
    srs_pid: int | None = None
    pod: str = ""
    kicked: int = 0  # players kicked by this drain
    outcome: str | None = None  # an Outcome value once done
    outcomes: dict[str, int] = field(default_factory=dict)  # cumulative in this pod
    kicked_total: int = 0  # cumulative in this pod

    def to_json(self) -> str:
        doc = {"format": STATE_FORMAT, **asdict(self)}
        return json.dumps(doc, sort_keys=True) + "\n"


class StateFormatError(ValueError):
    """The state file is not a drain state this version can read."""


def _opt(doc: Mapping[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    value = doc.get(key)
    wrong_kind = not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool)
    if value is not None and wrong_kind:
        raise StateFormatError(f"field {key!r} is {type(value).__name__}, not {kind}")
    return value


def _float_or_none(value: float | None) -> float | None:
    return None if value is None else float(value)


def linger_budget(state: DrainState | None, now: float, wanted: float,
                  keep: float = 1.0) -> float:
    """How long the sidecar may wait for a scrape after its SIGTERM: `wanted`, but never
    past the grace period's end minus `keep` (the kubelet SIGKILLs then)."""
    if state is None or state.grace_ends_at is None:
        return wanted
    return max(0.0, min(wanted, state.grace_ends_at - keep - now))


def state_from_json(text: str) -> DrainState:
    """Parse a state file; StateFormatError names the field that is wrong."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise StateFormatError(f"not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise StateFormatError("not a JSON object")
    if doc.get("format") != STATE_FORMAT:
        raise StateFormatError(f"format {doc.get('format')!r}, expected {STATE_FORMAT}")
    number = (int, float)
    outcomes = doc.get("outcomes") or {}
    if not isinstance(outcomes, dict) or not all(
        isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool)
        for k, v in outcomes.items()
    ):
        raise StateFormatError("field 'outcomes' is not a map of outcome to count")
    return DrainState(
        phase=_opt(doc, "phase", str) or "done",
        started_at=float(_opt(doc, "started_at", number) or 0.0),
        updated_at=float(_opt(doc, "updated_at", number) or 0.0),
        grace_ends_at=_float_or_none(_opt(doc, "grace_ends_at", number)),
        duration_seconds=float(_opt(doc, "duration_seconds", number) or 0.0),
        connections=_opt(doc, "connections", int),
        connections_before_quit=_opt(doc, "connections_before_quit", int),
        listening=_opt(doc, "listening", bool),
        srs_pid=_opt(doc, "srs_pid", int),
        pod=_opt(doc, "pod", str) or "",
        kicked=_opt(doc, "kicked", int) or 0,
        outcome=_opt(doc, "outcome", str),
        outcomes=dict(outcomes),
        kicked_total=_opt(doc, "kicked_total", int) or 0,
    )


def carry_over(previous: DrainState | None) -> tuple[dict[str, int], int]:
    """The cumulative counters a new drain starts from (a pod may drain more than once:
    reload's restart of SRS uses the same drain)."""
    if previous is None:
        return {}, 0
    return dict(previous.outcomes), previous.kicked_total


def metric_families(state: DrainState | None) -> list[Metric]:
    """The drain's Prometheus metrics from its state (None: no drain yet in this pod)."""
    outcomes = CounterMetricFamily(
        "srs_agent_drain_outcomes",
        "Drains of SRS in this pod, by how they ended (drained, deadline, srs_gone, "
        "srs_not_found, failed).",
        labels=["outcome"],
    )
    counts = state.outcomes if state else {}
    for outcome in Outcome:
        outcomes.add_metric([outcome.value], float(counts.get(outcome.value, 0)))
    kicked = CounterMetricFamily(
        "srs_agent_drain_kicked_players",
        "Players kicked through SRS's API by drain --migrate-rate, in this pod.",
        value=float(state.kicked_total if state else 0),
    )
    families: list[Metric] = [outcomes, kicked]
    if state is None:
        return families
    families.append(GaugeMetricFamily(
        "srs_agent_drain_duration_seconds",
        "Time since the current drain began, or the length of the last one once it ended.",
        value=state.duration_seconds,
    ))
    families.append(GaugeMetricFamily(
        "srs_agent_drain_in_progress", "1 while a drain of SRS is running.",
        value=0.0 if state.phase == "done" else 1.0,
    ))
    if state.connections is not None:
        families.append(GaugeMetricFamily(
            "srs_agent_drain_connections",
            "Client connections SRS still holds on its ports (ESTABLISHED or CLOSE_WAIT in "
            "/proc/net/tcp*: what its graceful quit waits for) at the drain's last reading.",
            value=float(state.connections),
        ))
    if state.connections_before_quit is not None:
        families.append(GaugeMetricFamily(
            "srs_agent_drain_connections_before_quit",
            "Client connections on SRS's ports just before the drain sent the quit signal.",
            value=float(state.connections_before_quit),
        ))
    return families


def progress_fields(
    elapsed: float, soft: float, connections: int | None, by_port: Mapping[int, int],
    listening: bool | None,
) -> dict[str, Any]:
    """The fields of one progress line: connections left and time left."""
    return {
        "connections": connections if connections is not None else "unknown",
        "by_port": {str(port): count for port, count in sorted(by_port.items())},
        "listening": listening,
        "elapsed_seconds": round(elapsed, 1),
        "seconds_to_deadline": round(max(0.0, soft - elapsed), 1),
    }
