"""`srs-agent reload`: reaction time, memory and idle CPU, measured against real processes.

Volume mode: the kubelet's `..data` swap (tests/kubelet.py) on the SRS stand-in's config
directory; swap-to-SIGHUP is from just before the kubelet's write starts to the moment
the stand-in's signal handler ran (CLOCK_MONOTONIC is shared by all processes), so it
includes the write itself. API mode: kmock's Kubernetes emulator in this process; the
agent watches the ConfigMap and writes it into the stand-in's config directory;
PATCH-to-SIGHUP from just before the PATCH request, PATCH-to-verified to the agent's
"SRS reloaded" line (wall clock, ms). The stand-in keeps SRS's 1 s main-loop tick for
the verified figure, so that one includes SRS's own wait for its next tick.

Also: RSS after start and after --changes swaps, CPU seconds used in --idle seconds of
nothing happening, and SRS not answering (SIGSTOP) for --down seconds while 5 changes
land: it must get exactly one reload, of the latest config.

Run by hand:  .venv/bin/python -m bench.bench_reload [--swaps 200] [--patches 30]
              [--changes 1000] [--idle 60] [--down 30] [--skip-api]
A quick look (about a minute, figures less steady): --quick
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp

from tests.kubelet import ConfigMapVolume
from tests.standin.harness import StandIn, free_port

AGENT = os.path.join(os.path.dirname(sys.executable), "srs-agent")
CLK_TCK = os.sysconf("SC_CLK_TCK")


class Tail:
    """JSON lines appended to a file since the last look (light: the bench shares the
    CPUs with what it measures)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.partial = b""
        self.seen: list[dict[str, Any]] = []

    def read(self) -> list[dict[str, Any]]:
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                data = fh.read()
        except FileNotFoundError:
            return self.seen
        self.offset += len(data)
        lines = (self.partial + data).split(b"\n")
        self.partial = lines.pop()
        for line in lines:
            try:
                self.seen.append(json.loads(line))
            except ValueError:
                continue
        return self.seen


class VolumeStandIn(StandIn):
    """The stand-in on `<workdir>/conf/srs.conf`; `write_config` is one kubelet sync,
    or with `direct=False` the text is only remembered (API mode writes it)."""

    def __init__(self, workdir: Path, direct: bool = True, **kw: Any) -> None:
        super().__init__(workdir, **kw)
        self.conf_dir = self.workdir / "conf"
        self.conf_path = self.conf_dir / "srs.conf"
        self.direct = direct
        self.text = ""
        self._events = Tail(self.events_path)
        self.swapped_at = 0.0  # monotonic time of the last ..data rename

    async def __aenter__(self) -> VolumeStandIn:
        await self.start()
        return self

    def write_config(self, text: str) -> None:
        self.text = text
        if self.direct:
            ConfigMapVolume(str(self.conf_dir), before_swap=self._swapping).update(
                {"srs.conf": text})

    def _swapping(self) -> None:
        self.swapped_at = time.monotonic()

    def sighups(self) -> list[dict[str, Any]]:
        return [e for e in self._events.read()
                if e.get("event") == "signal" and e.get("name") == "SIGHUP"]


