"""SrsApi over real HTTP on 127.0.0.1: recorded SRS replies served byte for byte, SRS's
paging rule over 2,500 streams, and servers that hang, cut replies, lie or are absent."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from agents.errors import PermanentError, RetryableError
from agents.srs.api import (
    SrsApi,
    SrsApiError,
    SrsProtocolError,
    SrsUnavailable,
    decode_reply,
    parse_client,
    parse_list,
    parse_stream,
    parse_summary,
    parse_vhost,
)

pytestmark = pytest.mark.integration

RAW = Path(__file__).parents[1] / "fixtures" / "srs-6.0.155" / "api" / "raw"
FIXTURES = RAW.parents[1]

Responder = Callable[[str, str], Awaitable[bytes]]


@asynccontextmanager
async def raw_server(
    respond: Responder, hold_open: bool = False
) -> AsyncIterator[tuple[str, list[str]]]:
    """A TCP server on 127.0.0.1 writing exactly the bytes `respond` returns, then
    closing the connection as SRS does (`Connection: Close`), or, with `hold_open`,
    keeping it open and silent."""
    requests: list[str] = []
    handlers: set[asyncio.Task[object]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            method, target, _ = head.split(b"\r\n", 1)[0].decode().split(" ", 2)
            requests.append(f"{method} {target}")
            writer.write(await respond(method, target))
            await writer.drain()
            if hold_open:
                await asyncio.sleep(3600)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", requests
    finally:
        server.close()
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        await server.wait_closed()


def recorded(name: str) -> bytes:
    """Recorded headers + body. Content-Length is set from the body: the recorded
    summaries headers (880) belong to a later capture than its body (866 bytes)."""
    headers = (RAW / f"{name}.headers").read_bytes()
    body = (RAW / f"{name}.raw.json").read_bytes() if name != "metrics" else (
        FIXTURES / "exporter-metrics.txt"
    ).read_bytes()
    headers = re.sub(rb"Content-Length: \d+", b"Content-Length: %d" % len(body), headers)
    return headers + body


def srs_json_reply(body: bytes) -> bytes:
    """A reply framed as SRS frames every JSON reply (headers as recorded)."""
    return (
        b"HTTP/1.1 200 OK\r\nConnection: Close\r\nContent-Length: %d\r\n"
        b"Content-Type: application/json\r\nServer: SRS/6.0.155(Hang)\r\n\r\n" % len(body)
    ) + body


RECORDED_ROUTES = {
    "/api/v1/versions": "api_versions",
    "/api/v1/summaries": "api_summaries",
    "/api/v1/self_proc_stats": "api_self_proc_stats",
    "/api/v1/vhosts/": "api_vhosts",
    "/api/v1/streams/": "api_streams",
    "/api/v1/clients/": "api_clients",
    "/metrics": "metrics",
}


async def serve_recorded(method: str, target: str) -> bytes:
    name = RECORDED_ROUTES.get(target.split("?", maxsplit=1)[0])
    if method != "GET" or name is None:
        return b"HTTP/1.1 404 Not Found\r\nConnection: Close\r\nContent-Length: 0\r\n\r\n"
    return recorded(name)


def parsed(name: str, key: str, parse: Callable[..., object]) -> list[object]:
    doc = decode_reply((RAW / f"{name}.raw.json").read_bytes(), name)
    return list(parse_list(doc, key, name, parse))


async def test_recorded_replies() -> None:
    async with raw_server(serve_recorded) as (url, requests), SrsApi(url, timeout=5) as api:
        version = await api.versions()
        summary = await api.summaries()
        stats = await api.self_proc_stats()
        vhosts = await api.vhosts()
        streams = await api.streams()
        clients = await api.clients()
        metrics = await api.builtin_metrics()

    assert version.version == "6.0.155" and version.service_pid == "21437"
    assert summary == parse_summary(
        decode_reply((RAW / "api_summaries.raw.json").read_bytes(), "s")
    )
    assert stats.rss_pages == 4668
    assert vhosts == parsed("api_vhosts", "vhosts", parse_vhost)
    assert streams == parsed("api_streams", "streams", parse_stream)
    assert [s.name for s in streams] == ["s1", "s2"]
    assert clients == parsed("api_clients", "clients", parse_client)
    assert "srs_send_bytes_total 479463" in metrics
    # both lists fit one page: one request each, asking for a full page from 0
    assert requests.count("GET /api/v1/streams/?start=0&count=500") == 1
    assert requests.count("GET /api/v1/clients/?start=0&count=500") == 1
    assert len(requests) == 7


def atoi(text: str) -> int:
    """C atoi: optional spaces and sign, then digits; anything else stops (0 if none)."""
    match = re.match(r"\s*([+-]?\d+)", text)
    return int(match.group(1)) if match else 0


class PagingSrs:
    """An aiohttp app with SRS 6.0's list endpoints over synthetic streams/clients.

    The window is SRS's, srs_app_http_api.cpp (v6.0-a1) lines 786-789:
        int start = srs_max(0, atoi(rstart.c_str()));
        int count = srs_max(10, atoi(rcount.c_str()));
    and srs_app_statistic.cpp lines 606-627 (dumps_streams) walk the id-keyed std::map
    from begin(), skipping i < start, stopping at i == start + count.
    """

    def __init__(self, n: int) -> None:
        self.streams = {f"vid-{i:07x}": i for i in range(n)}
        self.requests: list[tuple[int, int]] = []
        self.before_reply: Callable[[int], None] = lambda start: None

    def window(self, start_text: str, count_text: str) -> list[str]:
        start = max(0, atoi(start_text))
        count = max(10, atoi(count_text))
        self.requests.append((start, count))
        self.before_reply(start)
        return sorted(self.streams)[start : start + count]

    def stream_json(self, sid: str) -> dict[str, object]:
        n = self.streams[sid]
        return {
            "id": sid, "name": f"s{n}", "vhost": "vid-v1", "app": "live",
            "tcUrl": "rtmp://127.0.0.1:1935/live", "url": f"/live/s{n}",
            "live_ms": 1, "clients": 1, "frames": n, "send_bytes": 0, "recv_bytes": n,
            "kbps": {"recv_30s": 1, "send_30s": 0},
            "publish": {"active": True, "cid": f"c{n}"}, "video": None, "audio": None,
        }

    def client_json(self, sid: str) -> dict[str, object]:
        n = self.streams[sid]
        return {
            "id": f"c{n:07x}", "vhost": "vid-v1", "stream": sid, "ip": "127.0.0.1",
            "pageUrl": "", "swfUrl": "", "tcUrl": "rtmp://127.0.0.1:1935/live",
            "url": f"/live/s{n}", "name": f"s{n}", "type": "fmle-publish", "publish": True,
            "alive": 1.0, "send_bytes": 0, "recv_bytes": 0,
            "kbps": {"recv_30s": 0, "send_30s": 0},
        }

    def app(self) -> web.Application:
        async def streams(request: web.Request) -> web.Response:
            q = request.query
            items = [self.stream_json(s) for s in self.window(q.get("start", ""),
                                                              q.get("count", ""))]
            return web.json_response({"code": 0, "server": "vid-x", "streams": items})

        async def clients(request: web.Request) -> web.Response:
            q = request.query
            items = [self.client_json(s) for s in self.window(q.get("start", ""),
                                                              q.get("count", ""))]
            return web.json_response({"code": 0, "server": "vid-x", "clients": items})

        app = web.Application()
        app.router.add_get("/api/v1/streams/", streams)
        app.router.add_get("/api/v1/clients/", clients)
        return app


@asynccontextmanager
async def app_server(app: web.Application) -> AsyncIterator[str]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_pages_through_2500_streams_and_clients() -> None:
    srs = PagingSrs(2500)
    async with app_server(srs.app()) as url, SrsApi(url, timeout=5, page_size=500) as api:
        streams = await api.streams()
        stream_requests = list(srs.requests)
        clients = await api.clients()
    assert len(streams) == 2500
    assert sorted(s.id for s in streams) == sorted(srs.streams)
    assert len(clients) == 2500
    assert {c.stream_id for c in clients} == set(srs.streams)
    assert stream_requests == [(0, 500), (484, 500), (968, 500), (1452, 500), (1936, 500),
                               (2420, 500)]


async def test_without_count_srs_returns_only_10() -> None:
    """The reason for paging: a bare GET returns 10 of the 2,500."""
    srs = PagingSrs(2500)
    async with (
        app_server(srs.app()) as url,
        aiohttp.ClientSession() as http,
        http.get(url + "/api/v1/streams/") as resp,
    ):
        body = await resp.json()
    assert len(body["streams"]) == 10


async def test_streams_churning_between_pages() -> None:
    """Streams vanish ahead of the window and new ones appear between page requests:
    every stream present throughout is returned, none twice."""
    srs = PagingSrs(2500)
    born = iter(range(10_000, 20_000))

    def churn(start: int) -> None:
        if start == 0:
            return
        ordered = sorted(srs.streams)
        for gone in ordered[:5]:
            del srs.streams[gone]
        for _ in range(5):
            srs.streams[f"vid-{next(born):07x}"] = 0

    srs.before_reply = churn
    original = set(srs.streams)
    async with app_server(srs.app()) as url, SrsApi(url, timeout=5, page_size=100) as api:
        streams = await api.streams()
    found = [s.id for s in streams]
    assert len(found) == len(set(found))
    assert original & set(srs.streams) <= set(found)


async def test_server_ignoring_paging_stops() -> None:
    """SRS 3's streams/ ignores start/count and returns every stream every time."""
    all_streams = PagingSrs(30)
    body = json.dumps({
        "code": 0, "server": "vid-x",
        "streams": [all_streams.stream_json(s) for s in sorted(all_streams.streams)],
    }).encode()

    async def respond(method: str, target: str) -> bytes:
        return srs_json_reply(body)

    async with raw_server(respond) as (url, requests), SrsApi(url, 5, page_size=10) as api:
        streams = await api.streams()
    assert len(streams) == 30
    assert len(requests) == 2


