"""edit.py and targets.py: which ConfigMaps, which vhosts, what SRS expects, every other
byte kept; configs that do not read or do not pass SRS's checks are left alone."""

from __future__ import annotations

from typing import Any

import pytest

from agents.controller.edit import (
    INVALID,
    NOT_EDITABLE,
    cluster_vhosts,
    edit_config,
    listed_hosts,
)
from agents.controller.origins import statefulset
from agents.controller.targets import (
    EDGE,
    ORIGIN,
    Defaults,
    Target,
    TargetError,
    target_of,
)
from agents.srs import conf

# The guide's edge config, with a comment and odd spacing a person might leave.
EDGE_CONF = """\
listen              1935;
max_connections     1000;
daemon              off;
http_api {
    enabled         on;
    listen          1985;
}
vhost __defaultVhost__ {
    cluster {
        mode            remote;   # pull from the origins
        origin          srs-origin-0.socs srs-origin-1.socs;
    }
    http_remux {
        enabled     on;
    }
}
"""

ORIGIN_CONF = """\
listen              1935;
http_api {
    enabled         on;
    listen          1985;
}
vhost __defaultVhost__ {
    cluster {
        origin_cluster  on;
        coworkers       srs-origin-0.socs srs-origin-1.socs;
    }
    hls {
        enabled         on;
    }
}
"""

HOSTS = ("srs-origin-0.socs", "srs-origin-1.socs", "srs-origin-2.socs")


def target(role: str = EDGE, port: int | None = None, vhosts: tuple[str, ...] = (),
           default_port: int | None = None) -> Target:
    if default_port is None:
        default_port = 1935 if role == EDGE else 1985
    return Target("cm", role, statefulset("srs-origin"), "srs.conf", port, default_port,
                  vhosts)


def test_edge_gets_the_origin_list_and_nothing_else_changes() -> None:
    result = edit_config(EDGE_CONF, target(), HOSTS, "cm/srs.conf")
    assert not result.problem and result.text is not None
    assert result.text == EDGE_CONF.replace(
        "srs-origin-0.socs srs-origin-1.socs;",
        "srs-origin-0.socs srs-origin-1.socs srs-origin-2.socs;")
    # the same list again: nothing to write
    assert edit_config(result.text, target(), HOSTS, "cm/srs.conf").text is None
    assert not edit_config(result.text, target(), HOSTS, "cm/srs.conf").problem


def test_edge_port_is_written_only_when_not_srs_default() -> None:
    result = edit_config(EDGE_CONF, target(default_port=19350), HOSTS[:1], "cm")
    assert result.text is not None and "origin          srs-origin-0.socs:19350;" in result.text
    result = edit_config(EDGE_CONF, target(port=1935, default_port=19350), HOSTS[:1], "cm")
    assert result.text is not None and "origin          srs-origin-0.socs;" in result.text


def test_edge_pulling_flv_needs_the_http_port() -> None:
    flv = EDGE_CONF.replace("mode            remote;",
                            "mode            remote;\n        protocol        flv;")
    refused = edit_config(flv, target(), HOSTS, "cm/srs.conf")
    assert refused.reason == NOT_EDITABLE and "srs-agents/port" in refused.problem
    result = edit_config(flv, target(port=8080), HOSTS[:2], "cm/srs.conf")
    assert result.text is not None
    assert "origin          srs-origin-0.socs:8080 srs-origin-1.socs:8080;" in result.text
    result = edit_config(flv, target(port=80), HOSTS[:1], "cm/srs.conf")
    assert result.text is not None and "origin          srs-origin-0.socs;" in result.text


def test_coworkers_are_http_api_host_port() -> None:
    # SRS asks http://<coworker>/api/v1/clusters: without a port that is port 80.
    result = edit_config(ORIGIN_CONF, target(ORIGIN), HOSTS, "cm/srs.conf")
    assert result.text == ORIGIN_CONF.replace(
        "coworkers       srs-origin-0.socs srs-origin-1.socs;",
        "coworkers       srs-origin-0.socs:1985 srs-origin-1.socs:1985 "
        "srs-origin-2.socs:1985;")
    result = edit_config(ORIGIN_CONF, target(ORIGIN, port=9090), HOSTS[:1], "cm")
    assert result.text is not None and "coworkers       srs-origin-0.socs:9090;" in result.text


def test_missing_coworkers_directive_is_added_in_the_cluster_block() -> None:
    text = ORIGIN_CONF.replace("        coworkers       srs-origin-0.socs srs-origin-1.socs;\n",
                               "")
    result = edit_config(text, target(ORIGIN), HOSTS[:1], "cm")
    assert result.text == ORIGIN_CONF.replace(
        "srs-origin-0.socs srs-origin-1.socs;", "srs-origin-0.socs:1985;")


