"""The Roles of the manifests against the requests the agents really make.

Each agent that talks to the Kubernetes API runs as a real process, with its container's
arguments and env from the render, against kmock's emulator (real HTTP), through one pass of
its work: the controller adds an origin (both ConfigMaps written, an Event, its Lease), the
API-mode reload seeds and follows its ConfigMap and reports an invalid version (an Event), the
cleanup runs once under its Lease. Then every request it made is checked against the Role of
its ServiceAccount as the API server's RBAC would (list and watch carry their name in a
metadata.name field selector; create has none), and every verb the Role grants must have been
used: a Role that grants more than the agent calls fails here too.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import os
import signal
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kmock
import pytest

from tests.agentproc import AgentProcess
from tests.kmockapi import KmockApi
from tests.manifests.agentcli import container_env
from tests.manifests.kustomize import Obj
from tests.manifests.objects import Pod, index, pod_template
from tests.standin.harness import free_port

pytestmark = pytest.mark.integration

NS = "default"  # what container_env gives metadata.namespace
TOKEN = "agent-token"  # marks the agents' requests apart from the test's own
RESOURCES = ("v1/configmaps", "v1/events", "v1/services", "apps/v1/statefulsets",
             "discovery.k8s.io/v1/endpointslices", "coordination.k8s.io/v1/leases")
PLURALS = {r.rsplit("/", 1)[1]: r for r in RESOURCES}
VERBS = {kmock.action.LIST: "list", kmock.action.WATCH: "watch", kmock.action.FETCH: "get",
         kmock.action.CREATE: "create", kmock.action.DELETE: "delete"}


# ---------------------------------------------------------------------------------------------
# RBAC, as the API server decides it for a namespaced Role
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Access:
    """One request as RBAC sees it."""

    verb: str
    group: str
    resource: str
    namespace: str
    name: str  # "" when the request names no object (create, or list/watch of all)

    def __str__(self) -> str:
        named = f"/{self.name}" if self.name else ""
        return f"{self.verb} {self.group or 'core'}/{self.resource}{named} in {self.namespace}"


def access_of(request: kmock.Request) -> Access | None:
    """The RBAC attributes of a request; None for a request on no resource."""
    if request.resource is None or request.action is None:
        return None
    if request.action == kmock.action.UPDATE:
        verb = "patch" if request.method == kmock.method.PATCH else "update"
    else:
        verb = VERBS[request.action]
    name = request.name or ""
    if verb in ("list", "watch"):
        # The API server takes a list's or watch's name from a metadata.name field selector.
        for term in (request.params.get("fieldSelector") or "").split(","):
            key, sep, value = term.partition("=")
            if sep and key.strip() == "metadata.name" and not value.startswith("="):
                name = value.strip()
    if verb == "create":
        name = ""  # RBAC never sees the name of an object being created
    return Access(verb, request.resource.group or "", request.resource.plural or "",
                  request.namespace or "", name)


def grants(rule: Mapping[str, Any], access: Access) -> bool:
    names = rule.get("resourceNames") or []
    return (access.group in rule.get("apiGroups", []) or "*" in rule.get("apiGroups", [])) \
        and (access.resource in rule.get("resources", []) or "*" in rule.get("resources", [])) \
        and (access.verb in rule.get("verbs", []) or "*" in rule.get("verbs", [])) \
        and (not names or access.name in names)


def granted(role: Obj) -> Iterator[tuple[int, str, str, str]]:
    """(rule index, group, resource, verb) of everything the Role grants."""
    for i, rule in enumerate(role.get("rules", [])):
        for group in rule.get("apiGroups", []):
            for resource in rule.get("resources", []):
                for verb in rule.get("verbs", []):
                    yield i, group, resource, verb


def check_role(role: Obj, accesses: Sequence[Access], namespace: str) -> list[str]:
    """What the Role refuses of these requests, and what it grants that none of them used."""
    problems = []
    rules = role.get("rules", [])
    for access in accesses:
        if access.namespace != namespace:
            problems.append(f"{access}: outside the Role's namespace {namespace}")
        elif not any(grants(rule, access) for rule in rules):
            problems.append(f"{access}: refused by Role/{role['metadata']['name']}")
    for i, group, resource, verb in granted(role):
        if not any(a.verb == verb and a.group == group and a.resource == resource
                   and grants(rules[i], a) for a in accesses):
            problems.append(f"Role/{role['metadata']['name']} rule {i} grants {verb} on "
                            f"{group or 'core'}/{resource}, which the agent never used")
    return problems


def test_rbac_model() -> None:
    """The model above on the cases that matter here."""
    role = {"metadata": {"name": "r"}, "rules": [
        {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["a"],
         "verbs": ["get", "watch"]},
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]}]}
    rules = role["rules"]
    assert isinstance(rules, list)
    assert grants(rules[0], Access("watch", "", "configmaps", NS, "a"))
    assert not grants(rules[0], Access("watch", "", "configmaps", NS, ""))  # no selector
    assert not grants(rules[0], Access("list", "", "configmaps", NS, "a"))
    assert not grants(rules[0], Access("get", "", "configmaps", NS, "b"))
    assert grants(rules[1], Access("create", "coordination.k8s.io", "leases", NS, ""))
    used = [Access("get", "", "configmaps", NS, "a"),
            Access("create", "coordination.k8s.io", "leases", NS, "")]
    assert check_role(role, used, NS) == [
        "Role/r rule 0 grants watch on core/configmaps, which the agent never used"]
    assert check_role(role, [*used, Access("get", "", "configmaps", "other", "a")], NS) == [
        "get core/configmaps/a in other: outside the Role's namespace default",
        "Role/r rule 0 grants watch on core/configmaps, which the agent never used"]


# ---------------------------------------------------------------------------------------------
# The emulated API server and the agents' processes
# ---------------------------------------------------------------------------------------------


class Api(KmockApi):
    """kmock's emulator, filled with objects as an operator (or kube-controller-manager)
    would: over real HTTP, without the agents' token."""

    def __init__(self, emulator: kmock.KubernetesEmulator, workdir: Path) -> None:
        super().__init__(emulator, workdir, RESOURCES, NS, user="agent", token=TOKEN)

    @staticmethod
    def path(kind: str, name: str = "") -> str:
        group_version = PLURALS[kind].rsplit("/", 1)[0]
        prefix = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
        return f"{prefix}/namespaces/{NS}/{kind}" + (f"/{name}" if name else "")

    async def create(self, kind: str, obj: Obj) -> None:
        body = copy.deepcopy(obj)
        body["metadata"] = {**body["metadata"], "namespace": NS, "resourceVersion": "1"}
        await self.request("POST", self.path(kind), body)

    async def patch(self, kind: str, name: str, body: Obj) -> None:
        await self.request("PATCH", self.path(kind, name), body)

    def agents_requests(self) -> list[kmock.Request]:
        return [r for r in self.emulator
                if r.headers.get("Authorization") == f"Bearer {TOKEN}"]

    def accesses(self) -> list[Access]:
        found = [access_of(r) for r in self.agents_requests()]
        outside = [str(r.url) for r, a in zip(self.agents_requests(), found, strict=True)
                   if a is None]
        assert not outside, f"requests on no resource (no Role can grant them): {outside}"
        return [a for a in found if a is not None]

    def sent(self, verb: str, kind: str, name: str = "") -> bool:
        return any(a.verb == verb and a.resource == kind and (not name or a.name == name)
                   for a in self.accesses())


