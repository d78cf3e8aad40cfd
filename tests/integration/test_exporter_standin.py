"""The exporter against the SRS stand-in as a real process: paging, SRS 4/5/6 reply
shapes, top-N, streams coming and going, SRS going away; each scrape parsed back and
compared with what the stand-in's own API says."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from agents.settings import ExporterSettings
from tests.integration.exporter_helpers import OTHER, Scrape, scrape, serving
from tests.standin.harness import StandIn, free_port

pytestmark = pytest.mark.integration

SRS_AGENT = str(Path(sys.executable).parent / "srs-agent")


async def srs_streams(srs: StandIn) -> dict[str, dict[str, Any]]:
    """The stand-in's streams by name, read in one request (count=max(10, count))."""
    doc = await srs.get_json("/api/v1/streams/?start=0&count=100000")
    return {s["name"]: s for s in doc["streams"]}


def settings(srs: StandIn, **extra: Any) -> ExporterSettings:
    base: dict[str, Any] = {"srs_api": srs.api_url, "cache_ttl": 0.0, "srs_timeout": 10.0}
    return ExporterSettings(**{**base, **extra})


@pytest.mark.parametrize("count", [0, 1, 25, 2500])
async def test_every_stream_with_its_figures(tmp_path: Path, count: int) -> None:
    async with StandIn(tmp_path, fake_streams=count, start_timeout=60) as srs, \
            serving(settings(srs, max_streams=3000)) as (_, base):
        before = await srs_streams(srs)
        got = await scrape(base)
        after = await srs_streams(srs)

        assert got.value("srs_up") == 1
        assert got.value("srs_streams") == count
        clients = got.by("srs_stream_clients", "vhost", "app", "stream")
        assert clients == {("__defaultVhost__", "live", name): s["clients"]
                           for name, s in before.items()}
        assert got.value("srs_clients") == sum(s["clients"] for s in before.values())
        sent = got.by("srs_stream_send_bytes_total", "stream")
        kbps = got.by("srs_stream_kbps", "stream", "direction")
        active = got.by("srs_stream_publish_active", "stream")
        for name, s in before.items():
            assert s["send_bytes"] <= sent[(name,)] <= after[name]["send_bytes"]
            assert kbps[(name, "receive")] in {s["kbps"]["recv_30s"],
                                               after[name]["kbps"]["recv_30s"]}
            assert active[(name,)] == 1
        resolutions = {s.labels["stream"]: s.labels["resolution"]
                       for s in got.samples.get("srs_stream_info", [])}
        for name, s in before.items():
            video = s["video"]
            assert resolutions[name] == (f"{video['width']}x{video['height']}" if video else "")
        assert not got.has("srs_exporter_streams_other")
        assert got.value("srs_exporter_errors_total", reason="protocol") == 0
        if count:  # SRS lists a vhost once it had a stream
            assert got.by("srs_vhost_clients", "vhost") == {
                ("__defaultVhost__",): got.value("srs_clients")}


async def test_top_n_by_clients_and_the_rest_in_other(tmp_path: Path) -> None:
    async with StandIn(tmp_path, fake_streams=2500, start_timeout=60) as srs, \
            serving(settings(srs)) as (_, base):  # --max-streams default: 1000
        state = await srs_streams(srs)
        got = await scrape(base)
    clients = got.by("srs_stream_clients", "app", "stream")
    other = clients.pop((OTHER, OTHER))
    assert len(clients) == 1000
    assert got.value("srs_exporter_streams_other", vhost="__defaultVhost__") == 1500
    labelled = {stream for _, stream in clients}
    assert min(clients.values()) >= max(s["clients"] for name, s in state.items()
                                        if name not in labelled)
    assert other + sum(clients.values()) == sum(s["clients"] for s in state.values())
    assert len(got.samples["srs_stream_info"]) == 1000


@pytest.mark.parametrize("version", [4, 5, 6])
async def test_srs_versions(tmp_path: Path, version: int) -> None:
    async with StandIn(tmp_path, fake_streams=3, api_version=version) as srs, \
            serving(settings(srs)) as (_, base):
        got = await scrape(base)
        builtin = await srs.get("/metrics") if version >= 5 else ""
    assert got.value("srs_up") == 1
    build = got.samples["srs_build_info"][0].labels
    assert got.value("srs_streams") == 3 and got.has("srs_memory")
    assert got.value("srs_exporter_errors_total", reason="protocol") == 0
    if version == 4:  # no /metrics: computed; what only SRS's exporter knows is absent
        assert set(build) == {"server", "major", "version"}
        assert not got.has("srs_clients_total") and not got.has("srs_node_uname_info")
    else:  # SRS's own series, passed through
        assert {"service", "pid", "build_date", "code", "label", "tag"} <= set(build)
        assert got.has("srs_clients_total") and got.has("srs_node_uname_info")
        assert Scrape(builtin).samples["srs_build_info"][0].labels == build


