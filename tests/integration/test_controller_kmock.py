"""`srs-agent controller` as a real process against kmock's Kubernetes emulator (real HTTP).

The emulator keeps no resourceVersion and honours no selector, so the controller's
conflict handling is driven with reactions that answer 409 once, and its selectors are
checked on the requests it sends. Objects carry metadata.namespace: the emulator routes
watch events by it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import aiohttp
import kmock
import pytest

from agents.kube.lease import parse_time
from tests import agentproc
from tests.agentproc import AGENT, OpsAgent
from tests.kmockapi import GONE, KmockApi, first_watch
from tests.standin.harness import free_port

pytestmark = pytest.mark.integration

NS = "default"
EDGE_CM = "srs-edge-config"
ORIGIN_CM = "srs-origin-config"
STS = "srs-origin"
SERVICE = "socs"

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
        mode            remote;   # kept: a person's comment
        origin          srs-origin-0.socs;
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
        coworkers       srs-origin-0.socs:1985;
    }
    hls {
        enabled         on;
    }
}
"""

PATHS = {
    "configmaps": f"/api/v1/namespaces/{NS}/configmaps",
    "services": f"/api/v1/namespaces/{NS}/services",
    "events": f"/api/v1/namespaces/{NS}/events",
    "statefulsets": f"/apis/apps/v1/namespaces/{NS}/statefulsets",
    "endpointslices": f"/apis/discovery.k8s.io/v1/namespaces/{NS}/endpointslices",
    "leases": f"/apis/coordination.k8s.io/v1/namespaces/{NS}/leases",
}


def endpoint(pod: str, ready: bool = True, terminating: bool = False) -> dict[str, Any]:
    return {"addresses": ["10.0.0.1"], "hostname": pod,
            "conditions": {"ready": ready and not terminating, "serving": ready,
                           "terminating": terminating},
            "targetRef": {"kind": "Pod", "name": pod, "namespace": NS}}


class Cluster(KmockApi):
    """The emulated API server, spoken to over real HTTP as a person or kubelet would."""

    def __init__(self, emulator: kmock.KubernetesEmulator, workdir: Path) -> None:
        super().__init__(emulator, workdir,
                         ("v1/configmaps", "v1/events", "v1/services", "apps/v1/statefulsets",
                          "discovery.k8s.io/v1/endpointslices",
                          "coordination.k8s.io/v1/leases"), NS)

    async def create(self, kind: str, name: str, body: dict[str, Any],
                     labels: Mapping[str, str] | None = None,
                     annotations: Mapping[str, str] | None = None) -> None:
        meta: dict[str, Any] = {"name": name, "namespace": NS, "resourceVersion": "1"}
        if labels:
            meta["labels"] = dict(labels)
        if annotations:
            meta["annotations"] = dict(annotations)
        await self.request("POST", PATHS[kind], {"metadata": meta, **body})

    async def patch(self, kind: str, name: str, body: dict[str, Any]) -> None:
        await self.request("PATCH", f"{PATHS[kind]}/{name}", body)

    async def delete(self, kind: str, name: str) -> None:
        await self.request("DELETE", f"{PATHS[kind]}/{name}")

    async def get(self, kind: str, name: str) -> dict[str, Any]:
        found: dict[str, Any] = await self.request("GET", f"{PATHS[kind]}/{name}")
        return found

    async def text(self, configmap: str) -> str:
        return str((await self.get("configmaps", configmap))["data"]["srs.conf"])

    async def events(self, reason: str | None = None, name: str | None = None
                     ) -> list[dict[str, Any]]:
        found = await self.request("GET", PATHS["events"])
        return [e for e in found["items"]
                if (reason is None or e["reason"] == reason)
                and (name is None or e["involvedObject"]["name"] == name)]

    # -- the guide's origin cluster ------------------------------------------------

    async def origin_cluster(self, replicas: int, edge: str = EDGE_CONF,
                             origin: str = ORIGIN_CONF) -> None:
        await self.create("configmaps", EDGE_CM, {"data": {"srs.conf": edge}})
        await self.create("configmaps", ORIGIN_CM, {"data": {"srs.conf": origin}})
        await self.create("services", SERVICE, {"spec": {"clusterIP": "None"}})
        await self.create("statefulsets", STS,
                          {"spec": {"serviceName": SERVICE, "replicas": replicas}})
        await self.create("endpointslices", f"{SERVICE}-x1", {
            "addressType": "IPv4", "endpoints": [],
        }, labels={"kubernetes.io/service-name": SERVICE})
        await self.pods(range(replicas))

    async def pods(self, ready: Iterable[int], unready: Iterable[int] = (),
                   terminating: Iterable[int] = ()) -> None:
        """Set the headless Service's endpoints as the EndpointSlice controller would."""
        endpoints = [endpoint(f"{STS}-{n}") for n in ready]
        endpoints += [endpoint(f"{STS}-{n}", ready=False) for n in unready]
        endpoints += [endpoint(f"{STS}-{n}", terminating=True) for n in terminating]
        await self.patch("endpointslices", f"{SERVICE}-x1", {"endpoints": endpoints})

    async def scale(self, replicas: int) -> None:
        await self.patch("statefulsets", STS, {"spec": {"replicas": replicas}})

    async def wait_text(self, configmap: str, want: Callable[[str], bool],
                        timeout: float = 10.0, controller: Controller | None = None) -> str:
        deadline = time.monotonic() + timeout
        text = ""
        while time.monotonic() < deadline:
            with contextlib.suppress(AssertionError, KeyError):
                text = await self.text(configmap)
                if want(text):
                    return text
            await asyncio.sleep(0.05)
        log = controller.log() if controller else ""
        raise AssertionError(f"{configmap} never as wanted; last:\n{text}\n{log}")

    async def wait_event(self, reason: str, name: str, timeout: float = 10.0
                         ) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = await self.events(reason, name)
            if found:
                return found
            await asyncio.sleep(0.05)
        raise AssertionError(f"no {reason} Event on {name}: {await self.events()}")

    def patches(self, configmap: str) -> list[kmock.Request]:
        return [r for r in self.emulator
                if r.method == kmock.method.PATCH and r.name == configmap
                and r.resource is not None and r.resource.plural == "configmaps"]


