"""`srs-agent reload` as a real process against the SRS stand-in (a real process with real
signals, reloads and crashes), on a config directory the kubelet's way (tests/kubelet.py).

The stand-in runs with a 0.1 s main-loop tick (SRS: 1 s) to keep the suite fast; one
test keeps SRS's own 1 s tick.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from agents.srs import conf
from tests import agentproc
from tests.agentproc import OpsAgent
from tests.kubelet import ConfigMapVolume
from tests.standin.harness import StandIn, free_port

pytestmark = pytest.mark.integration

FAST_TICK = 0.1


class KubeletStandIn(StandIn):
    """The stand-in reading its config from a ConfigMap volume: `<workdir>/conf`, written
    by the kubelet's algorithm; `write_config` is one kubelet sync."""

    def __init__(self, workdir: Path, **kw: Any) -> None:
        super().__init__(workdir, **kw)
        self.conf_dir = self.workdir / "conf"
        self.conf_path = self.conf_dir / "srs.conf"
        self.extra_keys: dict[str, str] = {}

    async def __aenter__(self) -> KubeletStandIn:
        await self.start()
        return self

    def write_config(self, text: str) -> None:
        ConfigMapVolume(str(self.conf_dir)).update({"srs.conf": text, **self.extra_keys})

    async def relaunch(self) -> None:
        """Start again on the config on disk and the same ports (after an exit)."""
        await self.stop()
        self._output = open(self.output_path, "ab")  # noqa: SIM115 - closed by stop()
        env = {k: v for k, v in os.environ.items() if not k.startswith("SRS_")}
        self.proc = subprocess.Popen(
            self.command(), cwd=self.workdir, env=env, stdin=subprocess.DEVNULL,
            stdout=self._output, stderr=subprocess.STDOUT,
        )
        ready_before = len(self.events("ready"))
        await self.wait_event("ready", count=ready_before + 1)

    def sighups(self) -> int:
        return len([e for e in self.events("signal") if e.get("name") == "SIGHUP"])

    async def wait_state(self, state: str) -> None:
        """Until /proc says the process is in `state` (signals take effect a bit later)."""
        for _ in range(500):
            with open(f"/proc/{self.pid}/stat", "rb") as fh:
                if fh.read().rsplit(b")", 1)[1].split()[0].decode() == state:
                    return
            await asyncio.sleep(0.01)
        raise AssertionError(f"stand-in never reached state {state}")

    def sha(self) -> str:
        return conf.content_sha256(conf.load(str(self.conf_path), cwd=str(self.workdir)))