async def test_srs_exporter_disabled_is_not_an_error(tmp_path: Path) -> None:
    async with StandIn(tmp_path, fake_streams=2, exporter=False) as srs, \
            serving(settings(srs)) as (exporter, base):
        first, second = await scrape(base), await scrape(base)
    for got in (first, second):
        assert got.value("srs_up") == 1
        assert got.samples["srs_build_info"][0].labels["version"] == "6.0.155"
        assert not got.has("srs_clients_total")
        assert sum(got.by("srs_exporter_errors_total", "reason").values()) == 0
    assert exporter.reads == 3  # the first at start, then one per scrape (--cache-ttl 0)


async def test_streams_that_end_disappear_at_once(tmp_path: Path) -> None:
    async with StandIn(tmp_path) as srs, serving(settings(srs)) as (_, base):
        publisher = srs.connect_publisher("live", "cam1")
        player = srs.connect_player("live", "cam1")
        await srs.wait_clients(2)
        got = await scrape(base)
        assert got.by("srs_stream_clients", "stream") == {("cam1",): 2}
        assert got.value("srs_stream_publish_active", stream="cam1") == 1

        srs.close(publisher)  # the player stays: SRS keeps the stream, unpublished
        await srs.wait_clients(1)
        got = await scrape(base)
        assert got.by("srs_stream_clients", "stream") == {("cam1",): 1}
        assert got.value("srs_stream_publish_active", stream="cam1") == 0

        srs.close(player)  # nobody left: SRS drops the stream, and so do we
        await srs.wait_clients(0)
        got = await scrape(base)
    assert got.value("srs_up") == 1
    assert got.value("srs_streams") == 0
    assert not got.has("srs_stream_clients") and not got.has("srs_stream_info")
    assert got.value("srs_vhost_streams", vhost="__defaultVhost__") == 0


async def test_srs_down_then_back(tmp_path: Path) -> None:
    srs = StandIn(tmp_path / "a", fake_streams=5)
    async with srs, serving(settings(srs, srs_timeout=2.0)) as (exporter, base):
        up = await scrape(base)
        assert up.value("srs_up") == 1 and up.has("srs_stream_clients")
        await srs.stop()
        down = await scrape(base)
        assert down.value("srs_up") == 0
        assert down.value("srs_exporter_errors_total", reason="refused") == 1
        assert down.srs_series() == []  # nothing old served as current
        assert down.value("srs_scrape_duration_seconds") < 2.0
        assert exporter.up is False


async def test_cache_ttl_serves_one_read_to_many_scrapes(tmp_path: Path) -> None:
    async with StandIn(tmp_path, fake_streams=2) as srs, \
            serving(settings(srs, cache_ttl=3600.0)) as (exporter, base):
        first = await scrape(base)
        second = await scrape(base)
    assert exporter.reads == 1  # the read at start serves both scrapes
    assert first.text == second.text


async def test_concurrent_scrapes_share_one_read(tmp_path: Path) -> None:
    async with StandIn(tmp_path, fake_streams=50) as srs, \
            serving(settings(srs)) as (exporter, _):
        reads = exporter.reads
        await asyncio.gather(*(exporter.before_scrape() for _ in range(5)))
        assert exporter.reads == reads + 1


async def test_the_command_serves_until_sigterm(tmp_path: Path) -> None:
    async with StandIn(tmp_path, fake_streams=3) as srs:
        port = free_port()
        env = {**os.environ, "SRS_AGENT_SRS_API": srs.api_url}
        proc = subprocess.Popen(
            [SRS_AGENT, "exporter", "--listen", f"127.0.0.1:{port}", "--log-format", "text"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        try:
            got = await scrape_when_up(f"http://127.0.0.1:{port}")
            assert got.value("srs_up") == 1 and got.value("srs_streams") == 3
            async with aiohttp.ClientSession() as http, \
                    http.get(f"http://127.0.0.1:{port}/readyz") as resp:
                assert resp.status == 200
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.to_thread(proc.wait, 10) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        out = proc.stdout.read().decode() if proc.stdout else ""
    assert "SRS API readable" in out and "version=6.0.155" in out


async def scrape_when_up(base: str, timeout: float = 15.0) -> Scrape:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await scrape(base)
        except aiohttp.ClientConnectionError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)