def origins_of(text: str) -> list[str]:
    line = next(x for x in text.splitlines() if x.strip().startswith(("origin ", "coworkers ")))
    return line.split(";")[0].split()[1:]


class Controller(OpsAgent):
    """One `srs-agent controller` process and its ops server."""

    role = "controller"

    def __init__(self, workdir: Path, cluster: Cluster, *args: str, name: str = "ctl-a",
                 defaults: bool = True) -> None:
        port = free_port()
        flags = ["--origin-statefulset", STS, "--edge-configmap", EDGE_CM,
                 "--origin-configmap", ORIGIN_CM] if defaults else []
        super().__init__(port, ["controller", "--namespace", NS, "--pod-name", name,
                                "--listen", f"127.0.0.1:{port}", "--log-format", "text",
                                "--debounce", "0.3s", *flags, *args],
                         workdir, workdir / f"controller-{name}.log", cluster.env)

    async def wait_for(self, what: str, check: Callable[[], Awaitable[bool]],
                       timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None and self.proc.returncode is None, self.log()
            with contextlib.suppress(aiohttp.ClientError):
                if await check():
                    return
            await asyncio.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}\n{self.log()}")

    async def wait_ready(self) -> None:
        async def ready() -> bool:
            return (await self.get("/readyz"))[0] == 200
        await self.wait_for("/readyz", ready)

    async def wait_log(self, text: str, count: int = 1, timeout: float = 10.0) -> None:
        async def seen() -> bool:
            return self.log().count(text) >= count
        await self.wait_for(repr(text), seen, timeout)

    async def wait_count(self, result: str, count: float) -> None:
        async def reached() -> bool:
            return await self.value("srs_controller_reconciles_total", result=result) >= count
        await self.wait_for(f"{count} {result}", reached)


def running(workdir: Path, cluster: Cluster, *args: str, name: str = "ctl-a",
            defaults: bool = True) -> AbstractAsyncContextManager[Controller]:
    return agentproc.running(Controller(workdir, cluster, *args, name=name, defaults=defaults))


@pytest.fixture
def cluster(kmock: kmock.KubernetesEmulator, tmp_path: Path) -> Cluster:
    return Cluster(kmock, tmp_path)


