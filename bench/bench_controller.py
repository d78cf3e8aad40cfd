"""`srs-agent controller`: ready-to-written latency, CPU and memory, against kmock's emulator.

The emulator runs in this process and the controller is a real process talking to it
over HTTP. The cluster is the guide's origin cluster, scaled up: a StatefulSet of
--origins origins behind the headless Service `socs`, and --edges edge pods behind their
own Service, whose EndpointSlice the controller sees too and must ignore cheaply.

1. Latency, --rounds times: the StatefulSet grows by one pod, first not ready; then
   the pod turns ready (the EndpointSlice PATCH) and the clock runs until the emulator
   holds both ConfigMaps with the new origin listed (read in memory every 1 ms). The
   pod is then scaled away again (not timed).
2. Churn for --churn seconds: every 50 ms one edge flips ready/unready, every 500 ms one
   origin does (shorter than --debounce, so it must cause no write), and every 2 s the
   StatefulSet scales by one (which must cause two writes). CPU seconds and RSS of the
   controller over that time, and the number of ConfigMap writes.
3. Idle: CPU seconds over --idle seconds of nothing happening.

Run by hand:  .venv/bin/python -m bench.bench_controller [--origins 100] [--edges 50]
              [--rounds 100] [--churn 30] [--idle 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import kmock

from tests.integration.test_controller_kmock import (
    EDGE_CM,
    EDGE_CONF,
    NS,
    ORIGIN_CM,
    ORIGIN_CONF,
    SERVICE,
    STS,
    Cluster,
    Controller,
    endpoint,
)

CLK_TCK = os.sysconf("SC_CLK_TCK")
CONFIGMAPS = kmock.resource("", "v1", "configmaps")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def ms(values: list[float]) -> str:
    return (f"p50 {pct(values, 0.5) * 1000:.1f} ms, p99 {pct(values, 0.99) * 1000:.1f} ms, "
            f"max {max(values) * 1000:.1f} ms (n={len(values)})")


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat", "rb") as fh:
        fields = fh.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class Origins:
    """The origin StatefulSet's state, as this bench sets it."""

    def __init__(self, cluster: Cluster, count: int) -> None:
        self.cluster = cluster
        self.replicas = count
        self.unready: set[int] = set()

    async def publish(self) -> None:
        endpoints = [endpoint(f"{STS}-{n}", ready=n not in self.unready)
                     for n in range(self.replicas)]
        await self.cluster.patch("endpointslices", f"{SERVICE}-x1", {"endpoints": endpoints})

    async def scale(self, replicas: int) -> None:
        self.replicas = replicas
        await self.cluster.scale(replicas)


def listed(emulator: kmock.KubernetesEmulator, name: str, host: str) -> bool:
    text = emulator.objects[CONFIGMAPS, NS, name]["data"]["srs.conf"]
    line = next(x for x in str(text).splitlines()
                if x.strip().startswith(("origin ", "coworkers ")))
    return any(word.split(":")[0] == host for word in line.rstrip(";").split()[1:])


async def until(check: Any, timeout: float = 10.0, step: float = 0.001) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError("timed out")
        await asyncio.sleep(step)


def writes(emulator: kmock.KubernetesEmulator) -> int:
    """ConfigMap writes so far: versions of both ConfigMaps past their creation."""
    return sum(len(emulator.objects[CONFIGMAPS, NS, name].history) - 1
               for name in (EDGE_CM, ORIGIN_CM))


def forget(emulator: kmock.KubernetesEmulator) -> None:
    """Drop the emulator's record of past requests. It matches each new request against
    every recorded one, so without this it slows down as the bench runs, and the figures
    would measure the emulator."""
    emulator._requests.clear()


