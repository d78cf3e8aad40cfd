"""The new text of one srs.conf: its origin list set, every other byte kept.

Pure. Edges get `vhost.cluster.origin` (what SRS 4 to 6 pull from: `host[:port]`, the
port left out when it is the protocol's default: 1935 for RTMP, 80 for `protocol flv`,
443 for `protocol flvs`). Origins get `vhost.cluster.coworkers`: SRS asks each
`http://<coworker>/api/v1/clusters` where a stream is, so a coworker is the HTTP API's
`host:port`; without the port SRS would ask port 80.

A config that does not read, or does not pass SRS's own checks, is left alone: before
the edit (someone else's mistake, not ours to spread) and after it (ours, never written).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from agents.controller.origins import address
from agents.controller.targets import EDGE, VHOST_ANNOTATION, Target
from agents.errors import ConfigError
from agents.srs import conf

DEFAULT_PORTS = {"rtmp": 1935, "flv": 80, "flvs": 443}  # SRS's, by `cluster.protocol`

# Event reasons for a ConfigMap left alone.
INVALID = "ConfigInvalid"  # it does not read or fails SRS's checks, before or after
NOT_EDITABLE = "ConfigNotEditable"  # nothing to edit where the controller looks


@dataclass(frozen=True)
class Edit:
    """`text`: the new config; None with no `problem`: nothing to change."""

    text: str | None = None
    problem: str = ""
    reason: str = ""


def _cluster(vhost: conf.Directive) -> conf.Directive | None:
    cluster = vhost.get("cluster")
    return cluster if cluster is not None and cluster.children is not None else None


def cluster_vhosts(config: conf.Config, role: str) -> list[str]:
    """Edges: vhosts with `cluster.mode remote`; origins: with `cluster.origin_cluster on`."""
    found = []
    for vhost in config.vhosts():
        cluster = _cluster(vhost)
        if cluster is None:
            continue
        if role == EDGE:
            mode = cluster.get("mode")
            if mode is not None and mode.arg0 == "remote":
                found.append(vhost.arg0)
        else:
            flag = cluster.get("origin_cluster")
            if flag is not None and flag.arg0 == "on":
                found.append(vhost.arg0)
    return list(dict.fromkeys(found))


def _first_problems(problems: Sequence[conf.ConfigProblem], limit: int = 3) -> str:
    text = "; ".join(str(p) for p in problems[:limit])
    if len(problems) > limit:
        text += f"; and {len(problems) - limit} more"
    return text


def values_for(target: Target, vhost: conf.Directive, hosts: Sequence[str]) -> list[str]:
    """The arguments of the directive in this vhost; ConfigError if a port is missing."""
    if target.role != EDGE:
        port = target.port or target.default_port
        return [f"{host}:{port}" for host in hosts]
    cluster = _cluster(vhost)
    protocol_directive = cluster.get("protocol") if cluster is not None else None
    protocol = protocol_directive.arg0 if protocol_directive is not None else ""
    protocol = protocol or "rtmp"
    if protocol not in DEFAULT_PORTS:
        raise ConfigError(f"vhost {vhost.arg0}: cluster.protocol {protocol} is not one SRS "
                          "knows (rtmp, flv, flvs)")
    if protocol == "rtmp":
        port = target.port or target.default_port
    elif target.port is None:
        raise ConfigError(
            f"vhost {vhost.arg0} pulls with protocol {protocol}: set the annotation "
            "srs-agents/port to the origins' http_server port")
    else:
        port = target.port
    return [address(host, port, DEFAULT_PORTS[protocol]) for host in hosts]


def listed_hosts(text: str | None, target: Target) -> tuple[str, ...]:
    """The hosts the config lists now (ports left out); () when it does not read."""
    if text is None:
        return ()
    try:
        config = conf.parse(text, target.configmap)
    except conf.ConfigSyntaxError:
        return ()
    hosts: list[str] = []
    for name in list(target.vhosts) or cluster_vhosts(config, target.role):
        vhost = config.find_vhost(name)
        cluster = _cluster(vhost) if vhost is not None else None
        for directive in cluster.all(target.directive) if cluster is not None else ():
            for value in directive.args:
                host, colon, port = value.rpartition(":")
                hosts.append(host if colon and port.isdigit() else value)
    return tuple(dict.fromkeys(hosts))


def edit_config(text: str | None, target: Target, hosts: Sequence[str], where: str) -> Edit:
    """Set the origin list of every chosen vhost in `text` (the ConfigMap's key)."""
    if not hosts:  # SRS's round robin asserts on an empty origin list: never write one
        return Edit(problem=f"{where}: no origin to list", reason=NOT_EDITABLE)
    if text is None:
        return Edit(problem=f"{where}: no key {target.key} in the ConfigMap",
                    reason=NOT_EDITABLE)
    try:
        before = conf.parse(text, where)
    except conf.ConfigSyntaxError as exc:
        return Edit(problem=f"{exc}; not edited", reason=INVALID)
    problems = conf.check(before)
    if problems:
        return Edit(problem=f"{_first_problems(problems)}; not edited", reason=INVALID)
    names = list(target.vhosts) or cluster_vhosts(before, target.role)
    if not names:
        wanted = "cluster.mode remote" if target.role == EDGE else "cluster.origin_cluster on"
        return Edit(problem=f"{where}: no vhost with {wanted} (name them in the annotation "
                            f"{VHOST_ANNOTATION})", reason=NOT_EDITABLE)
    result = text
    for name in names:
        vhost = before.find_vhost(name)
        if vhost is None:
            return Edit(problem=f"{where}: no vhost {name}", reason=NOT_EDITABLE)
        if _cluster(vhost) is None:
            return Edit(problem=f"{where}: vhost {name} has no cluster block",
                        reason=NOT_EDITABLE)
        try:
            values = values_for(target, vhost, hosts)
            result = conf.set_directive(result, ("vhost", "cluster", target.directive),
                                        values, vhost=name)
        except ConfigError as exc:
            return Edit(problem=f"{where}: {exc}", reason=NOT_EDITABLE)
    if result == text:
        return Edit()
    try:
        after = conf.parse(result, where)
    except conf.ConfigSyntaxError as exc:  # set_directive verifies; kept as a last guard
        return Edit(problem=f"the edit would break it: {exc}; not edited", reason=INVALID)
    problems = conf.check(after)
    if problems:
        return Edit(problem=f"the edit would make it invalid: {_first_problems(problems)}; "
                            "not edited", reason=INVALID)
    return Edit(text=result)