def hosts(n: int, *ordinals: int, port: str = "") -> list[str]:
    return [f"srs-origin-{i}.socs{port}" for i in (ordinals or range(n))]


# -- the scenarios -------------------------------------------------------------------


async def test_scale_2_3_1_keeps_both_configmaps_in_step(cluster: Cluster,
                                                         tmp_path: Path) -> None:
    await cluster.origin_cluster(replicas=2)
    async with running(tmp_path, cluster) as ctl:
        await ctl.wait_ready()
        edge = await cluster.wait_text(EDGE_CM, lambda t: origins_of(t) == hosts(2))
        origin = await cluster.wait_text(ORIGIN_CM,
                                         lambda t: origins_of(t) == hosts(2, port=":1985"))
        # Only the directive's values changed: every other byte is the person's.
        assert edge == EDGE_CONF.replace("srs-origin-0.socs;",
                                         "srs-origin-0.socs srs-origin-1.socs;")
        assert origin == ORIGIN_CONF.replace("srs-origin-0.socs:1985;",
                                             "srs-origin-0.socs:1985 srs-origin-1.socs:1985;")
        events = await cluster.wait_event("OriginsUpdated", EDGE_CM)
        assert events[0]["type"] == "Normal"
        assert events[0]["involvedObject"]["kind"] == "ConfigMap"
        assert "srs-origin-1.socs" in events[0]["message"]

        # 2 -> 3: the new pod is listed when it is ready, not before
        await cluster.scale(3)
        await cluster.pods(range(2), unready=[2])
        await asyncio.sleep(0.5)
        assert origins_of(await cluster.text(EDGE_CM)) == hosts(2)
        await cluster.pods(range(3))
        await cluster.wait_text(EDGE_CM, lambda t: origins_of(t) == hosts(3))
        await cluster.wait_text(ORIGIN_CM, lambda t: origins_of(t) == hosts(3, port=":1985"))
        assert await ctl.value("srs_controller_origins", origin_set="statefulset/srs-origin") \
            == 3

        # 3 -> 1: pods past replicas leave at once, before they even terminate
        patches = len(cluster.patches(EDGE_CM))
        await cluster.scale(1)
        await cluster.wait_text(EDGE_CM, lambda t: origins_of(t) == hosts(1))
        await cluster.wait_text(ORIGIN_CM, lambda t: origins_of(t) == hosts(1, port=":1985"))
        await cluster.pods(range(1), terminating=[1, 2])
        await asyncio.sleep(0.5)
        assert len(cluster.patches(EDGE_CM)) == patches + 1  # one write, no churn
        assert await ctl.value("srs_controller_reconciles_total", result="updated") == 6
        assert await ctl.value("srs_controller_leader") == 1
        # every write carried the resourceVersion it was based on
        assert all(r.data["metadata"]["resourceVersion"] for r in cluster.patches(EDGE_CM))


async def test_an_origin_unready_for_the_hold_leaves_and_comes_back(cluster: Cluster,
                                                                   tmp_path: Path) -> None:
    await cluster.origin_cluster(replicas=3)
    async with running(tmp_path, cluster, "--debounce", "1s") as ctl:
        await cluster.wait_text(EDGE_CM, lambda t: origins_of(t) == hosts(3))
        # a blip shorter than the hold: no write at all
        writes = len(cluster.patches(EDGE_CM))
        await cluster.pods([0, 2], unready=[1])
        await asyncio.sleep(0.1)
        await cluster.pods(range(3))
        await asyncio.sleep(1.3)
        assert len(cluster.patches(EDGE_CM)) == writes
        # unready past the hold: unlisted; ready again: listed at once
        started = time.monotonic()
        await cluster.pods([0, 2], unready=[1])
        await cluster.wait_text(EDGE_CM, lambda t: origins_of(t) == hosts(3, 0, 2))
        assert time.monotonic() - started >= 1.0
        await cluster.wait_text(ORIGIN_CM,
                                lambda t: origins_of(t) == hosts(3, 0, 2, port=":1985"))
        await cluster.pods(range(3))
        await cluster.wait_text(EDGE_CM, lambda t: origins_of(t) == hosts(3))
        # none ready: the list stays (an edge with no origin cannot pull at all)
        await cluster.pods([], unready=[0, 1, 2])
        await cluster.wait_event("NoReadyOrigins", EDGE_CM)
        assert origins_of(await cluster.text(EDGE_CM)) == hosts(3)
        assert await ctl.value("srs_controller_origins",
                               origin_set="statefulset/srs-origin") == 0


