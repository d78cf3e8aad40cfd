"""`srs-agent reload` when a reload does not work out: SRS exits after the signal, SRS
reads a newer (invalid) version than the one checked and rejects it, SRS restarts where
/proc does not show it. Real processes: the agent and the SRS stand-in.

SRS applies a signalled reload only at its next main-loop tick; these tests use that
to put a change on disk between the agent's SIGHUP and SRS's reading of the file (the
stand-in's `signal` event tells when the SIGHUP arrived; its tick is long enough for
the test's next write to land first).
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.integration.test_reload_agent import (
    KubeletStandIn,
    agent_args,
    running_agent,
    with_fragment,
)
from tests.standin.harness import free_port

pytestmark = pytest.mark.integration

NEVER = 3600.0  # a stand-in tick that does not come within a test


async def test_srs_exiting_after_the_reload_is_a_failure_then_its_restart_is_followed(
    tmp_path: Path,
) -> None:
    async with KubeletStandIn(tmp_path, tick=NEVER) as srs, \
            running_agent(tmp_path, agent_args(srs, srs.conf_dir)) as agent:
        await agent.wait_ready()
        srs.write_config(with_fragment(srs, 4))
        await srs.wait_event("signal", name="SIGHUP")
        srs.signal(signal.SIGKILL)  # SRS dies before its tick applies the reload
        await agent.wait_log("SRS exited after the reload")
        await agent.wait_count("failure", 1)
        assert await agent.value("srs_agent_reloads_total", result="success") == 0
        await agent.wait_log("SRS is not answering")

        await srs.relaunch()  # what Kubernetes does: SRS starts on the config on disk
        await agent.wait_running(srs.sha())
        await agent.wait_log("SRS restarted; it read its config from disk at start")
        assert srs.sighups() == 1  # the new SRS is not signalled: it read the file itself
        assert await agent.value("srs_agent_reloads_total", result="success") == 0
        assert await agent.value("srs_agent_reloads_total", result="failure") == 1


async def test_srs_rejecting_a_newer_version_does_not_block_the_one_checked(
    tmp_path: Path,
) -> None:
    """SIGHUP for a valid version, then an invalid one lands before SRS's tick: SRS reads
    and rejects the invalid one. The valid version was never refused, so going back to
    it reloads SRS."""
    async with KubeletStandIn(tmp_path, tick=1.5) as srs, \
            running_agent(tmp_path, agent_args(srs, srs.conf_dir)) as agent:
        await agent.wait_ready()
        srs.write_config(with_fragment(srs, 3))
        await srs.wait_event("reload")  # a tick just passed: the next is 1.5 s away
        await agent.wait_count("success", 1)
        checked = with_fragment(srs, 4)
        srs.write_config(checked)
        await srs.wait_event("signal", count=2, name="SIGHUP")
        srs.write_config(checked.replace("hls_window", "hls_window;", 1))  # invalid
        rejected = await srs.wait_event("reload", count=2)
        assert rejected["ok"] is False and rejected["err"] != 0

        await agent.wait_log("SRS rejected the reload and keeps its old config")
        await agent.wait_count("failure", 1)
        await agent.wait_count("invalid", 1)  # the newer version, seen by the gate
        assert srs.sighups() == 2

        srs.write_config(checked)  # back to the version the agent checked
        await agent.wait_count("success", 2)
        await agent.wait_running(srs.sha())
        assert srs.sighups() == 3
        assert srs.events("reload")[-1]["ok"] is True


async def test_api_reload_without_the_pid_namespace_follows_an_srs_restart(
    tmp_path: Path,
) -> None:
    """--reload-method api where /proc does not show SRS: a restart is seen through the
    API's per-start service id, and what the new SRS runs is taken from its uptime."""
    async with KubeletStandIn(tmp_path, tick=0.1) as srs, running_agent(
        tmp_path, agent_args(srs, srs.conf_dir, "--reload-method", "api",
                             "--srs-process", f"no process is called {tmp_path}"),
    ) as agent:
        await agent.wait_ready()
        srs.rtmp_port = free_port()
        srs.write_config(srs.render())  # a root listen change: not reloadable
        key = ("srs_agent_config_unreloadable", (("directive", "listen"),))
        await agent.wait_until("listen reported", lambda m: m.get(key) == 1)

        await srs.relaunch()  # SRS restarts on the new listen
        srs.write_config(with_fragment(srs, 5))  # then an ordinary change
        await agent.wait_count("success", 1)
        await agent.wait_running(srs.sha())
        await agent.wait_log("SRS restarted; it read its config from disk at start")
        assert await agent.value("srs_agent_config_unreloadable", directive="listen") == 0
        assert srs.events("reload")[-1]["ok"] is True
        assert srs.sighups() == 0  # every reload went through the API


async def test_an_srs_restart_is_followed_without_waiting_for_a_change(tmp_path: Path) -> None:
    """A reported unreloadable change is what a restarted SRS runs: the report and the
    config info follow the restart itself (SRS's exit is watched, not polled)."""
    async with KubeletStandIn(tmp_path, tick=0.1) as srs, \
            running_agent(tmp_path, agent_args(srs, srs.conf_dir)) as agent:
        await agent.wait_ready()
        srs.rtmp_port = free_port()
        srs.write_config(srs.render())  # a root listen change: not reloadable
        key = ("srs_agent_config_unreloadable", (("directive", "listen"),))
        await agent.wait_until("listen reported", lambda m: m.get(key) == 1)

        await srs.relaunch()  # restarted (e.g. `kill 1` in its container): the new listen
        await agent.wait_until("the report cleared", lambda m: m.get(key, 0) == 0)
        await agent.wait_running(srs.sha())
        await agent.wait_log("SRS restarted; it read its config from disk at start")
        await agent.wait_ready()
        assert srs.sighups() == 0
        assert await agent.value("srs_agent_reloads_total", result="success") == 0