async def test_hanging_server_times_out() -> None:
    async def silence(method: str, target: str) -> bytes:
        return b""

    async with (
        raw_server(silence, hold_open=True) as (url, requests),
        SrsApi(url, timeout=0.5) as api,
    ):
        began = time.monotonic()
        with pytest.raises(SrsUnavailable) as info:
            await api.versions()
        elapsed = time.monotonic() - began
    assert requests == ["GET /api/v1/versions"]
    assert elapsed < 0.5 + 3.0  # generous margin: bounded, not precise
    assert url + "/api/v1/versions" in str(info.value)
    assert "no reply within 0.5s" in str(info.value)
    assert isinstance(info.value, RetryableError)


async def test_body_that_stalls_times_out() -> None:
    """Headers promise 1000 bytes; 10 come, then nothing while the socket stays open."""

    async def trickle(method: str, target: str) -> bytes:
        return b'HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n{"code":0,'

    async with (
        raw_server(trickle, hold_open=True) as (url, requests),
        SrsApi(url, timeout=0.5) as api,
    ):
        with pytest.raises(SrsUnavailable, match="/api/v1/summaries"):
            await api.summaries()
    assert requests == ["GET /api/v1/summaries"]


async def test_reply_cut_short_is_unavailable() -> None:
    """Headers promising more than the body, then close (SRS dying mid-reply)."""
    headers = (RAW / "api_summaries.headers").read_bytes()  # says 880
    body = (RAW / "api_summaries.raw.json").read_bytes()  # 866 bytes

    async def respond(method: str, target: str) -> bytes:
        return headers + body

    async with raw_server(respond) as (url, _), SrsApi(url, timeout=5) as api:
        with pytest.raises(SrsUnavailable, match="/api/v1/summaries"):
            await api.summaries()