async def test_a_persons_edits_are_kept_and_a_conflict_is_retried_on_a_fresh_read(
        cluster: Cluster, tmp_path: Path) -> None:
    await cluster.origin_cluster(replicas=2)
    person = EDGE_CONF.replace("        enabled     on;\n",
                               "        enabled     on;\n        mount [vhost]/[app].flv;\n")
    seen: list[int] = []

    def conflict_once(request: kmock.Request) -> bool:
        """The first write to the edge ConfigMap loses a race against a person's edit."""
        if request.id in seen:
            return True
        if seen or request.method != kmock.method.PATCH or request.name != EDGE_CM:
            return False
        seen.append(request.id)
        # The emulator has applied the write already (it tracks every write, even one a
        # reaction answers): put the person's version in its place, as the race had it.
        stored = cluster.emulator.objects[kmock.resource("", "v1", "configmaps"), NS, EDGE_CM]
        stored.patch({"data": {"srs.conf": person}})
        return True

    cluster.emulator[conflict_once] << 409 << {
        "kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 409,
        "reason": "Conflict", "message": "the object has been modified"}
    async with running(tmp_path, cluster) as ctl:
        text = await cluster.wait_text(EDGE_CM, lambda t: origins_of(t) == hosts(2))
        assert text == person.replace("srs-origin-0.socs;",
                                      "srs-origin-0.socs srs-origin-1.socs;")
        assert await ctl.value("srs_controller_reconciles_total", result="conflict") == 1
        writes = cluster.patches(EDGE_CM)
        assert len(writes) == 2 and writes[1].data["data"]["srs.conf"] == text

        # A person edits something else later, and the origin line by hand too: their
        # change stays, the origin line is put back to what the origins are.
        hand = text.replace("max_connections     1000;", "max_connections     2000;")
        hand = hand.replace("srs-origin-0.socs srs-origin-1.socs;", "10.0.0.9;")
        await cluster.patch("configmaps", EDGE_CM, {"data": {"srs.conf": hand}})
        fixed = await cluster.wait_text(EDGE_CM, lambda t: origins_of(t) == hosts(2))
        assert fixed == text.replace("max_connections     1000;", "max_connections     2000;")


async def test_api_faults_on_write_are_retried_with_backoff(cluster: Cluster,
                                                           tmp_path: Path) -> None:
    await cluster.origin_cluster(replicas=2)
    failed: list[int] = []

    def two_faults(request: kmock.Request) -> bool:
        """The first two reads of the edge ConfigMap by name fail with 500."""
        if request.id in failed:
            return True
        if len(failed) >= 2 or request.action != kmock.action.FETCH or request.name != EDGE_CM:
            return False
        failed.append(request.id)
        return True

    cluster.emulator[two_faults] << 500 << {
        "kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 500,
        "reason": "InternalError", "message": "etcdserver: request timed out"}
    async with running(tmp_path, cluster) as ctl:
        await cluster.wait_text(ORIGIN_CM, lambda t: origins_of(t) == hosts(2, port=":1985"))
        await cluster.wait_text(EDGE_CM, lambda t: origins_of(t) == hosts(2))
        assert await ctl.value("srs_controller_reconciles_total", result="error") == 2
        assert "ConfigMap not written; will retry" in ctl.log()


async def test_a_deleted_configmap_is_waited_for_and_filled_when_back(
        cluster: Cluster, tmp_path: Path) -> None:
    await cluster.origin_cluster(replicas=2)
    async with running(tmp_path, cluster) as ctl:
        await cluster.wait_text(EDGE_CM, lambda t: origins_of(t) == hosts(2))
        await cluster.delete("configmaps", EDGE_CM)
        await ctl.wait_log("ConfigMap not found; waiting for it")
        await ctl.wait_count("missing", 1)
        # the other one is still kept
        await cluster.pods(range(2), unready=[2])
        await cluster.scale(3)
        await cluster.pods(range(3))
        await cluster.wait_text(ORIGIN_CM, lambda t: origins_of(t) == hosts(3, port=":1985"))
        await cluster.create("configmaps", EDGE_CM, {"data": {"srs.conf": EDGE_CONF}})
        await cluster.wait_text(EDGE_CM, lambda t: origins_of(t) == hosts(3))
        status, _ = await ctl.get("/healthz")
        assert status == 200


