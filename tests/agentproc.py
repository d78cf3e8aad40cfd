"""A running `srs-agent` process for the tests: its output in a log file, its ops server,
and a SIGTERM stop that is timed."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

AGENT = os.path.join(os.path.dirname(sys.executable), "srs-agent")  # the console script

Metrics = dict[tuple[str, tuple[tuple[str, str], ...]], float]


class AgentProcess:
    """One `srs-agent` process (`args` after the program) writing to `log_path`; the test's
    SRS_AGENT_* variables are left out so that only its flags and `env` set it up."""

    def __init__(self, args: Sequence[str], workdir: Path, log_path: Path,
                 env: Mapping[str, str] | None = None) -> None:
        self.args = [AGENT, *args]
        self.env = {**{k: v for k, v in os.environ.items() if not k.startswith("SRS_AGENT_")},
                    **(env or {})}
        self.log_path = log_path
        self.workdir = workdir
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        with open(self.log_path, "wb") as out:
            self.proc = await asyncio.create_subprocess_exec(
                *self.args, stdout=out, stderr=subprocess.STDOUT, env=self.env,
                cwd=self.workdir)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


class OpsAgent(AgentProcess):
    """An `srs-agent` process with its ops server on 127.0.0.1:`port`."""

    role = "agent"  # what a failure calls it

    def __init__(self, port: int, args: Sequence[str], workdir: Path, log_path: Path,
                 env: Mapping[str, str] | None = None) -> None:
        super().__init__(args, workdir, log_path, env)
        self.port = port

    async def get(self, path: str) -> tuple[int, str]:
        async with aiohttp.ClientSession() as http, \
                http.get(f"http://127.0.0.1:{self.port}{path}") as resp:
            return resp.status, await resp.text()

    async def metrics(self) -> Metrics:
        _, text = await self.get("/metrics")
        return {(s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(text) for s in family.samples}

    async def value(self, name: str, **labels: str) -> float:
        return (await self.metrics()).get((name, tuple(sorted(labels.items()))), 0.0)

    async def stop(self) -> tuple[int, float]:
        """SIGTERM; (exit code, seconds to exit)."""
        assert self.proc is not None
        if self.proc.returncode is not None:
            return self.proc.returncode, 0.0
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = await asyncio.wait_for(self.proc.wait(), 10)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
            raise AssertionError(f"{self.role} ignored SIGTERM\n{self.log()}") from None
        return code, time.monotonic() - started


OpsAgentT = TypeVar("OpsAgentT", bound=OpsAgent)


@contextlib.asynccontextmanager
async def running(agent: OpsAgentT) -> AsyncIterator[OpsAgentT]:
    """Started, and at the end stopped with SIGTERM: it must exit 0."""
    await agent.start()
    try:
        yield agent
    finally:
        code, _ = await agent.stop()
        assert code == 0, agent.log()
