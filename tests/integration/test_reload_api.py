"""API mode (`--source configmap/NAME`) against kmock's Kubernetes emulator: `--once` as
the init step, then updates, a 410 Gone relist, and a ConfigMap deleted and recreated;
Events on the pod for invalid configs. The agent and the stand-in are real processes."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import kmock
import pytest

from tests.agentproc import AGENT
from tests.integration.test_reload_agent import (
    FAST_TICK,
    Agent,
    agent_args,
    running_agent,
)
from tests.kmockapi import GONE, KmockApi, first_watch
from tests.standin.harness import StandIn, free_port

pytestmark = pytest.mark.integration

NAME = "srs-conf"
NAMESPACE = "default"
PATH = f"/api/v1/namespaces/{NAMESPACE}/configmaps"


class Cluster(KmockApi):
    """The emulated API server, spoken to over real HTTP."""

    def __init__(self, emulator: kmock.KubernetesEmulator, tmp_path: Path) -> None:
        super().__init__(emulator, tmp_path, ("v1/configmaps", "v1/events"), NAMESPACE)

    async def create(self, data: dict[str, str]) -> None:
        await self.request("POST", PATH, {
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": NAME, "namespace": NAMESPACE}, "data": data,
        })

    async def patch(self, data: dict[str, str]) -> float:
        """PATCH the ConfigMap; the monotonic time it was sent."""
        sent = time.monotonic()
        await self.request("PATCH", f"{PATH}/{NAME}", {"data": data})
        return sent

    async def delete(self) -> None:
        await self.request("DELETE", f"{PATH}/{NAME}")

    async def events(self) -> list[dict[str, Any]]:
        found = await self.request("GET", f"/api/v1/namespaces/{NAMESPACE}/events")
        return list(found["items"])


@pytest.fixture
def cluster(kmock: kmock.KubernetesEmulator, tmp_path: Path) -> Cluster:
    return Cluster(kmock, tmp_path)


async def run_once(cluster: Cluster, conf_dir: Path, cwd: Path) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        AGENT, "reload", "--once", "--source", f"configmap/{NAME}", "--config-dir",
        str(conf_dir), "--log-format", "text", stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, env={**os.environ, **cluster.env}, cwd=cwd,
    )
    out, _ = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace")


class EmptyDirStandIn(StandIn):
    """The stand-in reading `<workdir>/conf/srs.conf`, a directory the agent writes."""

    def __init__(self, workdir: Path, **kw: Any) -> None:
        super().__init__(workdir, **kw)
        self.conf_dir = self.workdir / "conf"
        self.conf_path = self.conf_dir / "srs.conf"

    def write_config(self, text: str) -> None:
        """Nothing: the ConfigMap carries the config and the agent writes it."""

    def sighups(self) -> int:
        return len([e for e in self.events("signal") if e.get("name") == "SIGHUP"])


async def test_once_writes_a_valid_configmap_and_refuses_an_invalid_one(
    cluster: Cluster, tmp_path: Path,
) -> None:
    conf_dir = tmp_path / "conf"
    conf_dir.mkdir()
    await cluster.create({"srs.conf": "listen 1935;\nvhost __defaultVhost__ {\n  hls {\n"
                                      "    enabled on\n  }\n}\n"})  # ';' missing on line 4
    code, out = await run_once(cluster, conf_dir, tmp_path)
    assert code == 1, out
    assert f"{conf_dir}/srs.conf:4:" in out
    assert os.listdir(conf_dir) == []  # nothing written

    await cluster.patch({"srs.conf": "include conf/vhost.conf;\nlisten 1935;\n",
                         "vhost.conf": "vhost __defaultVhost__ { }\n"})
    code, out = await run_once(cluster, conf_dir, tmp_path)
    assert code == 0, out
    assert os.readlink(conf_dir / "srs.conf") == "..data/srs.conf"
    assert (conf_dir / "vhost.conf").read_text() == "vhost __defaultVhost__ { }\n"
    assert os.readlink(conf_dir / "..data").startswith("..")


async def test_api_mode_follows_the_configmap(cluster: Cluster, tmp_path: Path) -> None:
    srs = EmptyDirStandIn(tmp_path, tick=FAST_TICK)
    srs.conf_dir.mkdir(parents=True)
    # Render the stand-in's config on its ports, put it in the ConfigMap, run the init step.
    srs.rtmp_port, srs.api_port = free_port(), free_port()
    srs.http_port, srs.exporter_port = free_port(), free_port()
    await cluster.create({"srs.conf": srs.render()})
    # The first watch ends with 410 Gone: the agent must list again and carry on.
    cluster.emulator[first_watch()] << GONE
    code, out = await run_once(cluster, srs.conf_dir, tmp_path)
    assert code == 0, out
    await relaunch(srs)
    args = agent_args(srs, srs.conf_dir, "--source", f"configmap/{NAME}",
                      "--pod-name", "srs-0")
    try:
        async with running_agent(tmp_path, args, cluster.env) as agent:
            await agent.wait_ready()
            assert srs.sighups() == 0
            await agent.wait_log("watch expired (410 Gone); reading the ConfigMap again")
            await agent.wait_log("read ConfigMap", count=2)  # and read it again

            # an update: written as the kubelet would, gated, reloaded
            await cluster.patch({"srs.conf": srs.render(hls_fragment="4")})
            await agent.wait_count("success", 1)
            assert srs.sighups() == 1
            assert os.readlink(srs.conf_dir / "srs.conf") == "..data/srs.conf"

            # an invalid update: not reloaded, an Event on the pod, and never left on SRS's
            # config path (an SRS restart meanwhile still starts on the last good config)
            good = (srs.conf_dir / "srs.conf").read_text()
            await cluster.patch({"srs.conf": srs.render(hls_fragment="4;;")})
            await agent.wait_count("invalid", 1)
            await wait_for_event(cluster, "ConfigInvalid", agent)
            assert (srs.conf_dir / "srs.conf").read_text() == good
            assert len([p for p in os.listdir(srs.conf_dir) if p.startswith("..2")]) == 1
            assert srs.sighups() == 1

            # deleted: the files stay, SRS keeps running; recreated: reloaded
            await cluster.delete()
            await agent.wait_log("ConfigMap deleted")
            assert (srs.conf_dir / "srs.conf").exists()
            await cluster.create({"srs.conf": srs.render(hls_fragment="6")})
            await agent.wait_count("success", 2)
            assert srs.sighups() == 2 and srs.alive()
            code, seconds = await agent.stop()
            assert code == 0 and seconds < 1.0  # the watch thread does not hold it up
    finally:
        await srs.stop()


async def relaunch(srs: EmptyDirStandIn) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SRS_")}
    srs.html_dir.mkdir(parents=True, exist_ok=True)
    srs._output = open(srs.output_path, "ab")  # noqa: SIM115 - closed by stop()
    srs.proc = subprocess.Popen(srs.command(), cwd=srs.workdir, env=env,
                                stdin=subprocess.DEVNULL, stdout=srs._output,
                                stderr=subprocess.STDOUT)
    await srs.wait_event("ready")


async def wait_for_event(cluster: Cluster, reason: str, agent: Agent) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for event in await cluster.events():
            if event.get("reason") == reason:
                assert event["involvedObject"] == {
                    "apiVersion": "v1", "kind": "Pod", "name": "srs-0", "namespace": NAMESPACE}
                assert "srs.conf:" in event["message"]
                return
        await asyncio.sleep(0.05)
    raise AssertionError(f"no Event {reason}\n{agent.log()}")


async def test_each_refused_version_counts_once(cluster: Cluster, tmp_path: Path) -> None:
    """An invalid version, and one without the config's key, are each one `invalid`, also
    when a relist after 410 Gone delivers the same version again; taking a version back
    off the config directory is no change (nothing `unchanged`)."""
    srs = EmptyDirStandIn(tmp_path, tick=FAST_TICK)
    srs.conf_dir.mkdir(parents=True)
    srs.rtmp_port, srs.api_port = free_port(), free_port()
    srs.http_port, srs.exporter_port = free_port(), free_port()
    await cluster.create({"srs.conf": srs.render()})
    code, out = await run_once(cluster, srs.conf_dir, tmp_path)
    assert code == 0, out
    await relaunch(srs)
    good = (srs.conf_dir / "srs.conf").read_text()
    await cluster.patch({"srs.conf": srs.render(hls_fragment="4;;")})  # before the agent
    cluster.emulator[first_watch()] << GONE
    args = agent_args(srs, srs.conf_dir, "--source", f"configmap/{NAME}",
                      "--pod-name", "srs-0")
    try:
        async with running_agent(tmp_path, args, cluster.env) as agent:
            await agent.wait_ready()
            await agent.wait_log("read ConfigMap", count=2)  # the relist after 410
            await agent.wait_count("invalid", 1)
            await wait_for_event(cluster, "ConfigInvalid", agent)
            assert (srs.conf_dir / "srs.conf").read_text() == good
            await cluster.request("PATCH", f"{PATH}/{NAME}",  # no key srs.conf
                                  {"data": {"srs.conf": None, "other": "x"}})
            await agent.wait_count("invalid", 2)
            await agent.wait_log(f"ConfigMap {NAMESPACE}/{NAME} has no key srs.conf "
                                 "(keys: other)")
            await cluster.patch({"srs.conf": srs.render(hls_fragment="5")})
            await agent.wait_count("success", 1)
            assert srs.sighups() == 1
            metrics = await agent.metrics()
            assert metrics[("srs_agent_reloads_total", (("result", "invalid"),))] == 2
            assert metrics[("srs_agent_reloads_total", (("result", "unchanged"),))] == 0
    finally:
        await srs.stop()
