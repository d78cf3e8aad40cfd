"""`srs-agent exporter` scrape time and memory at 100, 1,000 and 10,000 streams.

For each stream count, the SRS stand-in runs with that many synthetic streams (players
on each), and `srs-agent exporter` runs as a real process (--cache-ttl 0, so every
scrape reads SRS; --max-streams 1000, the default). Two figures of scrape time:

- standin: GET /metrics of the exporter, which reads the stand-in (a Python process
  that takes its own time to page out 10,000 streams as JSON);
- replay:  the same, with SRS played by a server in this process that answers each
  API request from bytes prepared beforehand (the stand-in's replies, paged the way SRS
  pages), so the figure is the exporter's own cost plus loopback HTTP.

Each is the median and max of --scrapes scrapes. RSS is the exporter's VmRSS after the
scrapes and its peak (VmHWM). Finally the idle RSS of `srs-agent sidecar` (reload +
exporter) if that command exists, else of `srs-agent exporter`, after --idle seconds
with no scrape. The exporter's CPU time per scrape is printed too: on a busy machine
it is the steadier figure. Goals: scrape <= 300 ms and RSS <= 80 MB at 10,000 streams; sidecar
idle RSS <= 40 MB.

Run by hand:  .venv/bin/python -m bench.bench_exporter [--streams 100,1000,10000]
              [--scrapes 10] [--idle 5] [--agent VENV/bin/srs-agent]
--agent measures an install like the image's (the wheel with the `kube` extra in a fresh
venv); the dev venv, with the test dependencies, reads about 2 MB more.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from agents.cli import ENTRYPOINTS
from tests.standin.harness import StandIn, free_port

AGENT = str(Path(sys.executable).with_name("srs-agent"))


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process: its CPU time, which other load on the machine does
    not inflate the way it inflates wall time."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def status_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


class Replay:
    """SRS's API answered from prepared bytes: what the stand-in said, paged like SRS."""

    def __init__(self, docs: dict[str, bytes], streams: dict[str, Any]) -> None:
        self.docs = docs
        self.streams = streams
        self.pages: dict[tuple[int, int], bytes] = {}
        self.url = ""
        self.runner: web.AppRunner | None = None

    def prepare(self, page: int = 500, overlap: int = 16) -> None:
        items = self.streams["streams"]
        start = 0
        while True:
            body = {**self.streams, "streams": items[start:start + page]}
            self.pages[(start, page)] = json.dumps(body).encode()
            if start + page >= len(items):
                break
            start += page - overlap

    async def handle(self, request: web.Request) -> web.Response:
        if request.path == "/api/v1/streams/":
            key = (int(request.query["start"]), int(request.query["count"]))
            body = self.pages.get(key)
            if body is None:
                body = json.dumps({**self.streams, "streams": []}).encode()
            return web.Response(body=body, content_type="application/json")
        body = self.docs[request.path]
        kind = "text/plain" if request.path == "/metrics" else "application/json"
        return web.Response(body=body, content_type=kind)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("GET", "/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self.runner.addresses[0][1]}"

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


async def record(srs: StandIn) -> Replay:
    docs = {}
    for path in ("/api/v1/summaries", "/api/v1/vhosts/", "/api/v1/versions",
                 "/api/v1/self_proc_stats", "/metrics"):
        docs[path] = (await srs.get(path)).encode()
    streams = await srs.get_json("/api/v1/streams/?start=0&count=1000000")
    replay = Replay(docs, streams)
    replay.prepare()
    return replay


class Agent:
    """`srs-agent <command>` as a real process with its ops server on a free port."""

    def __init__(self, command: str, srs_api: str, *extra: str) -> None:
        self.port = free_port()
        self.cmd = [AGENT, command, "--srs-api", srs_api, "--listen",
                    f"127.0.0.1:{self.port}", "--cache-ttl", "0", "--srs-timeout", "30s",
                    "--log-level", "warning", *extra]
        self.proc: subprocess.Popen[bytes] | None = None

    async def __aenter__(self) -> Agent:
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        async with aiohttp.ClientSession() as http:
            while True:
                try:
                    async with http.get(f"http://127.0.0.1:{self.port}/readyz") as resp:
                        if resp.status == 200:
                            return self
                except aiohttp.ClientConnectionError:
                    pass
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.proc.kill()  # never left running behind a failed bench
                    self.proc.wait()
                    raise RuntimeError(f"{self.cmd} did not become ready")
                await asyncio.sleep(0.05)

    async def __aexit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def scrapes(self, count: int) -> tuple[list[float], int, float]:
        """Wall times, body size, and the agent's CPU time per scrape."""
        times = []
        size = 0
        cpu = cpu_seconds(self.pid)
        async with aiohttp.ClientSession() as http:
            for _ in range(count):
                started = time.perf_counter()
                async with http.get(f"http://127.0.0.1:{self.port}/metrics") as resp:
                    body = await resp.read()
                times.append(time.perf_counter() - started)
                size = len(body)
                if b"srs_up 1.0" not in body:
                    raise RuntimeError("SRS not read: srs_up is not 1")
        return times, size, (cpu_seconds(self.pid) - cpu) / count


def memory(pid: int) -> str:
    rss, anon, peak = (status_kib(pid, key) / 1024 for key in ("VmRSS", "RssAnon", "VmHWM"))
    return f"RSS {rss:5.1f} MB (anon {anon:4.1f})  peak {peak:5.1f} MB"


def line(label: str, streams: int, result: tuple[list[float], int, float], pid: int) -> str:
    times, size, cpu = result
    return (f"{label:8} {streams:>6} streams  scrape median {statistics.median(times) * 1000:6.0f}"
            f" ms  max {max(times) * 1000:6.0f} ms  exporter CPU {cpu * 1000:5.0f} ms/scrape  "
            f"body {size / 1024:4.0f} KiB  {memory(pid)}")


async def bench_streams(work: Path, count: int, scrapes: int) -> None:
    async with StandIn(work / f"s{count}", fake_streams=count, start_timeout=120) as srs:
        async with Agent("exporter", srs.api_url) as agent:
            result = await agent.scrapes(scrapes)
            print(line("standin", count, result, agent.pid), flush=True)
        replay = await record(srs)
    await replay.start()
    try:
        async with Agent("exporter", replay.url) as agent:
            result = await agent.scrapes(scrapes)
            print(line("replay", count, result, agent.pid), flush=True)
    finally:
        await replay.stop()


async def bench_idle(work: Path, idle: float) -> None:
    command = "sidecar" if "sidecar" in ENTRYPOINTS else "exporter"
    async with StandIn(work / "idle", fake_streams=10) as srs:
        extra: tuple[str, ...] = ()
        if command == "sidecar":  # reload watches the stand-in's config and finds its process
            extra = ("--config-dir", str(srs.workdir), "--srs-process",
                     f"-c {srs.conf_path}( |$)")
        async with Agent(command, srs.api_url, *extra) as agent:
            await agent.scrapes(1)
            await asyncio.sleep(idle)
            print(f"idle     `srs-agent {command}` after one scrape and {idle:g} s: "
                  f"{memory(agent.pid)}", flush=True)


async def main() -> None:
    global AGENT  # noqa: PLW0603 - one setting for the whole run
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", default="100,1000,10000",
                        help="stream counts to measure; empty for the idle figure only")
    parser.add_argument("--scrapes", type=int, default=10)
    parser.add_argument("--idle", type=float, default=5.0)
    parser.add_argument("--agent", default=AGENT,
                        help="the srs-agent to measure, e.g. one installed from the wheel into "
                        "a fresh venv as Dockerfile.agent does (no test dependencies)")
    args = parser.parse_args()
    AGENT = args.agent
    with tempfile.TemporaryDirectory(prefix="bench-exporter-") as tmp:
        work = Path(tmp)
        for count in (int(c) for c in args.streams.split(",") if c.strip()):
            await bench_streams(work, count, args.scrapes)
        await bench_idle(work, args.idle)


if __name__ == "__main__":
    asyncio.run(main())
