"""origins.py: origin lists from StatefulSets, Services and EndpointSlices; the debouncer."""

from __future__ import annotations

from typing import Any

import pytest

from agents.controller.origins import (
    Debouncer,
    Origin,
    SelectorError,
    State,
    address,
    endpoint_state,
    natural_key,
    parse_selector,
    selector_origins,
    statefulset_origins,
)

UP, DOWN, LEAVING = State.UP, State.DOWN, State.LEAVING


def sts(name: str = "srs-origin", service: str = "socs", replicas: int = 3,
        start: int | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"serviceName": service, "replicas": replicas}
    if start is not None:
        spec["ordinals"] = {"start": start}
    return {"metadata": {"name": name}, "spec": spec}


def endpoint(pod: str, *, ready: bool | None = True, serving: bool | None = None,
             terminating: bool | None = None, hostname: str | None = None,
             kind: str = "Pod") -> dict[str, Any]:
    conditions: dict[str, Any] = {}
    for key, value in (("ready", ready), ("serving", serving), ("terminating", terminating)):
        if value is not None:
            conditions[key] = value
    found: dict[str, Any] = {"addresses": ["10.0.0.1"], "conditions": conditions,
                             "targetRef": {"kind": kind, "name": pod}}
    if hostname:
        found["hostname"] = hostname
    return found


def eps(service: str, *endpoints: dict[str, Any], name: str = "") -> dict[str, Any]:
    return {"metadata": {"name": name or f"{service}-abc",
                         "labels": {"kubernetes.io/service-name": service}},
            "endpoints": list(endpoints)}


def service(name: str, **labels: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels}}


def hosts(observation: Any) -> list[tuple[str, State]]:
    return [(o.host, o.state) for o in observation.origins]


# -- endpoint conditions -----------------------------------------------------------


def test_serving_decides_and_terminating_always_leaves() -> None:
    assert endpoint_state(endpoint("p", ready=True)) is UP
    assert endpoint_state(endpoint("p", ready=False)) is DOWN
    # publishNotReadyAddresses makes `ready` true for every pod; `serving` is the pod's own
    assert endpoint_state(endpoint("p", ready=True, serving=False)) is DOWN
    assert endpoint_state(endpoint("p", ready=False, serving=True, terminating=True)) is LEAVING
    assert endpoint_state(endpoint("p", ready=None)) is UP  # unknown reads as ready (API doc)


# -- StatefulSet -------------------------------------------------------------------


def test_statefulset_origins_are_pod_dns_names_in_ordinal_order() -> None:
    slices = [
        eps("socs", endpoint("srs-origin-10"), endpoint("srs-origin-2", ready=False),
            name="a"),
        eps("socs", endpoint("srs-origin-0"), endpoint("srs-origin-1"), name="b"),
    ]
    found = statefulset_origins(sts(replicas=11), slices)
    assert hosts(found) == [
        ("srs-origin-0.socs", UP), ("srs-origin-1.socs", UP), ("srs-origin-2.socs", DOWN),
        ("srs-origin-10.socs", UP),
    ]


def test_statefulset_ignores_other_services_pods_and_kinds() -> None:
    slices = [
        eps("socs", endpoint("srs-origin-0"), endpoint("srs-origin-x"),
            endpoint("srs-origin-1-0"), endpoint("other-0"), endpoint("srs-origin-1", kind="X")),
        eps("srs-edge", endpoint("srs-origin-1")),
    ]
    assert hosts(statefulset_origins(sts(), slices)) == [("srs-origin-0.socs", UP)]


def test_statefulset_scale_down_and_terminating_pods_leave_at_once() -> None:
    slices = [eps("socs", endpoint("srs-origin-0"), endpoint("srs-origin-1", terminating=True),
                  endpoint("srs-origin-2"))]
    assert hosts(statefulset_origins(sts(replicas=2), slices)) == [
        ("srs-origin-0.socs", UP), ("srs-origin-1.socs", LEAVING),
        ("srs-origin-2.socs", LEAVING),  # past spec.replicas: being scaled away
    ]


def test_statefulset_ordinals_start_and_endpoint_hostname() -> None:
    slices = [eps("socs", endpoint("srs-origin-0"), endpoint("srs-origin-1", hostname="h1"))]
    assert hosts(statefulset_origins(sts(replicas=1, start=1), slices)) == [
        ("srs-origin-0.socs", LEAVING), ("h1.socs", UP)]


def test_dual_stack_endpoints_of_one_pod_merge_to_the_better_state() -> None:
    slices = [eps("socs", endpoint("srs-origin-0", ready=False), name="v4"),
              eps("socs", endpoint("srs-origin-0"), name="v6")]
    assert hosts(statefulset_origins(sts(), slices)) == [("srs-origin-0.socs", UP)]


def test_statefulset_problems_are_reported_not_guessed() -> None:
    assert statefulset_origins(None, []).problem == "StatefulSet not found"
    assert "serviceName" in statefulset_origins(sts(service=""), []).problem


# -- selectors and per-origin Services ---------------------------------------------


def test_label_selector_syntax() -> None:
    s = parse_selector("app=srs, tier in (origin, core),!canary,zone, env!=dev")
    assert s.matches({"app": "srs", "tier": "core", "zone": "a", "env": "prod"})
    assert not s.matches({"app": "srs", "tier": "core", "zone": "a", "canary": "1"})
    assert not s.matches({"app": "srs", "tier": "edge", "zone": "a"})
    assert not s.matches({"app": "srs", "tier": "core"})
    assert not s.matches({"app": "srs", "tier": "core", "zone": "a", "env": "dev"})
    assert parse_selector("srs-agents/origin==true").matches({"srs-agents/origin": "true"})
    assert parse_selector("a notin (x)").matches({})
    for bad in ("", "app=", "app in ()", "=x", "app=a b", "a in (x"):
        if bad == "app=":  # an empty value is legal: the label is present and empty
            assert parse_selector(bad).matches({"app": ""})
            continue
        with pytest.raises(SelectorError):
            parse_selector(bad)