class AgentProcess:
    def __init__(self, workdir: Path, args: list[str], env: dict[str, str] | None = None):
        self.port = free_port()
        self.log_path = workdir / f"agent-{self.port}.jsonl"
        self.args = [AGENT, "reload", "--listen", f"127.0.0.1:{self.port}", *args]
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self._log = Tail(self.log_path)

    def start(self) -> None:
        with open(self.log_path, "wb") as out:
            self.proc = subprocess.Popen(self.args, stdout=out, stderr=subprocess.STDOUT,
                                         env=self.env)

    def lines(self, msg: str) -> list[dict[str, Any]]:
        return [doc for doc in self._log.read() if doc.get("msg") == msg]

    async def wait_lines(self, msg: str, count: int, timeout: float = 30.0) -> list[Any]:
        deadline = time.monotonic() + timeout
        while True:
            found = self.lines(msg)
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise RuntimeError(f"no {count}x {msg!r} in {self.log_path}")
            await asyncio.sleep(0.02)

    async def wait_ready(self) -> None:
        deadline = time.monotonic() + 30
        async with aiohttp.ClientSession() as http:
            while time.monotonic() < deadline:
                try:
                    async with http.get(f"http://127.0.0.1:{self.port}/readyz") as resp:
                        if resp.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.05)
        raise RuntimeError(f"agent not ready: {self.log_path}")

    def rss_mb(self) -> float:
        assert self.proc is not None
        with open(f"/proc/{self.proc.pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return 0.0

    def cpu_seconds(self) -> float:
        assert self.proc is not None
        with open(f"/proc/{self.proc.pid}/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime

    def kill(self) -> None:
        """Leave nothing behind when the bench fails half-way."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> tuple[int, float]:
        assert self.proc is not None
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(10)
        return code, time.monotonic() - started


def process_state(pid: int) -> str:
    with open(f"/proc/{pid}/stat", "rb") as fh:
        return fh.read().rsplit(b")", 1)[1].split()[0].decode()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def ms(values: list[float]) -> str:
    return (f"p50 {pct(values, 0.5) * 1000:.1f} ms, p99 {pct(values, 0.99) * 1000:.1f} ms, "
            f"max {max(values) * 1000:.1f} ms (n={len(values)})")


def wall(doc: dict[str, Any]) -> float:
    return datetime.fromisoformat(str(doc["ts"]).replace("Z", "+00:00")).timestamp()


async def wait_for(check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError("timed out")
        await asyncio.sleep(0.02)


def agent_args(srs: VolumeStandIn) -> list[str]:
    return ["--config-dir", str(srs.conf_dir), "--srs-api", srs.api_url,
            "--srs-process", f"-c {srs.conf_path}( |$)", "--srs-timeout", "0.5s"]


async def idle_cpu(agent: AgentProcess, seconds: float) -> float:
    before = agent.cpu_seconds()
    await asyncio.sleep(seconds)
    return (agent.cpu_seconds() - before) * 60.0 / seconds


async def bench_volume(work: Path, args: argparse.Namespace) -> None:
    print("== volume mode (kubelet ..data swap) ==")
    async with VolumeStandIn(work / "volume", tick=0.1) as srs:
        agent = AgentProcess(work, agent_args(srs))
        agent.start()
        try:
            await volume_figures(srs, agent, args)
        finally:
            agent.kill()


async def volume_figures(srs: VolumeStandIn, agent: AgentProcess,
                         args: argparse.Namespace) -> None:
    await agent.wait_ready()
    rss_start = agent.rss_mb()
    latencies = []
    for n in range(args.swaps):
        have = len(srs.sighups())
        srs.write_config(srs.render(hls_fragment=str(2 + n % 7), hls_window=str(11 + n)))
        await wait_for(lambda have=have: len(srs.sighups()) > have)  # type: ignore[misc]
        latencies.append(srs.sighups()[-1]["mono"] - srs.swapped_at)
        await agent.wait_lines("SRS reloaded", n + 1)
    inside = [doc["since_change_ms"] / 1000 for doc in agent.lines("reload requested")
              if doc.get("since_change_ms") is not None]
    print(f"swap-to-SIGHUP (rename to the stand-in's handler): {ms(latencies)}")
    print(f"  of which inside the agent (inotify read to kill): {ms(inside)}")
    print(f"RSS after start: {rss_start:.1f} MB; after {args.swaps} swaps: "
          f"{agent.rss_mb():.1f} MB")
    for n in range(args.changes):
        srs.write_config(srs.render(hls_window=str(1000 + n)))
        await asyncio.sleep(0.01)
    await wait_for(lambda: srs.text in (srs.conf_dir / "srs.conf").read_text())
    await asyncio.sleep(1.0)
    print(f"RSS after {args.changes} more changes (10 ms apart): {agent.rss_mb():.1f} MB; "
          f"reloads {len(agent.lines('SRS reloaded'))}")
    print(f"idle CPU: {await idle_cpu(agent, args.idle):.3f} CPU-s per minute "
          f"(over {args.idle:g} s)")

    # SRS not answering while changes land
    have = len(srs.sighups())
    stopped_at = time.monotonic()
    srs.signal(signal.SIGSTOP)
    await wait_for(lambda: process_state(srs.pid) == "T")  # down before changes land
    try:
        for n in range(5):
            srs.write_config(srs.render(hls_window=str(5000 + n)))
            await asyncio.sleep(args.down / 5)
    finally:
        srs.signal(signal.SIGCONT)
    reloaded = len(agent.lines("SRS reloaded"))
    await agent.wait_lines("SRS reloaded", reloaded + 1, timeout=30)
    await asyncio.sleep(2.0)
    last = agent.lines("SRS reloaded")[-1]
    from agents.srs import conf  # noqa: PLC0415

    latest = conf.content_sha256(conf.load(str(srs.conf_path), cwd=str(srs.workdir)))
    after = [round(e["mono"] - stopped_at, 2) for e in srs.sighups()[have:]]
    print(f"SRS stopped {args.down:g} s while 5 changes landed: {len(after)} SIGHUP "
          f"(at {after} s after SIGSTOP); reloaded the latest: "
          f"{last.get('sha256') == latest}")
    code, seconds = agent.stop()
    print(f"SIGTERM: exit {code} in {seconds * 1000:.0f} ms")


async def bench_api(work: Path, args: argparse.Namespace) -> None:
    import kmock  # noqa: PLC0415

    print("== API mode (ConfigMap watch, kmock emulator) ==")
    async with kmock.KubernetesEmulator() as emulator, kmock.Server(emulator):
        emulator.resources["v1/configmaps"] = kmock.ResourceInfo()
        base = str(emulator.url).rstrip("/")
        kubeconfig = work / "kubeconfig"
        kubeconfig.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "b",
            "clusters": [{"name": "k", "cluster": {"server": base}}],
            "users": [{"name": "u", "user": {"token": "t"}}],
            "contexts": [{"name": "b", "context": {"cluster": "k", "user": "u",
                                                    "namespace": "default"}}],
        }))
        path = "/api/v1/namespaces/default/configmaps"
        srs = VolumeStandIn(work / "api", direct=False, tick=1.0)
        srs.rtmp_port, srs.api_port = free_port(), free_port()
        srs.http_port, srs.exporter_port = free_port(), free_port()
        async with aiohttp.ClientSession() as http:
            async with http.post(base + path, json={
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "srs", "namespace": "default"},
                "data": {"srs.conf": srs.render()},
            }) as resp:
                assert resp.status == 200, await resp.text()
            env = {"KUBECONFIG": str(kubeconfig)}
            srs.conf_dir.mkdir(parents=True)
            once = await asyncio.create_subprocess_exec(
                AGENT, "reload", "--once", "--source", "configmap/srs", "--config-dir",
                str(srs.conf_dir), env={**os.environ, **env})
            assert await once.wait() == 0
            await launch(srs)
            agent = AgentProcess(work, [*agent_args(srs), "--source", "configmap/srs"], env)
            agent.start()
            try:
                await api_figures(srs, agent, http, base + path, args)
            finally:
                agent.kill()
                await srs.stop()


async def api_figures(srs: VolumeStandIn, agent: AgentProcess, http: aiohttp.ClientSession,
                      url: str, args: argparse.Namespace) -> None:
    await agent.wait_ready()
    await agent.wait_lines("read ConfigMap", 1)
    rss_start = agent.rss_mb()
    to_sighup, to_verified = [], []
    for n in range(args.patches):
        have = len(srs.sighups())
        t0, w0 = time.monotonic(), time.time()
        async with http.patch(
            f"{url}/srs", json={"data": {"srs.conf": srs.render(
                hls_window=str(11 + n))}},
            headers={"Content-Type": "application/merge-patch+json"},
        ) as resp:
            assert resp.status == 200
        await wait_for(lambda have=have: len(srs.sighups()) > have)  # type: ignore[misc]
        to_sighup.append(srs.sighups()[-1]["mono"] - t0)
        done = await agent.wait_lines("SRS reloaded", n + 1)
        to_verified.append(wall(done[-1]) - w0)
    inside = [doc["since_change_ms"] / 1000 for doc in agent.lines("reload requested")
              if doc.get("since_change_ms") is not None]
    print(f"PATCH-to-SIGHUP (to the stand-in's handler): {ms(to_sighup)}")
    print(f"  of which inside the agent (watch event read to kill): {ms(inside)}")
    print(f"PATCH-to-verified reload (SRS 1 s tick): {ms(to_verified)}")
    print(f"RSS after start: {rss_start:.1f} MB; after {args.patches} patches: "
          f"{agent.rss_mb():.1f} MB")
    print(f"idle CPU: {await idle_cpu(agent, args.idle):.3f} CPU-s per minute "
          f"(over {args.idle:g} s)")
    code, seconds = agent.stop()
    print(f"SIGTERM: exit {code} in {seconds * 1000:.0f} ms")


async def launch(srs: VolumeStandIn) -> None:
    srs.html_dir.mkdir(parents=True, exist_ok=True)
    srs._output = open(srs.output_path, "ab")  # noqa: SIM115 - closed by stop()
    srs.proc = subprocess.Popen(srs.command(), cwd=srs.workdir, stdin=subprocess.DEVNULL,
                                stdout=srs._output, stderr=subprocess.STDOUT)
    await srs.wait_event("ready")


async def main() -> None:
    global AGENT  # noqa: PLW0603 - one setting for the whole run
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--swaps", type=int, default=200)
    parser.add_argument("--patches", type=int, default=30)
    parser.add_argument("--changes", type=int, default=1000)
    parser.add_argument("--idle", type=float, default=60.0)
    parser.add_argument("--down", type=float, default=30.0)
    parser.add_argument("--skip-api", action="store_true")
    parser.add_argument("--agent", default=AGENT,
                        help="the srs-agent to measure, e.g. one installed from the wheel into "
                        "a fresh venv as Dockerfile.agent does (no test dependencies)")
    parser.add_argument("--quick", action="store_true",
                        help="--swaps 50 --patches 10 --changes 100 --idle 5 --down 3")
    args = parser.parse_args()
    AGENT = args.agent
    if args.quick:
        args.swaps, args.patches, args.changes, args.idle, args.down = 50, 10, 100, 5.0, 3.0
    with tempfile.TemporaryDirectory(prefix="bench-reload-") as tmp:
        await bench_volume(Path(tmp), args)
        if not args.skip_api:
            await bench_api(Path(tmp), args)
    print(f"(load average now: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")


if __name__ == "__main__":
    asyncio.run(main())
