"""`srs-agent drain` against the SRS stand-in: exit latency and the cost of waiting.

1. Latency: --runs times, a stand-in (--tick 0.1) with one RTMP player, `srs-agent drain`
   as a real process; the player leaves a random 0-300 ms after SRS got SIGQUIT. Both
   exits are timed by pidfds in this process (the same clock, the same wake-up path),
   and the figure is drain exit minus SRS exit. Goal: p99 <= 200 ms.
2. Waiting: a player that never leaves; the drain waits for a short and for a long
   soft deadline. The difference of its CPU time and voluntary context switches
   (getrusage of the reaped child) over the difference of wall time is what waiting
   costs per second; a busy poll at 50 ms would show 20 wake-ups a second.

Run by hand:  .venv/bin/python -m bench.bench_drain [--runs 50] [--wait 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import resource
import statistics
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tests.agentproc import AGENT
from tests.exitclock import exit_clock
from tests.standin.harness import StandIn


def drain_command(srs: StandIn, run_dir: Path, *args: str) -> list[str]:
    return [
        AGENT, "drain", "--srs-process", f"/srs -c {srs.conf_path}",
        "--config-dir", str(srs.workdir), "--done-file", str(run_dir / "drained"),
        "--log-level", "warning", *args,
    ]


@dataclass
class Usage:
    wall: float
    cpu: float
    voluntary_switches: int
    code: int


async def run_measured(cmd: list[str]) -> Usage:
    """Run `cmd`, reap it with wait4 and return its wall time and rusage."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = await asyncio.to_thread(os.wait4, proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return Usage(loop.time() - start, usage.ru_utime + usage.ru_stime, usage.ru_nvcsw,
                 proc.returncode)


async def latency_once(workdir: Path, rng: random.Random) -> float:
    async with StandIn(workdir, tick=0.1, grace_start_wait=100, grace_final_wait=100,
                       hls=False) as srs:
        srs_exit = exit_clock(srs.pid)
        player = srs.connect_player("live", "s1")
        await srs.wait_clients(1)
        proc = await asyncio.create_subprocess_exec(
            *drain_command(srs, workdir / "run", "--grace-period", "30"),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        drain_exit = exit_clock(proc.pid)
        await srs.wait_event("quit_requested")
        await asyncio.sleep(rng.uniform(0, 0.3))
        srs.close(player)
        if await proc.wait() != 0:
            raise SystemExit("drain did not exit 0")
        return await drain_exit - await srs_exit


async def waiting_cost(workdir: Path, soft: float) -> Usage:
    async with StandIn(workdir, tick=0.1, grace_start_wait=100, grace_final_wait=100,
                       hls=False) as srs:
        srs.connect_player("live", "stuck")
        await srs.wait_clients(1)
        return await run_measured(drain_command(
            srs, workdir / "run", "--grace-period", f"{soft + 3:g}", "--deadline", f"{soft:g}"))


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def main(runs: int, wait: float) -> None:
    rng = random.Random(1)
    with tempfile.TemporaryDirectory(prefix="bench-drain-") as tmp:
        latencies = []
        for n in range(runs):
            latencies.append(await latency_once(Path(tmp) / f"l{n}", rng))
        ms = [x * 1000 for x in latencies]
        print(f"drain return after SRS exit, {runs} runs (ms): "
              f"p50 {statistics.median(ms):.1f}  p90 {percentile(ms, 90):.1f}  "
              f"p99 {percentile(ms, 99):.1f}  max {max(ms):.1f}  "
              f"goal p99 <= 200: {'met' if percentile(ms, 99) <= 200 else 'MISSED'}")

        short = await waiting_cost(Path(tmp) / "short", 1.0)
        long = await waiting_cost(Path(tmp) / "long", 1.0 + wait)
        if short.code != 1 or long.code != 1:
            raise SystemExit(f"expected exit 1 at the deadline, got {short.code}/{long.code}")
        span = long.wall - short.wall
        cpu = (long.cpu - short.cpu) / span
        switches = (long.voluntary_switches - short.voluntary_switches) / span
        print(f"waiting {span:.1f}s more (progress every 5s): CPU {cpu * 1000:.2f} ms/s "
              f"({cpu * 100:.3f}% of a core), {switches:.2f} wake-ups/s "
              f"(whole runs: {short.cpu * 1000:.0f} / {long.cpu * 1000:.0f} ms CPU, "
              f"{short.voluntary_switches} / {long.voluntary_switches} switches)")
        own = resource.getrusage(resource.RUSAGE_SELF)
        print(f"(bench process itself: {own.ru_utime + own.ru_stime:.1f}s CPU)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--wait", type=float, default=10.0,
                        help="extra seconds of waiting in the long run")
    ns = parser.parse_args()
    asyncio.run(main(ns.runs, ns.wait))