def test_every_cluster_vhost_or_only_the_named_ones() -> None:
    two = EDGE_CONF + "vhost live.example.com {\n    cluster {\n        mode remote;\n" \
        "    }\n}\nvhost local.example.com {\n    cluster {\n        mode local;\n    }\n}\n"
    assert cluster_vhosts(conf.parse(two, "x"), EDGE) == ["__defaultVhost__",
                                                         "live.example.com"]
    result = edit_config(two, target(), HOSTS[:1], "cm")
    assert result.text is not None
    assert result.text.count("origin          srs-origin-0.socs;") == 1
    assert "mode remote;\n        origin srs-origin-0.socs;\n" in result.text
    only = edit_config(two, target(vhosts=("live.example.com",)), HOSTS[:1], "cm")
    assert only.text is not None and "srs-origin-1.socs" in only.text  # default vhost kept
    missing = edit_config(two, target(vhosts=("nope",)), HOSTS, "cm")
    assert missing.reason == NOT_EDITABLE and "no vhost nope" in missing.problem
    no_cluster = edit_config(two, target(vhosts=("local.example.com",)), HOSTS, "cm")
    assert no_cluster.text is not None  # it has a cluster block: the directive is added


def test_no_vhost_to_edit_is_refused() -> None:
    result = edit_config(ORIGIN_CONF, target(EDGE), HOSTS, "cm/srs.conf")
    assert result.reason == NOT_EDITABLE
    assert result.problem == ("cm/srs.conf: no vhost with cluster.mode remote (name them in "
                              "the annotation srs-agents/vhost)")
    nocluster = "listen 1935;\nvhost v {\n}\n"
    refused = edit_config(nocluster, target(vhosts=("v",)), HOSTS, "cm")
    assert refused.problem == "cm: vhost v has no cluster block"


def test_malformed_or_invalid_configs_are_left_alone() -> None:
    broken = EDGE_CONF.replace("enabled     on;", "enabled     on")
    result = edit_config(broken, target(), HOSTS, "cm/srs.conf")
    assert result.text is None and result.reason == INVALID
    assert result.problem.startswith("cm/srs.conf:14:")
    unknown = EDGE_CONF.replace("daemon              off;", "daemon off;\nfoo_bar on;")
    result = edit_config(unknown, target(), HOSTS, "cm/srs.conf")
    assert result.reason == INVALID and "illegal directive foo_bar" in result.problem
    assert edit_config(None, target(), HOSTS, "cm").reason == NOT_EDITABLE
    assert edit_config(EDGE_CONF, target(), (), "cm").problem == "cm: no origin to list"


def test_targets_from_flags_labels_and_annotations() -> None:
    defaults = Defaults(origin_statefulset="srs-origin", rtmp_port=1935, api_port=1985)

    def cm(labels: dict[str, str] | None = None, **notes: str) -> dict[str, Any]:
        return {"metadata": {"name": "c", "labels": labels or {},
                             "annotations": {f"srs-agents/{k.replace('_', '-')}": v
                                             for k, v in notes.items()}}}

    t = target_of(cm(), defaults, EDGE)
    assert (t.role, str(t.origins), t.key, t.port, t.default_port, t.vhosts) == \
        (EDGE, "statefulset/srs-origin", "srs.conf", None, 1935, ())
    t = target_of(cm({"srs-agents/role": "origin"}, origin_selector="app in (a,b)",
                     vhost="a, b", config_key="x.conf", port="9090"), defaults)
    assert (t.role, str(t.origins), t.key, t.port, t.default_port, t.vhosts) == \
        (ORIGIN, "selector/app in (a,b)", "x.conf", 9090, 1985, ("a", "b"))
    assert t.directive == "coworkers"
    for bad, message in [
        (cm({"srs-agents/role": "proxy"}), "expected edge or origin"),
        (cm({"srs-agents/role": "edge"}, port="0"), "expected a port"),
        (cm({"srs-agents/role": "edge"}, origin_statefulset="a", origin_selector="b=c"),
         "not both"),
        (cm({"srs-agents/role": "edge"}, origin_selector="a in"), "label selector"),
    ]:
        with pytest.raises(TargetError, match=message):
            target_of(bad, defaults)
    with pytest.raises(TargetError, match="no origins named"):
        target_of(cm(), Defaults(), EDGE)


def test_listed_hosts_are_read_back_without_ports() -> None:
    edge = target_of({"metadata": {"name": "e"}}, Defaults(origin_statefulset="s"), EDGE)
    origin = target_of({"metadata": {"name": "o"}}, Defaults(origin_statefulset="s"), ORIGIN)
    text = EDGE_CONF.replace("srs-origin-1.socs;", "srs-origin-1.socs:19350 [::1];")
    assert listed_hosts(text, edge) == ("srs-origin-0.socs", "srs-origin-1.socs", "[::1]")
    coworkers = edit_config(ORIGIN_CONF, origin, ["x.socs", "y.socs"], "o").text
    assert listed_hosts(coworkers, origin) == ("x.socs", "y.socs")
    assert listed_hosts("vhost {", edge) == () and listed_hosts(None, edge) == ()