class Agent(AgentProcess):
    """One `srs-agent` process started as its container would start it."""

    def __init__(self, args: Sequence[str], env: Mapping[str, str], workdir: Path,
                 name: str) -> None:
        super().__init__(args, workdir, workdir / f"{name}.log", env)

    async def wait(self, timeout: float = 30.0) -> int:
        assert self.proc is not None
        try:
            return await asyncio.wait_for(self.proc.wait(), timeout)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
            raise AssertionError(f"{self.args} did not exit\n{self.log()}") from None

    async def stop(self) -> int:
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
        return await self.wait(15.0)

    async def until(self, what: str, check: Callable[[], bool], timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            assert self.proc is not None
            if self.proc.returncode is not None or time.monotonic() > deadline:
                raise AssertionError(f"no {what} from {self.args}\n{self.log()}")
            await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def running(agent: Agent) -> AsyncIterator[Agent]:
    await agent.start()
    try:
        yield agent
    finally:
        code = await agent.stop()
        assert code == 0, f"exit {code}\n{agent.log()}"


@pytest.fixture
def api(kmock: kmock.KubernetesEmulator, tmp_path: Path) -> Api:
    return Api(kmock, tmp_path)


def workload(objs: Sequence[Obj], kind: str, name: str) -> Pod:
    obj = index(objs)[f"{kind}/{name}"]
    return Pod("", obj, *pod_template(obj))


def role_of(objs: Sequence[Obj], pod: Pod) -> Obj:
    """The one Role bound to the pod's ServiceAccount."""
    account = pod.spec.get("serviceAccountName", "default")
    roles = [o["roleRef"]["name"] for o in objs if o["kind"] == "RoleBinding"
             and any(s.get("name") == account for s in o.get("subjects", []))]
    assert len(roles) == 1, f"ServiceAccount {account} is bound to {roles}"
    return index(objs)[f"Role/{roles[0]}"]


def container(pod: Pod, name: str) -> Obj:
    found = pod.container(name)
    assert found is not None, f"{pod.workload['metadata']['name']} has no container {name}"
    return found


def agent_of(pod: Pod, name: str, api: Api, workdir: Path, *extra: str) -> Agent:
    """The container's `srs-agent` command line and env as the kubelet would start it, plus
    `extra` flags for what only a pod has (paths under /run, the ops port)."""
    c = container(pod, name)
    assert c.get("command") == ["srs-agent"], c.get("command")
    return Agent([str(a) for a in c.get("args", [])] + list(extra),
                 {**container_env(pod, c), **api.env}, workdir, name)


def endpoint_slice(service: str, pods_ready: Mapping[str, bool]) -> Obj:
    """An EndpointSlice as the EndpointSlice controller writes it for a Service."""
    return {
        "metadata": {"name": f"{service}-x1", "labels": {"kubernetes.io/service-name": service}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": [f"10.0.0.{i + 1}"], "hostname": pod,
                       "conditions": {"ready": ready, "serving": ready, "terminating": False},
                       "targetRef": {"kind": "Pod", "name": pod, "namespace": NS}}
                      for i, (pod, ready) in enumerate(pods_ready.items())],
    }