class Agent(OpsAgent):
    """One `srs-agent reload` process and its ops server."""

    def __init__(self, workdir: Path, args: list[str], env: Mapping[str, str] | None = None):
        port = free_port()
        super().__init__(port, ["reload", "--listen", f"127.0.0.1:{port}",
                                "--log-format", "text", "--srs-timeout", "0.5s", *args],
                         workdir, workdir / f"agent-{port}.log", env)

    async def wait_until(self, what: str, check: Any, timeout: float = 15.0) -> None:
        """Poll the ops server until `check(metrics)` holds (the agent may still start)."""
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            assert self.proc is not None and self.proc.returncode is None, self.log()
            with contextlib.suppress(aiohttp.ClientError):
                last = await self.metrics()
                if check(last):
                    return
            await asyncio.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}; metrics {last}\n{self.log()}")

    async def wait_count(self, result: str, count: int) -> None:
        key = ("srs_agent_reloads_total", (("result", result),))
        await self.wait_until(f"{count} {result}", lambda m: m.get(key, 0) >= count)

    async def wait_running(self, sha: str) -> None:
        key = ("srs_agent_config_info", (("sha256", sha),))
        await self.wait_until(f"SRS to run {sha[:12]}", lambda m: m.get(key) == 1)

    async def wait_ready(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(aiohttp.ClientError):
                if (await self.get("/readyz"))[0] == 200:
                    return
            await asyncio.sleep(0.05)
        raise AssertionError(f"agent not ready\n{self.log()}")

    async def wait_log(self, text: str, timeout: float = 10.0, count: int = 1) -> None:
        deadline = time.monotonic() + timeout
        while self.log().count(text) < count:
            assert time.monotonic() < deadline, f"no {text!r} in the log:\n{self.log()}"
            await asyncio.sleep(0.05)


def agent_args(srs: StandIn, conf_dir: Path, *extra: str) -> list[str]:
    # A pattern naming this test's config: other stand-ins may run on the machine.
    return [
        "--config-dir", str(conf_dir), "--srs-api", srs.api_url,
        "--srs-process", f"-c {srs.conf_path}( |$)", *extra,
    ]


def running_agent(workdir: Path, args: list[str],
                  env: Mapping[str, str] | None = None) -> AbstractAsyncContextManager[Agent]:
    return agentproc.running(Agent(workdir, args, env))


def with_fragment(srs: StandIn, fragment: float, **overrides: str) -> str:
    return srs.render(hls_fragment=str(fragment), **overrides)


async def test_each_swap_reloads_once_and_bursts_never_more(tmp_path: Path) -> None:
    async with KubeletStandIn(tmp_path, tick=FAST_TICK) as srs, \
            running_agent(tmp_path, agent_args(srs, srs.conf_dir)) as agent:
        await agent.wait_ready()
        await agent.wait_running(srs.sha())
        assert srs.sighups() == 0  # SRS read this config at its start
        for n in range(3):
            srs.write_config(with_fragment(srs, 3 + n))
            await agent.wait_count("success", n + 1)
            await agent.wait_running(srs.sha())
        assert srs.sighups() == 3
        assert len(srs.events("reload")) == 3

        for n in range(5):  # a burst of swaps
            srs.write_config(with_fragment(srs, 10 + n))
        await agent.wait_running(srs.sha())
        burst = srs.sighups() - 3
        assert 1 <= burst <= 5
        assert await agent.value("srs_agent_reloads_total", result="success") == 3 + burst
        assert await agent.value("srs_agent_config_change_to_reload_seconds_count") == 3 + burst
        assert await agent.value("srs_agent_last_reload_success_timestamp_seconds") > 0


async def test_identical_content_is_not_reloaded(tmp_path: Path) -> None:
    async with KubeletStandIn(tmp_path, tick=FAST_TICK) as srs, \
            running_agent(tmp_path, agent_args(srs, srs.conf_dir)) as agent:
        await agent.wait_ready()
        text = srs.conf_path.read_text()
        srs.extra_keys = {"README": "another key changed: a real ..data swap"}
        before = os.readlink(srs.conf_dir / "..data")
        srs.write_config(text)
        assert os.readlink(srs.conf_dir / "..data") != before
        await agent.wait_count("unchanged", 1)
        assert srs.sighups() == 0
        assert await agent.value("srs_agent_reloads_total", result="success") == 0


async def test_plain_file_rewrite_is_debounced_and_unchanged_content_skipped(
    tmp_path: Path,
) -> None:
    async with StandIn(tmp_path, tick=FAST_TICK) as srs, \
            running_agent(tmp_path, agent_args(srs, tmp_path, "--debounce", "200ms")) as agent:
        await agent.wait_ready()
        text = srs.conf_path.read_text()
        srs.write_config(text)  # same bytes
        await agent.wait_count("unchanged", 1)
        assert len([e for e in srs.events("signal") if e["name"] == "SIGHUP"]) == 0
        for n in range(4):  # an editor saving repeatedly
            srs.write_config(with_fragment(srs, 4 + n))
        await agent.wait_count("success", 1)
        sha = conf.content_sha256(conf.load(str(srs.conf_path)))
        await agent.wait_running(sha)
        assert len([e for e in srs.events("signal") if e["name"] == "SIGHUP"]) == 1


async def test_invalid_and_unreloadable_configs_never_reach_srs(tmp_path: Path) -> None:
    async with KubeletStandIn(tmp_path, tick=FAST_TICK) as srs, \
            running_agent(tmp_path, agent_args(srs, srs.conf_dir)) as agent:
        await agent.wait_ready()
        good = srs.conf_path.read_text()
        # 1. a syntax error: `hls_window` loses its ';'
        broken = good.replace("hls_window      10;", "hls_window      10", 1)
        assert broken != good
        srs.write_config(broken)
        await agent.wait_count("invalid", 1)
        problem = conf.validate_file(str(srs.conf_path), cwd=str(tmp_path))[0]
        assert problem.line > 1
        await agent.wait_log(f"{srs.conf_path}:{problem.line}:{problem.col}:")
        # 2. an unknown directive
        srs.write_config(good.replace("max_connections", "foo_unknown_directive on;\n"
                                      "max_connections", 1))
        await agent.wait_count("invalid", 2)
        await agent.wait_log("foo_unknown_directive")
        # 3. a change of the root listen (SRS 6 would abort with 134)
        srs.write_config(good.replace(f"127.0.0.1:{srs.rtmp_port};", f"127.0.0.1:{free_port()};",
                                      1))
        key = ("srs_agent_config_unreloadable", (("directive", "listen"),))
        await agent.wait_until("listen reported", lambda m: m.get(key) == 1)
        await agent.wait_log("cannot reload a change of listen")
        assert srs.sighups() == 0 and srs.alive()
        assert srs.events("crash") == []
        # the fix after the bad versions reloads, and clears the report
        srs.write_config(with_fragment(srs, 5))
        await agent.wait_count("success", 1)
        await agent.wait_running(srs.sha())
        assert await agent.value("srs_agent_config_unreloadable", directive="listen") == 0
        assert srs.sighups() == 1
        assert await agent.value("srs_agent_reloads_total", result="invalid") == 2


async def test_srs_down_at_start_then_up(tmp_path: Path) -> None:
    srs = KubeletStandIn(tmp_path, tick=FAST_TICK)
    srs.rtmp_port, srs.api_port = free_port(), free_port()
    srs.http_port, srs.exporter_port = free_port(), free_port()
    srs.write_config(srs.render())
    async with running_agent(tmp_path, agent_args(srs, srs.conf_dir)) as agent:
        await agent.wait_log("SRS is not answering")
        status, body = await agent.get("/readyz")
        assert status == 503 and "reload" in body
        try:
            await srs.relaunch()
            await agent.wait_ready()
            await agent.wait_running(srs.sha())
            assert srs.sighups() == 0  # it read the config itself
            srs.write_config(with_fragment(srs, 6))
            await agent.wait_count("success", 1)
            assert srs.sighups() == 1
        finally:
            await srs.stop()


async def test_srs_unanswering_while_changes_land_gets_one_reload(tmp_path: Path) -> None:
    async with KubeletStandIn(tmp_path, tick=FAST_TICK) as srs, \
            running_agent(tmp_path, agent_args(srs, srs.conf_dir)) as agent:
        await agent.wait_ready()
        srs.signal(signal.SIGSTOP)
        try:
            await srs.wait_state("T")  # down before the changes land
            for n in range(3):
                srs.write_config(with_fragment(srs, 3 + n))
                await asyncio.sleep(0.1)
            await agent.wait_log("SRS is not answering")
        finally:
            srs.signal(signal.SIGCONT)
        await agent.wait_running(srs.sha())
        assert srs.sighups() == 1
        assert await agent.value("srs_agent_reloads_total", result="success") == 1
        assert len(srs.events("reload")) == 1


async def test_reload_through_the_api_and_without_the_raw_api(tmp_path: Path) -> None:
    async with KubeletStandIn(tmp_path / "a", tick=FAST_TICK) as srs, running_agent(
        tmp_path, agent_args(srs, srs.conf_dir, "--reload-method", "api"),
    ) as agent:
        await agent.wait_ready()
        srs.write_config(with_fragment(srs, 4))
        await agent.wait_count("success", 1)
        assert srs.events("reload")[-1]["ok"] is True

    async with KubeletStandIn(tmp_path / "b", tick=FAST_TICK, raw_api=False) as srs, \
            running_agent(tmp_path, agent_args(srs, srs.conf_dir)) as agent:
        await agent.wait_ready()
        srs.write_config(with_fragment(srs, 4))
        await agent.wait_count("success", 1)  # confirmed by SRS staying up and answering
        await agent.wait_log("raw API is off")
        assert srs.sighups() == 1 and srs.alive()


async def test_reloads_by_someone_else_are_detected(tmp_path: Path) -> None:
    template = KubeletStandIn(tmp_path).template.replace(
        "inotify_auto_reload off;", "inotify_auto_reload on;")
    async with KubeletStandIn(tmp_path, tick=FAST_TICK, template=template) as srs, \
            running_agent(tmp_path, agent_args(srs, srs.conf_dir)) as agent:
        await agent.wait_ready()
        await agent.wait_log("SRS reloads by itself when its config changes")
        srs.signal(signal.SIGHUP)  # someone else reloads SRS
        await srs.wait_event("reload")
        srs.write_config(with_fragment(srs, 7))
        key = ("srs_agent_unexpected_reloads_total", ())
        await agent.wait_until("an unexpected reload", lambda m: m.get(key, 0) >= 1)
        await agent.wait_log("SRS was reloaded by someone else")


async def test_restart_on_unreloadable_drains_srs(tmp_path: Path) -> None:
    async with KubeletStandIn(tmp_path, tick=FAST_TICK, grace_start_wait=100,
                              grace_final_wait=100) as srs, running_agent(
        tmp_path, agent_args(srs, srs.conf_dir, "--restart-on-unreloadable")
    ) as agent:
        await agent.wait_ready()
        new_port = free_port()
        srs.write_config(srs.render().replace(f"127.0.0.1:{srs.rtmp_port};",
                                              f"127.0.0.1:{new_port};", 1))
        assert await srs.wait_exit(15) == 0  # a graceful quit, not the 134 crash
        assert srs.sighups() == 0
        assert srs.events("quit_requested")[-1]["mode"] == "graceful"
        await srs.relaunch()  # what Kubernetes does after the container exits
        await agent.wait_running(srs.sha())
        assert srs.sighups() == 0
        assert any(e.get("port") == new_port for e in srs.events("listening"))
        assert await agent.value("srs_agent_config_unreloadable", directive="listen") == 0


async def test_includes_from_the_same_volume_and_srs_tick(tmp_path: Path) -> None:
    """SRS's own 1 s tick; the config includes a second key of the same ConfigMap."""
    base = KubeletStandIn(tmp_path).template
    template = base.replace("vhost __defaultVhost__ {", "include conf/vhost.conf;\n"
                            "vhost __unused__ {", 1)
    vhost = "vhost __defaultVhost__ {\n    hls { enabled on; hls_fragment $frag; }\n}\n"
    srs = KubeletStandIn(tmp_path, template=template)
    srs.extra_keys = {"vhost.conf": vhost.replace("$frag", "2")}
    await srs.start()
    try:
        async with running_agent(tmp_path, agent_args(srs, srs.conf_dir)) as agent:
            await agent.wait_ready()
            await agent.wait_running(srs.sha())
            srs.extra_keys = {"vhost.conf": vhost.replace("$frag", "5")}
            srs.write_config(srs.render())  # only the included key changes
            await agent.wait_count("success", 1)
            await agent.wait_running(srs.sha())
            assert srs.sighups() == 1
            code, seconds = await agent.stop()
            assert code == 0
            assert seconds < 1.0  # SIGTERM: out within a second
    finally:
        await srs.stop()


async def test_invalid_config_at_start_keeps_srs_and_the_agent_ready(tmp_path: Path) -> None:
    async with KubeletStandIn(tmp_path, tick=FAST_TICK) as srs:
        srs.write_config(srs.render().replace("daemon", "no_such_directive", 1))
        async with running_agent(tmp_path, agent_args(srs, srs.conf_dir)) as agent:
            await agent.wait_count("invalid", 1)
            await agent.wait_ready()  # SRS answers on its older, valid config
            await agent.wait_log("the config on disk is invalid: SRS runs an older version")
            srs.write_config(with_fragment(srs, 8))
            await agent.wait_count("success", 1)
            assert srs.sighups() == 1
