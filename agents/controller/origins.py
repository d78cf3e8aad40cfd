"""Which origins to list: from the workload and its EndpointSlices, in a stable order.

Pure: takes the objects as plain JSON (what the API returns) and a clock reading, and
returns decisions. Two ways to run an origin cluster, as in the guide:

- A StatefulSet behind a headless Service: origin N is `<pod>.<service>` (the pod's DNS
  name, e.g. `srs-origin-0.socs`), in ordinal order. A pod whose ordinal is past
  `spec.replicas` (a scale-down under way) or that is terminating leaves the list at once.
- One Deployment per origin, each behind its own Service, the Services picked by a label
  selector: origin = the Service's name (e.g. `srs-origin-0-socs`), in natural name order.
  The Service is the origin; its pod being replaced only makes it unready for a while.

An origin is up when an endpoint of it is serving (`conditions.serving`, else `ready`)
and not terminating. `Debouncer` then damps flapping: an origin that comes up is listed
at once; one that goes down stays listed until it has been down for the hold time.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

SERVICE_NAME_LABEL = "kubernetes.io/service-name"  # on every EndpointSlice of a Service

Obj = Mapping[str, Any]


class SelectorError(ValueError):
    """A label selector that does not parse; the message says where."""


# ---------------------------------------------------------------------------
# Label selectors (the syntax of kubectl -l and of the API's labelSelector)
# ---------------------------------------------------------------------------

_KEY = r"(?:[A-Za-z0-9][-A-Za-z0-9_.]*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?"
_VALUE = r"(?:[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?"
_REQUIREMENT = re.compile(
    rf"\s*(?:(?P<not>!)\s*(?P<nkey>{_KEY})"
    rf"|(?P<key>{_KEY})\s*(?:(?P<op>==|!=|=)\s*(?P<value>{_VALUE})"
    rf"|\s(?P<setop>in|notin)\s*\((?P<values>[^()]*)\))?)\s*(?:,|$)"
)


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!exists"
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        if self.op == "exists":
            return present
        if self.op == "!exists":
            return not present
        if self.op in ("=", "in"):
            return present and labels[self.key] in self.values
        return not present or labels[self.key] not in self.values  # "!=", "notin"


@dataclass(frozen=True)
class Selector:
    """A parsed label selector; `text` is what it was parsed from."""

    text: str
    requirements: tuple[Requirement, ...]

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(r.matches(labels) for r in self.requirements)


def parse_selector(text: str) -> Selector:
    """`app=srs-origin,tier in (a,b),!canary` -> Selector; SelectorError if it is not one."""
    requirements: list[Requirement] = []
    pos = 0
    stripped = text.strip()
    if not stripped:
        raise SelectorError("empty label selector (it would match every Service)")
    while pos < len(text):
        m = _REQUIREMENT.match(text, pos)
        if m is None or m.end() == pos:
            raise SelectorError(f"cannot read the label selector {text!r} at column {pos + 1}")
        if m.group("nkey"):
            requirements.append(Requirement(m.group("nkey"), "!exists"))
        elif m.group("op"):
            op = "!=" if m.group("op") == "!=" else "="
            requirements.append(Requirement(m.group("key"), op, frozenset([m.group("value")])))
        elif m.group("setop"):
            values = frozenset(v.strip() for v in m.group("values").split(",") if v.strip())
            if not values:
                raise SelectorError(f"{m.group('key')} {m.group('setop')} (): no values")
            op = "in" if m.group("setop") == "in" else "notin"
            requirements.append(Requirement(m.group("key"), op, values))
        else:
            requirements.append(Requirement(m.group("key"), "exists"))
        pos = m.end()
    return Selector(stripped, tuple(requirements))


# ---------------------------------------------------------------------------
# Origin sets and what the cluster says about them
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class OriginSet:
    """Where the origins come from: a StatefulSet by name, or Services by selector."""

    kind: str  # "statefulset" or "selector"
    name: str  # the StatefulSet's name, or the selector's text
    selector: Selector | None = field(default=None, compare=False)

    def __str__(self) -> str:
        return f"{self.kind}/{self.name}"


def statefulset(name: str) -> OriginSet:
    return OriginSet("statefulset", name)


def service_selector(text: str) -> OriginSet:
    selector = parse_selector(text)
    return OriginSet("selector", selector.text, selector)


class State(enum.Enum):
    UP = "up"  # serving: listed at once
    DOWN = "down"  # there but not serving: listed until down for the hold time
    LEAVING = "leaving"  # terminating or scaled away: unlisted at once


@dataclass(frozen=True)
class Origin:
    host: str
    state: State


@dataclass(frozen=True)
class Observation:
    """The origins of one set, in list order; `problem` says why there are none to tell."""

    origins: tuple[Origin, ...] = ()
    problem: str = ""


def _meta(obj: Obj) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def _labels(obj: Obj) -> Mapping[str, str]:
    labels = _meta(obj).get("labels")
    return labels if isinstance(labels, Mapping) else {}


def endpoint_state(endpoint: Obj) -> State:
    """UP when serving (or, without `serving`, ready) and not terminating."""
    conditions = endpoint.get("conditions")
    conditions = conditions if isinstance(conditions, Mapping) else {}
    if conditions.get("terminating") is True:
        return State.LEAVING
    serving = conditions.get("serving")
    if serving is None:
        serving = conditions.get("ready")
    # The API's rule for an absent `ready`: an unknown state is taken as ready.
    return State.UP if serving is not False else State.DOWN


def _best(a: State | None, b: State) -> State:
    """Of two endpoints of one origin (dual-stack: one per address family), the better."""
    order = {State.UP: 0, State.DOWN: 1, State.LEAVING: 2}
    return b if a is None or order[b] < order[a] else a


def slices_of(service: str, slices: Iterable[Obj]) -> list[Obj]:
    return [s for s in slices if _labels(s).get(SERVICE_NAME_LABEL) == service]


def _endpoints(slices: Iterable[Obj]) -> Iterable[Obj]:
    for s in slices:
        for endpoint in s.get("endpoints") or ():
            if isinstance(endpoint, Mapping):
                yield endpoint


def statefulset_origins(sts: Obj | None, slices: Iterable[Obj]) -> Observation:
    """The pods of the StatefulSet found in its headless Service's EndpointSlices."""
    if sts is None:
        return Observation(problem="StatefulSet not found")
    name = str(_meta(sts).get("name") or "")
    spec = sts.get("spec") if isinstance(sts.get("spec"), Mapping) else {}
    assert isinstance(spec, Mapping)
    service = str(spec.get("serviceName") or "")
    if not service:
        return Observation(problem=f"StatefulSet {name} has no spec.serviceName: its pods "
                                   "have no DNS names to list")
    replicas = spec.get("replicas")
    replicas = replicas if isinstance(replicas, int) else 1
    ordinals = spec.get("ordinals")
    start = ordinals.get("start", 0) if isinstance(ordinals, Mapping) else 0
    start = start if isinstance(start, int) else 0
    pod_name = re.compile(rf"{re.escape(name)}-(0|[1-9][0-9]*)")
    found: dict[int, tuple[str, State]] = {}
    for endpoint in _endpoints(slices_of(service, slices)):
        ref = endpoint.get("targetRef")
        if not isinstance(ref, Mapping) or ref.get("kind") != "Pod":
            continue
        m = pod_name.fullmatch(str(ref.get("name") or ""))
        if m is None:
            continue
        ordinal = int(m.group(1))
        hostname = str(endpoint.get("hostname") or ref.get("name"))
        state = endpoint_state(endpoint)
        if not start <= ordinal < start + replicas:
            state = State.LEAVING
        previous = found.get(ordinal)
        found[ordinal] = (f"{hostname}.{service}",
                          _best(previous[1] if previous else None, state))
    return Observation(tuple(Origin(host, state) for _, (host, state) in sorted(found.items())))