async def bench(args: argparse.Namespace, work: Path) -> None:
    async with kmock.KubernetesEmulator() as emulator, kmock.Server(emulator):
        cluster = Cluster(emulator, work)
        await cluster.origin_cluster(replicas=args.origins, edge=EDGE_CONF, origin=ORIGIN_CONF)
        origins = Origins(cluster, args.origins)
        await cluster.create("services", "srs-edge", {"spec": {}})
        await cluster.create("endpointslices", "srs-edge-x1", {
            "addressType": "IPv4",
            "endpoints": [endpoint(f"srs-edge-{n}") for n in range(args.edges)],
        }, labels={"kubernetes.io/service-name": "srs-edge"})
        edge_ready = [True] * args.edges

        ctl = Controller(work, cluster, "--debounce", args.debounce, name="bench")
        await ctl.start()
        assert ctl.proc is not None
        pid = ctl.proc.pid
        try:
            await ctl.wait_ready()
            last = f"{STS}-{args.origins - 1}.socs"
            await until(lambda: listed(emulator, EDGE_CM, last)
                        and listed(emulator, ORIGIN_CM, last))
            print(f"controller ready; {args.origins} origins listed; RSS {rss_mb(pid):.1f} MB")

            # 1. ready -> both ConfigMaps written
            latencies = []
            for _ in range(args.rounds):
                n = origins.replicas
                origins.unready.add(n)
                await origins.scale(n + 1)
                await origins.publish()
                await asyncio.sleep(0.2)
                host = f"{STS}-{n}.socs"
                assert not listed(emulator, EDGE_CM, host)
                origins.unready.discard(n)
                started = time.monotonic()
                await origins.publish()
                await until(lambda h=host: listed(emulator, EDGE_CM, h)
                            and listed(emulator, ORIGIN_CM, h))
                latencies.append(time.monotonic() - started)
                forget(emulator)
                await origins.scale(n)
                await origins.publish()
                await until(lambda h=host: not listed(emulator, EDGE_CM, h)
                            and not listed(emulator, ORIGIN_CM, h))
            print(f"origin ready -> both ConfigMaps updated: {ms(latencies)}")

            # 2. churn
            cpu0, writes0, t0 = cpu_seconds(pid), writes(emulator), time.monotonic()
            ticks = flips = scales = 0
            grown = False
            while time.monotonic() - t0 < args.churn:
                ticks += 1
                k = ticks % args.edges
                edge_ready[k] = not edge_ready[k]
                await cluster.patch("endpointslices", "srs-edge-x1", {"endpoints": [
                    endpoint(f"srs-edge-{n}", ready=edge_ready[n]) for n in range(args.edges)]})
                if ticks % 10 == 0:  # an origin blips: down, and back 500 ms later
                    victim = (ticks // 10) % args.origins
                    if victim in origins.unready:
                        origins.unready.discard(victim)
                    else:
                        origins.unready = {victim}
                    flips += 1
                    await origins.publish()
                if ticks % 40 == 0:
                    origins.unready.clear()
                    await origins.scale(origins.replicas + (-1 if grown else 1))
                    grown = not grown
                    scales += 1
                    await origins.publish()
                forget(emulator)
                await asyncio.sleep(0.05)
            elapsed = time.monotonic() - t0
            await asyncio.sleep(1.0)
            cpu = cpu_seconds(pid) - cpu0
            print(f"churn {elapsed:.0f} s: {ticks} edge slice updates, {flips} origin blips, "
                  f"{scales} scalings -> {writes(emulator) - writes0} ConfigMap writes "
                  f"(expected {2 * scales}); CPU {cpu:.2f} s "
                  f"({100 * cpu / elapsed:.1f}% of one core), RSS {rss_mb(pid):.1f} MB")

            # 3. idle
            cpu0 = cpu_seconds(pid)
            await asyncio.sleep(args.idle)
            print(f"idle {args.idle:.0f} s: CPU {cpu_seconds(pid) - cpu0:.3f} s, "
                  f"RSS {rss_mb(pid):.1f} MB")
        finally:
            code, seconds = await ctl.stop()
            print(f"SIGTERM -> exit {code} in {seconds * 1000:.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--origins", type=int, default=100)
    parser.add_argument("--edges", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--churn", type=float, default=30.0)
    parser.add_argument("--idle", type=float, default=10.0)
    parser.add_argument("--debounce", default="2s")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-controller-") as work:
        asyncio.run(bench(args, Path(work)))


if __name__ == "__main__":
    main()
