"""Walking rendered objects: workloads, their pods and containers, effective settings."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tests.manifests.kustomize import Obj

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob")
SRS_IMAGE = re.compile(r"(^|/)ossrs/srs[:@]")
AGENT_IMAGES = re.compile(r"(^|/)srs-agents/srs-(agent|cleanup)[:@]")
POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
# The SRS container's preStop: wait for the drain's done file, at most BOUND seconds of
# /proc/uptime (monotonic, read by the shell's builtin `read`: no process per tick).
SRS_WAIT = re.compile(
    r'read t _ </proc/uptime; end=\$\(\(\$\{t%\.\*\} \+ (?P<bound>\d+)\)\); '
    r'until \[ -e (?P<file>/\S+) \]; do '
    r'read t _ </proc/uptime; \[ "\$\{t%\.\*\}" -ge "\$end" \] && break; '
    r'sleep 0\.2; done')


@dataclass(frozen=True)
class Pod:
    """A workload's pod template, with where it came from."""

    scenario: str
    workload: Obj
    meta: Obj
    spec: Obj

    @property
    def where(self) -> str:
        return f"{self.scenario}: {self.workload['kind']}/{self.workload['metadata']['name']}"

    def containers(self, init: bool = True) -> list[Obj]:
        inits = list(self.spec.get("initContainers", [])) if init else []
        return inits + list(self.spec.get("containers", []))

    def container(self, name: str) -> Obj | None:
        return next((c for c in self.containers() if c["name"] == name), None)

    def srs_containers(self) -> list[Obj]:
        return [c for c in self.containers() if SRS_IMAGE.search(c.get("image", ""))]

    def volume(self, name: str) -> Obj | None:
        return next((v for v in self.spec.get("volumes", []) if v["name"] == name), None)

    def annotations(self) -> Mapping[str, str]:
        return self.meta.get("annotations", {}) or {}


def key(obj: Obj) -> str:
    return f"{obj['kind']}/{obj['metadata']['name']}"


def index(objs: Sequence[Obj]) -> dict[str, Obj]:
    return {key(o): o for o in objs}


def pod_template(obj: Obj) -> tuple[Obj, Obj]:
    spec = obj.get("spec", {})
    if obj["kind"] == "CronJob":
        spec = spec.get("jobTemplate", {}).get("spec", {})
    template = spec.get("template", {})
    return template.get("metadata", {}) or {}, template.get("spec", {}) or {}


def pods(renders: Mapping[str, Sequence[Obj]]) -> Iterator[Pod]:
    for scenario, objs in renders.items():
        for obj in objs:
            if obj["kind"] in WORKLOAD_KINDS:
                meta, spec = pod_template(obj)
                yield Pod(scenario, obj, meta, spec)


def prestop(container: Obj) -> list[str]:
    return [str(a) for a in
            container.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])]


def env_value(container: Obj, name: str) -> str | None:
    for item in container.get("env", []):
        if item["name"] == name:
            return str(item.get("value", ""))
    return None


def effective(pod: Pod, container: Obj, field: str) -> Any:
    """A securityContext field as the kubelet applies it: the container's, else the pod's."""
    value = (container.get("securityContext") or {}).get(field)
    if value is None:
        value = (pod.spec.get("securityContext") or {}).get(field)
    return value


def selects(selector: Mapping[str, str], workload: Obj) -> bool:
    """Does a Service selector pick this workload's pods? StatefulSet pods also carry
    statefulset.kubernetes.io/pod-name=<name>-<ordinal> at run time."""
    if not selector:
        return False
    labels = dict(pod_template(workload)[0].get("labels", {}))
    wanted = dict(selector)
    pod_name = wanted.pop(POD_NAME_LABEL, None)
    if pod_name is not None:
        name = workload["metadata"]["name"]
        if workload["kind"] != "StatefulSet" or not pod_name.startswith(name + "-"):
            return False
        ordinal = pod_name[len(name) + 1:]
        replicas = int(workload.get("spec", {}).get("replicas", 1))
        if not ordinal.isdigit() or int(ordinal) >= replicas:
            return False
    return all(labels.get(k) == v for k, v in wanted.items())