async def test_malformed_json() -> None:
    async def respond(method: str, target: str) -> bytes:
        return srs_json_reply(b'{"code":0,"streams":[{"id":')

    async with raw_server(respond) as (url, _), SrsApi(url, timeout=5) as api:
        with pytest.raises(SrsProtocolError, match=r"/api/v1/streams/.*not JSON") as info:
            await api.streams()
    assert isinstance(info.value, PermanentError)


async def test_not_http() -> None:
    async def respond(method: str, target: str) -> bytes:
        return b"SSH-2.0-OpenSSH_9.2\r\n"

    async with raw_server(respond) as (url, _), SrsApi(url, timeout=5) as api:
        with pytest.raises(SrsProtocolError, match="/api/v1/versions: bad HTTP reply"):
            await api.versions()


@pytest.mark.parametrize(("status", "error"), [(404, SrsProtocolError), (401, SrsProtocolError),
                                               (503, SrsUnavailable)])
async def test_http_status(status: int, error: type[Exception]) -> None:
    async def respond(method: str, target: str) -> bytes:
        return b"HTTP/1.1 %d X\r\nConnection: Close\r\nContent-Length: 0\r\n\r\n" % status

    async with raw_server(respond) as (url, _), SrsApi(url, timeout=5) as api:
        with pytest.raises(error, match=f"HTTP {status}"):
            await api.versions()