def natural_key(name: str) -> tuple[tuple[int, int | str], ...]:
    """`srs-origin-2-socs` before `srs-origin-10-socs`."""
    return tuple((0, int(part)) if part.isdigit() else (1, part)
                 for part in re.split(r"(\d+)", name) if part)


def selector_origins(selector: Selector, services: Iterable[Obj],
                     slices: Iterable[Obj]) -> Observation:
    """Each Service the selector picks is one origin, named by the Service."""
    chosen = sorted((str(_meta(s).get("name") or "") for s in services
                     if selector.matches(_labels(s))), key=natural_key)
    every_slice = list(slices)
    origins = []
    for name in chosen:
        if not name:
            continue
        state = State.DOWN
        for endpoint in _endpoints(slices_of(name, every_slice)):
            if endpoint_state(endpoint) is State.UP:
                state = State.UP
                break
        origins.append(Origin(name, state))
    return Observation(tuple(origins))


# ---------------------------------------------------------------------------
# Debounce: a pure state machine driven by the caller's clock
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    hosts: tuple[str, ...]  # the list to publish (the last one again when `starved`)
    held: tuple[str, ...] = ()  # down, still listed until their hold ends
    wake_at: float | None = None  # when a hold ends: decide again then
    starved: bool = False  # no origin to list: the last list is kept, never an empty one
    changed: bool = False  # `hosts` differs from the previous decision's


class Debouncer:
    """Up origins are listed at once; a down one stays listed for `hold` seconds.

    A terminating or vanished origin leaves at once. An origin that was never listed is
    not listed while down. The list never becomes empty: with no origin to list, the
    last list stays (an edge with no `origin` cannot pull at all, and SRS's round robin
    expects at least one).

    `listed`: what the configs list already (a restarted controller, an origin set seen
    anew), so an origin down at that moment is held too, not dropped at once.
    """

    def __init__(self, hold: float, listed: Iterable[str] = ()) -> None:
        self.hold = hold
        self.published: tuple[str, ...] | None = None
        self._listed_before = frozenset(listed)
        self._down_since: dict[str, float] = {}

    def update(self, origins: Sequence[Origin], now: float) -> Decision:
        listed = set(self.published) if self.published is not None else self._listed_before
        hosts: list[str] = []
        held: list[str] = []
        wake_at: float | None = None
        seen: set[str] = set()
        for origin in origins:
            if origin.host in seen:
                continue
            seen.add(origin.host)
            if origin.state is State.UP:
                self._down_since.pop(origin.host, None)
                hosts.append(origin.host)
                continue
            if origin.state is State.LEAVING or origin.host not in listed:
                self._down_since.pop(origin.host, None)
                continue
            until = self._down_since.setdefault(origin.host, now) + self.hold
            if now < until:
                hosts.append(origin.host)
                held.append(origin.host)
                wake_at = until if wake_at is None else min(wake_at, until)
        for host in list(self._down_since):
            if host not in seen:
                del self._down_since[host]
        if not hosts:
            return Decision(self.published or (), wake_at=wake_at, starved=True)
        changed = tuple(hosts) != self.published
        self.published = tuple(hosts)
        return Decision(self.published, tuple(held), wake_at, changed=changed)


def address(host: str, port: int, default_port: int) -> str:
    """`host`, or `host:port` when the port is not the one SRS assumes."""
    return host if port == default_port else f"{host}:{port}"