def test_selector_origins_are_services_in_natural_order() -> None:
    services = [service(f"srs-origin-{n}-socs", origin="true") for n in (10, 2, 1)]
    services.append(service("srs-edge", origin="false"))
    slices = [
        eps("srs-origin-1-socs", endpoint("d1")),
        eps("srs-origin-2-socs", endpoint("d2a", terminating=True, serving=True),
            endpoint("d2b", ready=False)),  # a rollout: the old pod leaves, the new one starts
        eps("srs-edge", endpoint("e")),
    ]
    found = selector_origins(parse_selector("origin=true"), services, slices)
    assert hosts(found) == [("srs-origin-1-socs", UP), ("srs-origin-2-socs", DOWN),
                            ("srs-origin-10-socs", DOWN)]  # no endpoints yet: down, not gone
    assert natural_key("a-2") < natural_key("a-10")


# -- the debouncer -----------------------------------------------------------------


def o(host: str, state: State = UP) -> Origin:
    return Origin(host, state)


def test_up_origins_are_listed_at_once_in_the_given_order() -> None:
    d = Debouncer(hold=2.0)
    first = d.update([o("a"), o("b")], now=0.0)
    assert first.hosts == ("a", "b") and first.changed and first.wake_at is None
    again = d.update([o("a"), o("b")], now=0.1)
    assert again.hosts == ("a", "b") and not again.changed
    grown = d.update([o("a"), o("b"), o("c")], now=0.2)
    assert grown.hosts == ("a", "b", "c") and grown.changed


def test_a_down_origin_stays_listed_for_the_hold_then_leaves() -> None:
    d = Debouncer(hold=2.0)
    d.update([o("a"), o("b")], now=0.0)
    held = d.update([o("a"), o("b", DOWN)], now=10.0)
    assert held.hosts == ("a", "b") and held.held == ("b",) and held.wake_at == 12.0
    assert not held.changed
    still = d.update([o("a"), o("b", DOWN)], now=11.9)
    assert still.hosts == ("a", "b") and still.wake_at == 12.0  # the hold counts from 10.0
    gone = d.update([o("a"), o("b", DOWN)], now=12.0)
    assert gone.hosts == ("a",) and gone.changed and gone.wake_at is None
    back = d.update([o("a"), o("b")], now=13.0)
    assert back.hosts == ("a", "b") and back.changed  # back up: listed at once


def test_flapping_shorter_than_the_hold_changes_nothing() -> None:
    d = Debouncer(hold=2.0)
    d.update([o("a"), o("b")], now=0.0)
    now, changes = 0.0, 0
    for _ in range(20):
        now += 0.5
        changes += d.update([o("a"), o("b", DOWN)], now).changed
        now += 0.5
        changes += d.update([o("a"), o("b")], now).changed
    assert changes == 0


def test_terminating_and_vanished_origins_leave_at_once() -> None:
    d = Debouncer(hold=60.0)
    d.update([o("a"), o("b"), o("c")], now=0.0)
    assert d.update([o("a"), o("b", LEAVING), o("c")], now=1.0).hosts == ("a", "c")
    assert d.update([o("a")], now=2.0).hosts == ("a",)


def test_a_never_listed_down_origin_is_not_listed() -> None:
    d = Debouncer(hold=2.0)
    assert d.update([o("a"), o("b", DOWN)], now=0.0).hosts == ("a",)


def test_the_list_never_becomes_empty() -> None:
    d = Debouncer(hold=1.0)
    d.update([o("a"), o("b")], now=0.0)
    starved = d.update([o("a", LEAVING), o("b", LEAVING)], now=1.0)
    assert starved.starved and starved.hosts == ("a", "b") and not starved.changed
    assert d.update([], now=2.0).starved
    assert Debouncer(1.0).update([o("x", DOWN)], now=0.0) == \
        Debouncer(1.0).update([], now=0.0)  # nothing ever listed: starved with ()
    recovered = d.update([o("b")], now=3.0)
    assert recovered.hosts == ("b",) and recovered.changed and not recovered.starved


def test_duplicate_hosts_count_once() -> None:
    assert Debouncer(1.0).update([o("a"), o("a", DOWN)], now=0.0).hosts == ("a",)


def test_address_leaves_out_the_default_port() -> None:
    assert address("srs-origin-0.socs", 1935, 1935) == "srs-origin-0.socs"
    assert address("srs-origin-0.socs", 19350, 1935) == "srs-origin-0.socs:19350"


def test_what_the_configs_list_already_counts_as_listed() -> None:
    """A restart does not cut a hold short, nor list a down origin the configs never had."""
    d = Debouncer(hold=2.0, listed=["a", "b", "10.0.0.9"])
    first = d.update([o("a"), o("b", DOWN), o("c", DOWN)], now=5.0)
    assert first.hosts == ("a", "b") and first.held == ("b",) and first.wake_at == 7.0
    assert d.update([o("a"), o("b", DOWN), o("c", DOWN)], now=7.0).hosts == ("a",)
    # once something was published, that is what counts
    assert d.update([o("a"), o("b", DOWN)], now=8.0).hosts == ("a",)
