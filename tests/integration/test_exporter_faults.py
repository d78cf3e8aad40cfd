"""The exporter when SRS misbehaves: hangs, garbage, `code != 0`, a proxy's 503, SRS 3's
paging that ignores `start`. SRS is played by a real HTTP server on 127.0.0.1 answering
with SRS 6.0.155's recorded replies (tests/fixtures), one path replaced by a fault."""

from __future__ import annotations

import asyncio
import copy
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from prometheus_client import CollectorRegistry

from agents.exporter import Exporter
from agents.runtime.ops import Health, OpsServer
from agents.settings import ExporterSettings
from tests.integration.exporter_helpers import Scrape, scrape, serving

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "srs-6.0.155"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def recorded(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((FIXTURES / "api" / name).read_text())
    return doc


class RecordedSrs:
    """SRS's API from recorded replies, with `count` streams made from the recorded one.

    `srs3`: the shapes SRS 3.0 writes (v3.0-r8 sources): no `service`/`pid` in replies,
    no url/tcUrl in streams, `streams/` ignores start and count, no /metrics (the API
    root answers it).
    """

    def __init__(self, count: int = 25, *, srs3: bool = False) -> None:
        self.srs3 = srs3
        self.faults: dict[str, Handler] = {}
        self.requests: dict[str, int] = {}
        template = recorded("api_streams.json")["streams"][0]
        self.streams = []
        for i in range(count):
            item = copy.deepcopy(template)
            item.update(id=f"vid-{i:07d}", name=f"s{i}", clients=i % 5 + 1,
                        send_bytes=1000 * i, recv_bytes=2000 * i)
            if srs3:
                del item["url"], item["tcUrl"]
            self.streams.append(item)
        self.vhosts = recorded("api_vhosts.json")
        self.vhosts["vhosts"][0]["clients"] = sum(s["clients"] for s in self.streams)
        self.url = ""
        self._runner: web.AppRunner | None = None
        self._released = asyncio.Event()

    async def hang(self, request: web.Request) -> web.StreamResponse:
        """Never answer (until the server stops)."""
        await self._released.wait()
        return web.Response(status=503)

    def envelope(self, doc: dict[str, Any]) -> dict[str, Any]:
        if self.srs3:
            doc = {k: v for k, v in doc.items() if k not in ("service", "pid")}
        return doc

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        self.requests[path] = self.requests.get(path, 0) + 1
        if path in self.faults:
            return await self.faults[path](request)
        return self.normal(request)

    def normal(self, request: web.Request) -> web.StreamResponse:
        """What SRS answers when all is well."""
        path = request.path
        if path == "/api/v1/streams/":
            start = max(0, int(request.query.get("start", "0") or 0))
            count = max(10, int(request.query.get("count", "10") or 10))
            page = self.streams if self.srs3 else self.streams[start:start + count]
            doc = {**recorded("api_streams.json"), "streams": page}
        elif path == "/api/v1/vhosts/":
            doc = self.vhosts
        elif path == "/metrics":
            if not self.srs3:
                return web.Response(text=(FIXTURES / "exporter-metrics.txt").read_text())
            doc = recorded("api_root.json")
        else:
            name = {"/api/v1/summaries": "api_summaries.json",
                    "/api/v1/versions": "api_versions.json",
                    "/api/v1/self_proc_stats": "api_self_proc_stats.json"}[path]
            doc = recorded(name)
        return web.json_response(self.envelope(doc))

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("GET", "/{tail:.*}", self.handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    async def stop(self) -> None:
        self._released.set()
        if self._runner is not None:
            await self._runner.cleanup()


@pytest_asyncio.fixture
async def srs() -> AsyncIterator[RecordedSrs]:
    server = RecordedSrs()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def settings(url: str, **extra: Any) -> ExporterSettings:
    base: dict[str, Any] = {"srs_api": url, "cache_ttl": 0.0, "srs_timeout": 1.0}
    return ExporterSettings(**{**base, **extra})


def reply(body: str | bytes, status: int = 200) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        data = body.encode() if isinstance(body, str) else body
        return web.Response(body=data, status=status, content_type="application/json")

    return handler


HANG = reply("")  # a marker: replaced by the server's own hang()


def resolve(server: RecordedSrs, fault: Handler) -> Handler:
    return server.hang if fault is HANG else fault


def errors(got: Scrape) -> dict[str, float]:
    return {reason: value for (reason,), value in
            got.by("srs_exporter_errors_total", "reason").items() if value}


async def test_recorded_replies_give_every_series(srs: RecordedSrs) -> None:
    async with serving(settings(srs.url, max_streams=10)) as (_, base):
        got = await scrape(base)
    assert got.value("srs_up") == 1 and errors(got) == {}
    assert got.value("srs_memory") == 18672 and got.value("srs_clients_total") == 3
    assert len(got.samples["srs_stream_clients"]) == 11  # 10 + __other__
    assert got.value("srs_exporter_streams_other", vhost="__defaultVhost__") == 15


@pytest.mark.parametrize(("path", "fault", "reason"), [
    ("/api/v1/summaries", reply('{"code":0,"data":'), "protocol"),
    ("/api/v1/summaries", reply("<html>Bad Gateway</html>", 502), "refused"),
    ("/api/v1/streams/", reply('{"code":100}'), "api_code"),
    ("/api/v1/streams/", reply('{"code":0,"server":"vid-x"}'), "protocol"),
    ("/api/v1/vhosts/", reply('{"code":0,"vhosts":[{"id":"vid-1"}]}'), "protocol"),
    ("/api/v1/vhosts/", reply("not json at all"), "protocol"),
    ("/api/v1/streams/", HANG, "timeout"),
    ("/api/v1/summaries", HANG, "timeout"),
])
async def test_a_failed_read_serves_srs_up_0_and_nothing_else(
    srs: RecordedSrs, path: str, fault: Handler, reason: str
) -> None:
    async with serving(settings(srs.url)) as (_, base):
        assert (await scrape(base)).value("srs_up") == 1
        srs.faults[path] = resolve(srs, fault)
        started = time.monotonic()
        got = await scrape(base)
        took = time.monotonic() - started
        assert got.value("srs_up") == 0
        assert errors(got) == {reason: 1}
        assert got.srs_series() == []  # no stale stream, vhost or SRS series
        assert took < 1.0 + 2.0  # --srs-timeout 1s bounds the read, hang or not
        assert got.value("srs_scrape_duration_seconds") < 1.5

        del srs.faults[path]  # SRS is fine again: so is the next scrape
        got = await scrape(base)
        assert got.value("srs_up") == 1 and got.has("srs_stream_clients")


async def test_a_read_ended_by_any_error_leaves_nothing_old_to_serve_from_cache(
    srs: RecordedSrs,
) -> None:
    """Summaries nested deeper than a JSON decoder goes: whatever error that ends the
    read with, no scrape afterwards, cached or not, may show the last good read's
    figures as current."""
    now = [0.0]
    exporter = Exporter(settings(srs.url, cache_ttl=10.0), clock=lambda: now[0])
    registry = CollectorRegistry()
    registry.register(exporter.collector)
    async with exporter:
        server = OpsServer(("127.0.0.1", 0), [registry], Health(), [exporter.before_scrape])
        await server.start()
        base = f"http://127.0.0.1:{server.port}"
        try:
            assert (await scrape(base)).value("srs_up") == 1
            srs.faults["/api/v1/summaries"] = reply("[" * 100_000)
            replies = []
            async with aiohttp.ClientSession() as http:
                for now[0] in (20.0, 21.0, 25.0):  # a new read, then two from its cache
                    async with http.get(base + "/metrics") as resp:
                        replies.append((resp.status, await resp.text()))
        finally:
            await server.stop()
    assert exporter.reads == 2  # at start, and at 20.0: the others came from the cache
    for status, text in replies:
        if status == 200:
            got = Scrape(text)
            assert got.value("srs_up") == 0 and got.srs_series() == [], text
        else:  # an error nobody foresaw: a failed scrape, never old figures
            assert status == 500


async def test_a_fault_on_a_later_page_fails_the_whole_read() -> None:
    server = RecordedSrs(count=1200)  # 3 pages of 500
    await server.start()
    pages: list[str] = []

    async def later_pages_garbage(request: web.Request) -> web.StreamResponse:
        pages.append(request.query.get("start", ""))
        if request.query.get("start") == "0":
            return server.normal(request)
        return web.Response(text="garbage", content_type="application/json")

    try:
        async with serving(settings(server.url)) as (_, base):
            server.faults["/api/v1/streams/"] = later_pages_garbage
            got = await scrape(base)
    finally:
        await server.stop()
    assert len(pages) == 2 and pages[0] == "0"
    assert got.value("srs_up") == 0 and errors(got) == {"protocol": 1}
    assert got.srs_series() == []


async def test_srs_hanging_at_tcp_level_is_a_timeout() -> None:
    """Accepts connections and never says a word."""
    held: list[asyncio.StreamWriter] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with serving(settings(f"http://127.0.0.1:{port}", srs_timeout=0.5)) as (_, base):
            started = time.monotonic()
            got = await scrape(base)
            took = time.monotonic() - started
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()
    assert got.value("srs_up") == 0 and errors(got) == {"timeout": 2}  # start + scrape
    assert took < 0.5 + 2.0


@pytest.mark.parametrize(("fault", "reason"), [
    (HANG, "timeout"),
    (reply("srs_memory{ 12\n"), "protocol"),
    (reply('{"code":1090}'), None),  # SRS's exporter off: computed, not an error
])
async def test_srs_metrics_failing_leaves_srs_up_and_computes_the_globals(
    srs: RecordedSrs, fault: Handler, reason: str | None
) -> None:
    srs.faults["/metrics"] = resolve(srs, fault)
    async with serving(settings(srs.url)) as (_, base):
        got = await scrape(base)
    assert got.value("srs_up") == 1
    assert errors(got) == ({reason: 2} if reason else {})  # start + scrape
    assert got.value("srs_memory") == 18672  # self_proc_stats: rss 4668 pages * 4
    assert got.samples["srs_build_info"][0].labels["version"] == "6.0.155"
    assert not got.has("srs_clients_total")  # only SRS's own /metrics has it


async def test_srs_metrics_is_read_alone_once_known(srs: RecordedSrs) -> None:
    async with serving(settings(srs.url)) as (_, base):
        for _ in range(3):
            await scrape(base)
    assert srs.requests["/metrics"] == 4
    assert srs.requests.get("/api/v1/self_proc_stats") == 1  # only while finding out
    assert srs.requests.get("/api/v1/versions") == 1


async def test_a_new_srs_process_is_probed_once(srs: RecordedSrs) -> None:
    """SRS gone, then back as a new process: the first read after it looks for its
    /metrics again (it may be another version), and once found, reads it alone."""
    summaries = recorded("api_summaries.json")

    async def new_pid(request: web.Request) -> web.StreamResponse:
        doc = copy.deepcopy(summaries)
        doc["data"]["self"]["pid"] += 1
        return web.json_response(doc)

    async with serving(settings(srs.url)) as (_, base):
        srs.faults["/api/v1/summaries"] = reply("<html>Bad Gateway</html>", 502)
        assert (await scrape(base)).value("srs_up") == 0
        srs.faults["/api/v1/summaries"] = new_pid
        for _ in range(3):
            got = await scrape(base)
            assert got.value("srs_up") == 1 and got.has("srs_clients_total")
    assert srs.requests["/metrics"] == 5  # start, and each of the 4 scrapes
    assert srs.requests["/api/v1/versions"] == 2  # start, and the first read of the new SRS


async def test_srs3_shapes_and_paging_that_ignores_start() -> None:
    server = RecordedSrs(count=600, srs3=True)
    await server.start()
    try:
        async with serving(settings(server.url, max_streams=1000)) as (_, base):
            first = await scrape(base)
            second = await scrape(base)
    finally:
        await server.stop()
    for got in (first, second):
        assert got.value("srs_up") == 1 and errors(got) == {}
        assert len(got.samples["srs_stream_clients"]) == 600
        assert got.value("srs_streams") == 600
        assert got.samples["srs_build_info"][0].labels == {
            "server": "vid-ob891rq", "major": "6", "version": "6.0.155"}
        assert not got.has("srs_clients_total")
    assert server.requests["/metrics"] == 1  # SRS 3 has none: not asked again