async def test_malformed_config_is_left_alone_with_an_event(cluster: Cluster,
                                                            tmp_path: Path) -> None:
    broken = EDGE_CONF.replace("enabled     on;", "enabled     on")  # ';' missing: line 14
    await cluster.origin_cluster(replicas=2, edge=broken)
    async with running(tmp_path, cluster) as ctl:
        await cluster.wait_text(ORIGIN_CM, lambda t: origins_of(t) == hosts(2, port=":1985"))
        events = await cluster.wait_event("ConfigInvalid", EDGE_CM)
        assert events[0]["type"] == "Warning"
        assert f"{EDGE_CM}/srs.conf:14:" in events[0]["message"]
        await ctl.wait_count("invalid", 1)
        assert cluster.patches(EDGE_CM) == []
        assert await cluster.text(EDGE_CM) == broken
        # fixed by a person: kept in step from then on
        await cluster.patch("configmaps", EDGE_CM, {"data": {"srs.conf": EDGE_CONF}})
        await cluster.wait_text(EDGE_CM, lambda t: origins_of(t) == hosts(2))
        assert len(await cluster.events("ConfigInvalid", EDGE_CM)) == 1  # not repeated


async def test_two_controllers_one_leader_and_a_clean_handover(cluster: Cluster,
                                                               tmp_path: Path) -> None:
    await cluster.origin_cluster(replicas=2)
    async with running(tmp_path, cluster, name="ctl-b") as b:
        await b.wait_log("leading")
        await cluster.wait_text(EDGE_CM, lambda t: origins_of(t) == hosts(2))
        a = Controller(tmp_path, cluster, name="ctl-a")
        await a.start()
        try:
            await a.wait_ready()  # a standby is ready once its watches have synced
            assert await a.value("srs_controller_leader") == 0
            await cluster.scale(3)
            await cluster.pods(range(3))
            await cluster.wait_text(EDGE_CM, lambda t: origins_of(t) == hosts(3))
            assert await a.value("srs_controller_reconciles_total", result="updated") == 0
            assert await b.value("srs_controller_reconciles_total", result="updated") == 4
            code, seconds = await b.stop()  # releases the Lease on its way out
            assert code == 0 and seconds < 5, b.log()
            assert "lease released" in b.log()
            lease = await cluster.get("leases", "srs-controller")
            assert lease["spec"]["holderIdentity"] in ("", "ctl-a")
            await a.wait_log("leading", timeout=5)
            await cluster.scale(1)
            await cluster.wait_text(EDGE_CM, lambda t: origins_of(t) == hosts(1))
            assert await a.value("srs_controller_leader") == 1
        finally:
            code, _ = await a.stop()
        assert code == 0, a.log()


async def test_relists_after_410_and_names_what_it_watches(cluster: Cluster,
                                                           tmp_path: Path) -> None:
    await cluster.origin_cluster(replicas=2)
    cluster.emulator[first_watch("endpointslices")] << GONE
    async with running(tmp_path, cluster) as ctl:
        await ctl.wait_log("watch expired (410 Gone); listing again")
        await cluster.scale(3)
        await cluster.pods(range(3))
        await cluster.wait_text(EDGE_CM, lambda t: origins_of(t) == hosts(3))
    lists = [r for r in cluster.emulator if r.action == kmock.action.LIST
             and r.resource is not None and r.resource.plural == "endpointslices"]
    assert len(lists) >= 2  # listed again after the 410
    # Named ConfigMaps are watched by name, so RBAC can name them (resourceNames).
    selectors = {r.params.get("fieldSelector") for r in cluster.emulator
                 if r.resource is not None and r.resource.plural == "configmaps"
                 and r.action in (kmock.action.LIST, kmock.action.WATCH)}
    assert selectors == {f"metadata.name={EDGE_CM}", f"metadata.name={ORIGIN_CM}"}