# ---------------------------------------------------------------------------------------------
# The agents
# ---------------------------------------------------------------------------------------------


async def run_controller(api: Api, objs: Sequence[Obj], workdir: Path) -> Obj:
    """The controller Deployment of a render, through one change of the origins: a fourth
    origin becomes ready, so both ConfigMaps are written and an Event made; the Lease is
    created, renewed and released on SIGTERM. Returns its Role."""
    pod = workload(objs, "Deployment", "srs-controller")
    for obj in objs:
        if obj["kind"] == "ConfigMap":
            await api.create("configmaps", obj)
        if obj["kind"] == "Service":
            await api.create("services", obj)
    sts = next((o for o in objs if o["kind"] == "StatefulSet"), None)
    if sts is not None:  # origins: the StatefulSet's pods behind its headless Service
        sts = copy.deepcopy(sts)
        sts["spec"]["replicas"] = 4
        await api.create("statefulsets", sts)
        name = sts["metadata"]["name"]
        await api.create("endpointslices", endpoint_slice(
            sts["spec"]["serviceName"], {f"{name}-{n}": True for n in range(4)}))
    else:  # origins: Services labelled as origins, one Deployment each; a fourth is added
        origin_services = [o for o in objs if o["kind"] == "Service"
                           and o["metadata"].get("labels", {}).get("srs-agents/origin")]
        assert origin_services, "no origin Service in the render"
        extra = copy.deepcopy(origin_services[-1])
        extra["metadata"]["name"] = "srs-origin-3-socs"
        await api.create("services", extra)
        for svc in [*origin_services, extra]:
            svc_name = svc["metadata"]["name"]
            await api.create("endpointslices", endpoint_slice(
                svc_name, {svc_name.replace("-socs", "-deploy-abc12"): True}))
    configmaps = [o["metadata"]["name"] for o in objs if o["kind"] == "ConfigMap"
                  and "srs.conf" in o.get("data", {})]
    assert len(configmaps) == 2, configmaps
    agent = agent_of(pod, "controller", api, workdir, "--listen", f"127.0.0.1:{free_port()}")
    async with running(agent):
        await agent.until("write of both ConfigMaps and an Event", lambda: all(
            api.sent("patch", "configmaps", n) for n in configmaps)
            and api.sent("create", "events"))
    assert api.sent("patch", "leases"), "the Lease was never renewed or released"
    return role_of(objs, pod)