async def test_connection_refused() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    async with SrsApi(url, timeout=5) as api:
        began = time.monotonic()
        with pytest.raises(SrsUnavailable) as info:
            await api.streams()
    assert time.monotonic() - began < 5
    assert f"127.0.0.1:{port}" in str(info.value)


# Replies recorded from SRS 6.0.155 with raw_api disabled, and with it enabled.
RAW_DISABLED = b'{"code":1061}'
EXPORTER_DISABLED = b'{"code":1090}'
RELOAD_FETCH = b'{"code":0,"data":{"err":0,"msg":"Success","state":90,"rid":"r1x270b"}}'
RAW_CONFIG = (
    b'{"code":0,"http_api":{"enabled":true,"listen":"127.0.0.1:1985","crossdomain":true,'
    b'"raw_api":{"enabled":true,"allow_reload":true,"allow_query":false,"allow_update":false}}}'
)


async def test_raw_api_calls() -> None:
    replies = {
        "/api/v1/raw?rpc=reload": b'{"code":0}',
        "/api/v1/raw?rpc=reload-fetch": RELOAD_FETCH,
        "/api/v1/raw?rpc=raw": RAW_CONFIG,
    }

    async def respond(method: str, target: str) -> bytes:
        return srs_json_reply(replies[target])

    async with raw_server(respond) as (url, requests), SrsApi(url, timeout=5) as api:
        await api.reload()
        state = await api.reload_fetch()
        config = await api.raw_api_config()
    assert requests == [f"GET {t}" for t in replies]
    assert state.rid == "r1x270b" and state.succeeded
    assert config.allow_reload


async def test_raw_api_disabled() -> None:
    async def respond(method: str, target: str) -> bytes:
        return srs_json_reply(EXPORTER_DISABLED if target == "/metrics" else RAW_DISABLED)

    async with raw_server(respond) as (url, _), SrsApi(url, timeout=5) as api:
        with pytest.raises(SrsApiError, match="raw API disabled") as info:
            await api.reload()
        assert info.value.code == 1061
        assert info.value.path == "/api/v1/raw?rpc=reload"
        with pytest.raises(SrsApiError, match=r"rpc=reload-fetch replied code 1061"):
            await api.reload_fetch()
        with pytest.raises(SrsApiError, match="exporter disabled"):
            await api.builtin_metrics()


async def test_kick_client() -> None:
    async def respond(method: str, target: str) -> bytes:
        if method == "DELETE" and target == "/api/v1/clients/6021pd75":
            return srs_json_reply(b'{"code":0,"server":"vid-ob891rq"}')
        return srs_json_reply(b'{"code":2049}')

    async with raw_server(respond) as (url, requests), SrsApi(url, timeout=5) as api:
        await api.kick_client("6021pd75")
        with pytest.raises(SrsApiError, match="client not found"):
            await api.kick_client("gone/../x")
    assert requests == ["DELETE /api/v1/clients/6021pd75", "DELETE /api/v1/clients/gone%2F..%2Fx"]


async def test_used_outside_context() -> None:
    api = SrsApi("http://127.0.0.1:1", timeout=1)
    with pytest.raises(RuntimeError, match="async with"):
        await api.versions()