async def test_per_origin_services_and_clusters_found_by_label(cluster: Cluster,
                                                               tmp_path: Path) -> None:
    """The Deployment variant, and two clusters in one namespace served by one controller."""
    for n in range(3):
        name = f"srs-origin-{n}-socs"
        await cluster.create("services", name, {"spec": {}}, labels={"origins": "a"})
        await cluster.create("endpointslices", f"{name}-x", {
            "addressType": "IPv4", "endpoints": [endpoint(f"srs-origin-{n}-deploy-abc")],
        }, labels={"kubernetes.io/service-name": name})
    await cluster.create("configmaps", "a-edge", {"data": {"srs.conf": EDGE_CONF}},
                         labels={"srs-agents/role": "edge"},
                         annotations={"srs-agents/origin-selector": "origins=a"})
    await cluster.create("configmaps", "b-origin", {"data": {"srs.conf": ORIGIN_CONF}},
                         labels={"srs-agents/role": "origin"},
                         annotations={"srs-agents/origin-statefulset": "b",
                                      "srs-agents/port": "9090"})
    await cluster.create("configmaps", "unrelated", {"data": {"srs.conf": EDGE_CONF}})
    await cluster.create("services", "b", {"spec": {"clusterIP": "None"}})
    await cluster.create("statefulsets", "b", {"spec": {"serviceName": "b", "replicas": 2}})
    await cluster.create("endpointslices", "b-x", {
        "addressType": "IPv4", "endpoints": [endpoint("b-0"), endpoint("b-1")],
    }, labels={"kubernetes.io/service-name": "b"})
    async with running(tmp_path, cluster, defaults=False) as ctl:
        await cluster.wait_text("a-edge", lambda t: origins_of(t) == [
            "srs-origin-0-socs", "srs-origin-1-socs", "srs-origin-2-socs"])
        await cluster.wait_text("b-origin", lambda t: origins_of(t) == ["b-0.b:9090",
                                                                        "b-1.b:9090"])
        # a Deployment's pod replaced: the Service has no serving endpoint for a while
        await cluster.patch("endpointslices", "srs-origin-1-socs-x", {"endpoints": [
            endpoint("srs-origin-1-deploy-abc", terminating=True),
            endpoint("srs-origin-1-deploy-def", ready=False)]})
        await cluster.wait_text("a-edge", lambda t: origins_of(t) == [
            "srs-origin-0-socs", "srs-origin-2-socs"])
        await cluster.patch("endpointslices", "srs-origin-1-socs-x", {"endpoints": [
            endpoint("srs-origin-1-deploy-def")]})
        await cluster.wait_text("a-edge", lambda t: origins_of(t) == [
            "srs-origin-0-socs", "srs-origin-1-socs", "srs-origin-2-socs"])
        assert cluster.patches("unrelated") == []
        assert await ctl.value("srs_controller_origins", origin_set="selector/origins=a") == 3
    selectors = {r.params.get("labelSelector") for r in cluster.emulator
                 if r.resource is not None and r.resource.plural == "configmaps"
                 and r.action in (kmock.action.LIST, kmock.action.WATCH)}
    assert selectors == {"srs-agents/role"}