@pytest.mark.parametrize("scenario", ["origin-cluster", "origin-cluster-deployments"])
async def test_controller_role_is_what_the_controller_uses(
        scenario: str, scenarios: dict[str, list[Obj]], api: Api, tmp_path: Path) -> None:
    role = await run_controller(api, scenarios[scenario], tmp_path)
    problems = check_role(role, api.accesses(), NS)
    assert not problems, "\n".join(problems)


async def test_api_mode_reload_role_is_what_reload_uses(
        scenarios: dict[str, list[Obj]], api: Api, tmp_path: Path) -> None:
    """config-init (`reload --once`) reads the ConfigMap; the sidecar follows it and makes an
    Event on the pod for an invalid version."""
    objs = scenarios["quick-start"]
    pod = workload(objs, "Deployment", "srs-deploy")
    source = pod.annotations()["srs-agents/reload-source"]
    configmap = index(objs)[f"ConfigMap/{source.removeprefix('configmap/')}"]
    await api.create("configmaps", configmap)
    conf_dir = tmp_path / "conf"
    conf_dir.mkdir()
    paths = ["--config-dir", str(conf_dir)]

    init = agent_of(pod, "config-init", api, tmp_path, *paths)
    await init.start()
    assert await init.wait() == 0, init.log()
    assert (conf_dir / "srs.conf").read_text() == configmap["data"]["srs.conf"]

    run = tmp_path / "run"
    run.mkdir()
    sidecar = agent_of(pod, "srs-agent", api, tmp_path, *paths,
                       "--listen", f"127.0.0.1:{free_port()}",
                       "--drain-done-file", str(run / "drained"),
                       "--drain-state-file", str(run / "drain.json"),
                       # This machine is not a pod: no SRS here, and none of anyone else's.
                       "--srs-process", f"^no-srs-for-{tmp_path.name}$")
    name = configmap["metadata"]["name"]
    async with running(sidecar):
        await sidecar.until("watch of the ConfigMap", lambda: api.sent("watch", "configmaps"))
        await api.patch("configmaps", name, {"data": {"srs.conf": "listen 1935;\nvhost {\n"}})
        await sidecar.until("Event for the invalid config", lambda: api.sent("create", "events"))
    problems = check_role(role_of(objs, pod), api.accesses(), NS)
    assert not problems, "\n".join(problems)


async def test_cleanup_role_is_what_cleanup_uses(
        scenarios: dict[str, list[Obj]], api: Api, tmp_path: Path) -> None:
    """One cleanup pass (the CronJob's `--once`) under the Lease (--leader-elect): created,
    held, released. The Deployment variant runs the same code under the same Role."""
    objs = scenarios["cleanup-cronjob"]
    pod = workload(objs, "CronJob", "cleanup")
    root = tmp_path / "html"
    (root / "live").mkdir(parents=True)
    old = root / "live" / "s1-1.ts"
    old.write_bytes(b"x")
    os.utime(old, (time.time() - 10 * 86400,) * 2)
    agent = agent_of(pod, "cleanup", api, tmp_path, "--roots", str(root))
    await agent.start()
    assert await agent.wait(60.0) == 0, agent.log()
    assert not old.exists(), agent.log()
    problems = check_role(role_of(objs, pod), api.accesses(), NS)
    assert not problems, "\n".join(problems)
    other = scenarios["cleanup-deployment"]
    assert role_of(other, workload(other, "Deployment", "cleanup"))["rules"] == \
        role_of(objs, pod)["rules"]
