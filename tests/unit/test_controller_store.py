"""The watch store (what a list and the watch events since say) and the controller's flags."""

from __future__ import annotations

from typing import Any

import pytest

from agents.controller.command import plan
from agents.errors import ConfigError
from agents.kube.watch import Changed, Listed, Store
from agents.settings import ControllerSettings


def obj(name: str, **labels: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels}}


def test_a_list_replaces_everything_and_events_update_it() -> None:
    store = Store("x")
    assert not store.synced
    assert store.apply(Listed([obj("a"), obj("b")]))
    assert store.synced and sorted(store.objects) == ["a", "b"]
    assert not store.apply(Listed([obj("a"), obj("b")]))  # nothing new
    assert store.apply(Changed("MODIFIED", obj("a", x="1")))
    assert not store.apply(Changed("MODIFIED", obj("a", x="1")))  # the same again
    assert store.apply(Changed("DELETED", obj("b")))
    assert not store.apply(Changed("DELETED", obj("b")))
    # after a 410 the new list drops what was deleted meanwhile
    assert store.apply(Changed("ADDED", obj("c")))
    assert store.apply(Listed([obj("c")]))
    assert list(store.objects) == ["c"]
    assert not store.apply(Changed("ADDED", {"metadata": {}}))  # no name: ignored


def test_the_store_filters_what_the_server_should_have() -> None:
    store = Store("x", accept=lambda o: o["metadata"]["labels"].get("role") == "edge")
    store.apply(Listed([obj("a", role="edge"), obj("b")]))
    assert list(store.objects) == ["a"]
    assert not store.apply(Changed("ADDED", obj("c")))
    assert store.apply(Changed("MODIFIED", obj("a")))  # the label went: it leaves
    assert store.objects == {}


def settings(**values: Any) -> ControllerSettings:
    return ControllerSettings(**values)


def test_flags_are_checked_together() -> None:
    defaults, named = plan(settings(origin_statefulset="srs-origin",
                                    edge_configmap="e", origin_configmap="o", rtmp_port=19350))
    assert named == {"e": "edge", "o": "origin"}
    assert defaults.origin_statefulset == "srs-origin" and defaults.rtmp_port == 19350
    assert plan(settings())[1] == {}  # no names: ConfigMaps are found by label
    for bad, message in [
        ({"origin_statefulset": "a", "origin_selector": "b=c"}, "give one of them"),
        ({"origin_selector": "a in"}, "--origin-selector"),
        ({"edge_configmap": "x", "origin_configmap": "x"}, "the same ConfigMap"),
        ({"config_key": " "}, "--config-key"),
    ]:
        with pytest.raises(ConfigError, match=message):
            plan(settings(**bad))
