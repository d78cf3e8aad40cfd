"""Which ConfigMaps to keep in step, and how: from the flags and the ConfigMaps' own metadata.

Pure. Two ways to name them:

- By flag: `--edge-configmap` and/or `--origin-configmap` (one cluster; RBAC can then be
  limited to those names).
- By label, when neither flag is given: every ConfigMap labelled `srs-agents/role: edge`
  or `srs-agents/role: origin` in the namespace, so one controller serves several
  clusters. A label, not an annotation, because the API server can select on labels: the
  controller never receives the namespace's other ConfigMaps.

Either way, annotations on a ConfigMap override the flags for that ConfigMap:

- `srs-agents/origin-statefulset`: the origins' StatefulSet (default
  `--origin-statefulset`), or
- `srs-agents/origin-selector`: label selector of the per-origin Services (default
  `--origin-selector`);
- `srs-agents/vhost`: vhosts to edit, comma-separated (default: on edges every vhost
  with `cluster.mode remote`, on origins every vhost with `cluster.origin_cluster on`);
- `srs-agents/config-key`: the key holding srs.conf (default `--config-key`);
- `srs-agents/port`: the port written: on edges the origins' RTMP port (their
  http_server port with `protocol flv`), in coworkers their HTTP API port (default
  `--rtmp-port`, `--api-port`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from agents.controller.origins import OriginSet, SelectorError, service_selector, statefulset

PREFIX = "srs-agents/"
ROLE_LABEL = PREFIX + "role"
STATEFULSET_ANNOTATION = PREFIX + "origin-statefulset"
SELECTOR_ANNOTATION = PREFIX + "origin-selector"
VHOST_ANNOTATION = PREFIX + "vhost"
KEY_ANNOTATION = PREFIX + "config-key"
PORT_ANNOTATION = PREFIX + "port"

EDGE = "edge"
ORIGIN = "origin"
ROLES = (EDGE, ORIGIN)
DIRECTIVE = {EDGE: "origin", ORIGIN: "coworkers"}


class TargetError(ValueError):
    """The ConfigMap's metadata does not say how to keep it; the message says what to fix."""


@dataclass(frozen=True)
class Defaults:
    """What the flags say, for ConfigMaps whose annotations do not say otherwise."""

    origin_statefulset: str = ""
    origin_selector: str = ""
    config_key: str = "srs.conf"
    rtmp_port: int = 1935
    api_port: int = 1985


@dataclass(frozen=True)
class Target:
    """One ConfigMap to keep in step with one origin set."""

    configmap: str
    role: str  # EDGE: `origin` directive; ORIGIN: `coworkers` directive
    origins: OriginSet
    key: str
    port: int | None  # from the annotation; None: `default_port` (or the protocol's)
    default_port: int  # --rtmp-port for edges, --api-port for origins
    vhosts: tuple[str, ...]  # empty: found from the config

    @property
    def directive(self) -> str:
        return DIRECTIVE[self.role]


def origin_set(statefulset_name: str, selector: str, where: str) -> OriginSet:
    """The origin set named by a StatefulSet or a selector; exactly one of them."""
    if statefulset_name and selector:
        raise TargetError(f"{where}: give an origin StatefulSet or an origin selector, "
                          "not both")
    if statefulset_name:
        return statefulset(statefulset_name)
    if selector:
        try:
            return service_selector(selector)
        except SelectorError as exc:
            raise TargetError(f"{where}: {exc}") from None
    raise TargetError(f"{where}: no origins named: annotate the ConfigMap with "
                      f"{STATEFULSET_ANNOTATION} or {SELECTOR_ANNOTATION}, or start the "
                      "controller with --origin-statefulset or --origin-selector")


def target_of(configmap: Mapping[str, Any], defaults: Defaults,
              role: str | None = None) -> Target:
    """How to keep this ConfigMap; `role` from a flag, else from its label."""
    meta = configmap.get("metadata") or {}
    name = str(meta.get("name") or "")
    labels = meta.get("labels") or {}
    notes = meta.get("annotations") or {}
    if role is None:
        role = str(labels.get(ROLE_LABEL, ""))
        if role not in ROLES:
            raise TargetError(f"label {ROLE_LABEL}={role!r}: expected edge or origin")
    sts = str(notes.get(STATEFULSET_ANNOTATION, "")).strip()
    selector = str(notes.get(SELECTOR_ANNOTATION, "")).strip()
    if sts or selector:
        origins = origin_set(sts, selector, "annotations")
    else:
        origins = origin_set(defaults.origin_statefulset, defaults.origin_selector, "flags")
    port: int | None = None
    if PORT_ANNOTATION in notes:
        text = str(notes[PORT_ANNOTATION]).strip()
        if not text.isdigit() or not 0 < int(text) <= 65535:
            raise TargetError(f"annotation {PORT_ANNOTATION}={text!r}: expected a port "
                              "from 1 to 65535")
        port = int(text)
    vhosts = tuple(v.strip() for v in str(notes.get(VHOST_ANNOTATION, "")).split(",")
                   if v.strip())
    key = str(notes.get(KEY_ANNOTATION, "")).strip() or defaults.config_key
    return Target(
        configmap=name, role=role, origins=origins, key=key, port=port,
        default_port=defaults.rtmp_port if role == EDGE else defaults.api_port,
        vhosts=vhosts,
    )