async def test_bad_flags_exit_2_naming_the_flag(tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        AGENT, "controller", "--origin-statefulset", "a", "--origin-selector", "b=c",
        stderr=subprocess.PIPE, env={"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)})
    _, err = await proc.communicate()
    assert proc.returncode == 2
    assert b"--origin-statefulset and --origin-selector" in err
    proc = await asyncio.create_subprocess_exec(
        AGENT, "controller", "--origin-statefulset", "a", "--lease-duration", "1s",
        stderr=subprocess.PIPE, env={"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)})
    _, err = await proc.communicate()
    assert proc.returncode == 2
    assert b"--lease-duration: invalid value 1s" in err


async def test_a_watch_the_server_ends_is_resumed_from_its_last_resource_version(
        cluster: Cluster, tmp_path: Path) -> None:
    """A real API server ends every watch after its timeoutSeconds (the emulator never
    does): the first EndpointSlice watch here ends after one bookmark, as one would."""
    await cluster.origin_cluster(replicas=2)
    cluster.emulator[first_watch("endpointslices")] << {
        "type": "BOOKMARK", "object": {"kind": "EndpointSlice",
                                       "apiVersion": "discovery.k8s.io/v1",
                                       "metadata": {"resourceVersion": "4242"}}}
    async with running(tmp_path, cluster) as ctl:
        await cluster.wait_text(EDGE_CM, lambda t: origins_of(t) == hosts(2))

        def slice_requests(action: kmock.action) -> list[kmock.Request]:
            return [r for r in cluster.emulator if r.action == action
                    and r.resource is not None and r.resource.plural == "endpointslices"]

        async def resumed() -> bool:
            return len(slice_requests(kmock.action.WATCH)) >= 2
        await ctl.wait_for("a second EndpointSlice watch", resumed)
        watches = slice_requests(kmock.action.WATCH)
        assert watches[0].params.get("timeoutSeconds") == "300"
        # resumed from the bookmark's resourceVersion, without listing again
        assert watches[1].params.get("resourceVersion") == "4242"
        assert len(slice_requests(kmock.action.LIST)) == 1
        assert "Kubernetes API fault" not in ctl.log()
        # and the resumed watch is followed
        await cluster.scale(3)
        await cluster.pods(range(3))
        await cluster.wait_text(EDGE_CM, lambda t: origins_of(t) == hosts(3))


async def test_a_killed_leader_is_replaced_once_its_lease_expires(cluster: Cluster,
                                                                  tmp_path: Path) -> None:
    """SIGKILL: no release. The standby waits out the Lease (15 s), then leads."""
    await cluster.origin_cluster(replicas=2)
    b = Controller(tmp_path, cluster, name="ctl-b")
    await b.start()
    assert b.proc is not None
    try:
        await b.wait_log("leading")
        await cluster.wait_text(EDGE_CM, lambda t: origins_of(t) == hosts(2))
        async with running(tmp_path, cluster, name="ctl-a") as a:
            await a.wait_ready()
            b.proc.kill()
            await b.proc.wait()
            held = await cluster.get("leases", "srs-controller")
            assert held["spec"]["holderIdentity"] == "ctl-b"
            await cluster.scale(3)
            await cluster.pods(range(3))
            await a.wait_log("leading: this replica writes", timeout=25)
            await cluster.wait_text(EDGE_CM, lambda t: origins_of(t) == hosts(3))
            await cluster.wait_text(ORIGIN_CM, lambda t: origins_of(t) == hosts(3, port=":1985"))
            lease = await cluster.get("leases", "srs-controller")
            assert lease["spec"]["holderIdentity"] == "ctl-a"
            assert lease["spec"]["leaseTransitions"] == held["spec"]["leaseTransitions"] + 1
            # taken only once the dead leader's last renewal had expired
            renewed = parse_time(held["spec"]["renewTime"])
            acquired = parse_time(lease["spec"]["acquireTime"])
            assert renewed is not None and acquired is not None
            assert acquired >= renewed + dt.timedelta(
                seconds=held["spec"]["leaseDurationSeconds"])
    finally:
        if b.proc.returncode is None:
            b.proc.kill()
            await b.proc.wait()


async def test_an_origin_down_when_the_controller_starts_is_held_too(
        cluster: Cluster, tmp_path: Path) -> None:
    """A restart must not cut the hold short: what the ConfigMaps list counts as listed."""
    listed = EDGE_CONF.replace("srs-origin-0.socs;",
                               "srs-origin-0.socs srs-origin-1.socs srs-origin-2.socs;")
    coworkers = ORIGIN_CONF.replace(
        "srs-origin-0.socs:1985;",
        "srs-origin-0.socs:1985 srs-origin-1.socs:1985 srs-origin-2.socs:1985;")
    await cluster.origin_cluster(replicas=3, edge=listed, origin=coworkers)
    await cluster.pods([0, 2], unready=[1])
    # Without a Lease the first pass already writes: nothing may be written by then.
    async with running(tmp_path, cluster, "--debounce", "1s", "--leader-elect", "false") as ctl:
        await ctl.wait_ready()
        assert cluster.patches(EDGE_CM) == [] and cluster.patches(ORIGIN_CM) == []
        assert await ctl.value("srs_controller_origins",
                               origin_set="statefulset/srs-origin") == 3
        # down past the hold: it leaves
        await cluster.wait_text(EDGE_CM, lambda t: origins_of(t) == hosts(3, 0, 2))
        await cluster.wait_text(ORIGIN_CM,
                                lambda t: origins_of(t) == hosts(3, 0, 2, port=":1985"))
