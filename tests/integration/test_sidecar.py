"""`srs-agent sidecar` as a real process against the SRS stand-in: one ops server with the
exporter's, the reload agent's and the drain's series, kubelet swaps reloaded, readiness,
and SIGTERM (at once, or after one scrape has carried a drain's outcome)."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Mapping
from pathlib import Path

import aiohttp
import pytest

from agents.drain import write_atomically
from agents.drain_plan import DrainState
from tests.agentproc import AGENT
from tests.integration.test_reload_agent import (
    FAST_TICK,
    Agent,
    KubeletStandIn,
    agent_args,
    with_fragment,
)

pytestmark = pytest.mark.integration


class Sidecar(Agent):
    """`srs-agent sidecar` with its drain files in `workdir`."""

    def __init__(self, workdir: Path, args: list[str],
                 env: Mapping[str, str] | None = None) -> None:
        super().__init__(workdir, args, env)
        self.state_file = workdir / "run" / "drain.json"
        self.done_file = workdir / "run" / "drained"
        assert self.args[:2] == [AGENT, "reload"]
        self.args[1] = "sidecar"
        self.args += ["--drain-state-file", str(self.state_file),
                      "--drain-done-file", str(self.done_file)]


async def test_sidecar_serves_srs_reload_and_drain_metrics_and_reloads(tmp_path: Path) -> None:
    async with KubeletStandIn(tmp_path, tick=FAST_TICK) as srs:
        sidecar = Sidecar(tmp_path, agent_args(srs, srs.conf_dir))
        sidecar.done_file.parent.mkdir()
        sidecar.done_file.write_text("")  # left by a drain of an earlier SRS container
        write_atomically(str(sidecar.state_file), DrainState(
            phase="draining", started_at=time.time(), connections=3,
            connections_before_quit=5).to_json())
        await sidecar.start()
        try:
            await sidecar.wait_ready()
            assert not sidecar.done_file.exists()
            assert (await sidecar.get("/healthz"))[0] == 200
            await sidecar.wait_running(srs.sha())
            metrics = await sidecar.metrics()
            assert metrics[("srs_up", ())] == 1  # the exporter read SRS's API
            assert metrics[("srs_agent_reloads_total", (("result", "success"),))] == 0
            assert metrics[("srs_agent_drain_connections", ())] == 3
            assert metrics[("srs_agent_drain_in_progress", ())] == 1

            srs.write_config(with_fragment(srs, 6))  # one kubelet sync
            await sidecar.wait_count("success", 1)
            await sidecar.wait_running(srs.sha())
            assert srs.sighups() == 1
            assert await sidecar.value("srs_agent_config_change_to_reload_seconds_count") == 1

            srs.signal(signal.SIGSTOP)  # SRS stops answering
            await srs.wait_state("T")
            srs.write_config(with_fragment(srs, 7))
            await sidecar.wait_log("SRS is not answering")
            status, body = await sidecar.get("/readyz")
            assert status == 503 and "reload" in body
            srs.signal(signal.SIGCONT)
            await sidecar.wait_ready()
            await sidecar.wait_running(srs.sha())
            assert srs.sighups() == 2
        finally:
            code, seconds = await sidecar.stop()
        assert code == 0, sidecar.log()
        assert seconds < 1.0  # nothing to wait for: no drain outcome unscraped
        assert "Traceback" not in sidecar.log()


async def test_sidecar_on_sigterm_serves_the_drain_outcome_once_before_exiting(
    tmp_path: Path,
) -> None:
    async with KubeletStandIn(tmp_path, tick=FAST_TICK) as srs:
        sidecar = Sidecar(tmp_path, [*agent_args(srs, srs.conf_dir),
                                     "--final-scrape-wait", "60s"])
        await sidecar.start()
        await sidecar.wait_ready()
        # The preStop drain ends (SRS drained), and the kubelet sends the sidecar SIGTERM
        # before Prometheus came by.
        write_atomically(str(sidecar.state_file), DrainState(
            phase="done", started_at=time.time(), connections=0, outcome="drained",
            outcomes={"drained": 1}).to_json())
        assert sidecar.proc is not None
        sidecar.proc.send_signal(signal.SIGTERM)
        await sidecar.wait_log("received SIGTERM")
        metrics = await sidecar.metrics()  # the server still answers: it waits for this
        assert metrics[("srs_agent_drain_outcomes_total", (("outcome", "drained"),))] == 1
        code = await asyncio.wait_for(sidecar.proc.wait(), 10)
        assert code == 0, sidecar.log()
        await sidecar.wait_log("drain outcome scraped before exit")
        with pytest.raises(aiohttp.ClientError):
            await sidecar.get("/metrics")
