"""Client for SRS's HTTP API v1 (port 1985), with typed, version-tolerant results.

Replies are parsed by pure functions (`decode_reply`, `parse_*`) kept apart from the
I/O in `SrsApi`, so they are tested on recorded replies.

What SRS does that shapes this module (source: trunk/src/app/srs_app_http_api.cpp,
srs_app_statistic.cpp; behaviour recorded from SRS 6.0.155):
- Every JSON reply is HTTP 200; a failure shows only as `code != 0` in the body.
- `streams/` and `clients/` return `count = max(10, ?count)` items from `?start=`
  (10 by default), in the order of an id-keyed std::map: we page through them all.
- Fields differ between versions; the version that first has a field is noted beside
  it below (read from the 3.0, 4.0, 5.0, 6.0 (v6.0-a1) and 7.0 (develop) sources).
  A field newer than SRS 3 is Optional and None when absent; extra fields are ignored.
  A field every version has is required: its absence means the reply is not SRS's.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import quote

import aiohttp

from agents.errors import PermanentError, RetryableError

# Meanings of the codes SRS puts in `code` (trunk/src/kernel/srs_kernel_error.hpp).
ERROR_MEANINGS: dict[int, str] = {
    100: "test error (the /api/v1/tests/errors endpoint)",
    # DELETE clients/<id> of a client without a connection to close (6.0)
    400: "bad request: nothing to kick for this client",
    1023: "config invalid",
    1060: "bad or unknown raw rpc (SRS before 5.0 has no rpc=reload-fetch)",
    1061: "raw API disabled: set http_api { raw_api { enabled on; allow_reload on; } }",
    1062: "raw API call not allowed",
    1063: "raw API parameters invalid",
    1090: "exporter disabled: set exporter { enabled on; }",
    2014: "vhost not found",
    2048: "stream not found",
    2049: "client not found",
}

DEFAULT_PAGE_SIZE = 500
SRS_MIN_COUNT = 10  # SRS answers max(10, ?count) items: a smaller page size would break paging


class SrsApiError(PermanentError):
    """SRS answered, with `code != 0`: it refused or did not find what was asked."""

    def __init__(self, code: int, path: str, detail: str = "") -> None:
        self.code = code
        self.path = path
        meaning = ERROR_MEANINGS.get(code, "unknown error code")
        text = f"SRS API {path} replied code {code} ({meaning})"
        super().__init__(f"{text}: {detail}" if detail else text)


class SrsUnavailable(RetryableError):
    """SRS could not be reached or did not answer in time (it may be starting or quitting)."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        super().__init__(f"SRS API {url} unavailable: {reason}")


class SrsProtocolError(PermanentError):
    """SRS answered something that is not an SRS API reply (not JSON, or the wrong shape)."""

    def __init__(self, path: str, detail: str) -> None:
        self.path = path
        super().__init__(f"SRS API {path}: {detail}")


# ---------------------------------------------------------------------------
# Typed results
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Version:
    """GET /api/v1/versions; the envelope's ids label SRS's own srs_build_info."""

    major: int
    minor: int
    revision: int
    version: str
    server_id: str | None = None  # envelope `server`, persisted across restarts (3.0+)
    service_id: str | None = None  # envelope `service`, new per process start (5.0+)
    service_pid: str | None = None  # envelope `pid`, a string (5.0+)


@dataclass(frozen=True)
class ProcessSummary:
    """`data.self` of /api/v1/summaries: SRS's own process (all fields 3.0+)."""

    version: str | None
    pid: int | None
    ppid: int | None
    argv: str | None
    cwd: str | None
    mem_kbyte: int | None  # getrusage ru_maxrss: PEAK RSS in KiB (srs_memory is current RSS)
    mem_percent: float | None
    # A ratio although named percent: 0.02 means 2 %. SRS's srs_cpu_percent is this * 100.
    cpu_percent: float | None
    srs_uptime: int | None  # seconds


@dataclass(frozen=True)
class SystemSummary:
    """`data.system` of /api/v1/summaries: the host as SRS sees it (all fields 3.0+)."""

    cpu_percent: float | None  # a ratio, like ProcessSummary.cpu_percent
    cpus: int | None
    cpus_online: int | None
    mem_ram_kbyte: int | None
    mem_ram_percent: float | None
    load_1m: float | None
    load_5m: float | None
    load_15m: float | None
    uptime: float | None
    # SRS's global byte counters, the ones behind srs_send_bytes_total and
    # srs_receive_bytes_total, as last sampled at srs_sample_time (ms). The exact live
    # value is the sum of every vhost's send_bytes/recv_bytes (see byte_totals).
    srs_sample_time: int | None
    srs_send_bytes: int | None
    srs_recv_bytes: int | None
    conn_srs: int | None  # SRS's client count at the last sample
    conn_sys: int | None
    conn_sys_et: int | None
    conn_sys_tw: int | None


@dataclass(frozen=True)
class Summary:
    """GET /api/v1/summaries."""

    ok: bool | None
    now_ms: int | None
    process: ProcessSummary
    system: SystemSummary


@dataclass(frozen=True)
class Vhost:
    """An item of GET /api/v1/vhosts/ (every field 3.0+). A vhost is listed once it had a stream."""

    id: str
    name: str
    enabled: bool
    clients: int
    streams: int
    send_bytes: int
    recv_bytes: int
    kbps_recv: int  # kbps over 30 s
    kbps_send: int
    hls_enabled: bool
    hls_fragment: float | None  # seconds; present only when HLS is enabled


@dataclass(frozen=True)
class VideoInfo:
    codec: str  # e.g. H264, HEVC
    profile: str | None  # "Other" for codecs other than AVC/HEVC (6.0+)
    level: str | None
    width: int | None
    height: int | None


@dataclass(frozen=True)
class AudioInfo:
    codec: str  # e.g. AAC, MP3, Opus
    sample_rate: int | None
    channel: int | None
    profile: str | None


@dataclass(frozen=True)
class Stream:
    """An item of GET /api/v1/streams/."""

    id: str
    name: str
    vhost_id: str  # the vhost's id (Vhost.id), not its name
    app: str
    url: str | None  # "/live/s1" (5.0+)
    tc_url: str | None  # (5.0+)
    clients: int  # publisher + players, hls-play sessions included
    frames: int
    send_bytes: int
    recv_bytes: int
    kbps_recv: int
    kbps_send: int
    publish_active: bool
    publish_cid: str | None  # publisher's client id; 6.0+ omits it with no publisher
    video: VideoInfo | None
    audio: AudioInfo | None


@dataclass(frozen=True)
class Client:
    """An item of GET /api/v1/clients/ (RTMP, HTTP-FLV players, hls-play sessions...)."""

    id: str
    vhost_id: str
    stream_id: str
    ip: str
    url: str
    name: str | None  # stream name (5.0+)
    # 6.0: rtmp-play, flv-play, hls-play, rtc-play, srt-play, fmle-publish, flash-publish,
    # haivision-publish, rtc-publish, srt-publish (srs_client_type_string)
    type: str
    publish: bool
    alive: float  # seconds since the client connected
    send_bytes: int | None  # (5.0+)
    recv_bytes: int | None  # (5.0+)
    kbps_recv: int | None  # (4.0+)
    kbps_send: int | None  # (4.0+)
    tc_url: str | None = None


# SrsReloadState (trunk/src/app/srs_app_config.hpp, 5.0+).
RELOAD_STATES = {0: "init", 10: "parsing", 20: "transforming", 30: "applying", 90: "finished"}


@dataclass(frozen=True)
class ReloadState:
    """GET /api/v1/raw?rpc=reload-fetch (5.0+): the outcome of the latest reload.

    `rid` changes on every reload (signal, API or inotify), so poll until it differs.
    """

    err: int  # 0 on success, else an error code (1023: config invalid)
    msg: str
    state: int  # RELOAD_STATES; 90 once finished
    rid: str

    @property
    def succeeded(self) -> bool:
        return self.err == 0 and self.state == 90


@dataclass(frozen=True)
class RawApiConfig:
    """GET /api/v1/raw?rpc=raw: SRS's http_api settings (same shape 3.0 to 7.0)."""

    http_api_enabled: bool
    listen: str
    crossdomain: bool
    raw_api_enabled: bool
    allow_reload: bool
    allow_query: bool
    allow_update: bool


@dataclass(frozen=True)
class SelfProcStats:
    """Some of GET /api/v1/self_proc_stats (/proc/self/stat as SRS read it, 3.0+)."""

    pid: int | None
    state: str | None
    rss_pages: int | None  # SRS's srs_memory gauge is rss_pages * 4 (KiB, 4 KiB pages)
    vsize: int | None  # bytes
    num_threads: int | None
    percent: float | None  # CPU ratio; srs_cpu_percent is this * 100


def byte_totals(vhosts: Iterable[Vhost]) -> tuple[int, int]:
    """(sent, received) bytes of SRS as a whole, equal to srs_send_bytes_total and
    srs_receive_bytes_total: SRS adds each delta to the global counter and to the
    client's vhost, and never forgets a vhost (srs_app_statistic.cpp, on_stream_close
    keeps vhosts)."""
    sent = received = 0
    for vhost in vhosts:
        sent += vhost.send_bytes
        received += vhost.recv_bytes
    return sent, received


# ---------------------------------------------------------------------------
# Pure parsing
# ---------------------------------------------------------------------------


class _Obj:
    """A JSON object being read, with the path to it for error messages.

    req_* raise SrsProtocolError when the key is missing or null; opt_* return None.
    """

    def __init__(self, raw: Any, where: str, endpoint: str) -> None:
        if not isinstance(raw, dict):
            raise SrsProtocolError(endpoint, f"{where}: expected an object, got {_kind(raw)}")
        self.raw: dict[str, Any] = raw
        self.where = where
        self.endpoint = endpoint

    def _bad(self, key: str, expected: str, value: Any) -> SrsProtocolError:
        return SrsProtocolError(
            self.endpoint, f"{self.where}.{key}: expected {expected}, got {_kind(value)}"
        )

    def _req(self, key: str) -> Any:
        if key not in self.raw:
            raise SrsProtocolError(self.endpoint, f"{self.where}.{key}: missing")
        return self.raw[key]

    def opt_obj(self, key: str) -> _Obj | None:
        value = self.raw.get(key)
        return None if value is None else _Obj(value, f"{self.where}.{key}", self.endpoint)

    def req_obj(self, key: str) -> _Obj:
        return _Obj(self._req(key), f"{self.where}.{key}", self.endpoint)

    def req_list(self, key: str) -> list[Any]:
        value = self._req(key)
        if not isinstance(value, list):
            raise self._bad(key, "a list", value)
        return value

    def _str(self, key: str, value: Any) -> str:
        if isinstance(value, str):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return f"{value}"  # old SRS 3 releases sent ids as integers
        raise self._bad(key, "a string", value)

    def _int(self, key: str, value: Any) -> int:
        number = value
        if isinstance(value, float) and value.is_integer():
            number = int(value)
        elif isinstance(value, str) and len(value) <= 24 and value.strip().lstrip("-").isdecimal():
            number = int(value)  # the envelope's pid is a string
        if isinstance(number, int) and not isinstance(number, bool) and -(2**63) <= number < 2**64:
            return number  # SRS writes int64/uint64
        raise self._bad(key, "an integer", value)

    def _float(self, key: str, value: Any) -> float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise self._bad(key, "a number", value)

    def _bool(self, key: str, value: Any) -> bool:
        if isinstance(value, bool):
            return value
        raise self._bad(key, "true or false", value)

    def req_str(self, key: str) -> str:
        return self._str(key, self._req(key))

    def opt_str(self, key: str) -> str | None:
        value = self.raw.get(key)
        return None if value is None else self._str(key, value)

    def req_int(self, key: str) -> int:
        return self._int(key, self._req(key))

    def opt_int(self, key: str) -> int | None:
        value = self.raw.get(key)
        return None if value is None else self._int(key, value)

    def req_float(self, key: str) -> float:
        return self._float(key, self._req(key))

    def opt_float(self, key: str) -> float | None:
        value = self.raw.get(key)
        return None if value is None else self._float(key, value)

    def req_bool(self, key: str) -> bool:
        return self._bool(key, self._req(key))

    def opt_bool(self, key: str) -> bool | None:
        value = self.raw.get(key)
        return None if value is None else self._bool(key, value)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    text = json.dumps(value, default=str)
    return f"{type(value).__name__} {text[:60]}{'...' if len(text) > 60 else ''}"


def decode_reply(body: bytes, path: str) -> dict[str, Any]:
    """Body of an SRS API reply -> its JSON object; raises SrsApiError if `code != 0`."""
    try:
        # strict=False: SRS writes control characters in strings raw (json_serialize_string).
        doc = json.loads(body.decode("utf-8", errors="replace"), strict=False)
    except json.JSONDecodeError as exc:
        snippet = body[:80].decode("utf-8", errors="replace")
        detail = f"reply is not JSON ({exc.msg} at {exc.pos}): {snippet!r}"
        raise SrsProtocolError(path, detail) from None
    except (ValueError, RecursionError) as exc:  # an int of 4300+ digits; nesting too deep
        snippet = body[:80].decode("utf-8", errors="replace")
        raise SrsProtocolError(path, f"reply is not SRS's JSON ({exc}): {snippet!r}") from None
    top = _Obj(doc, "reply", path)
    code = top.req_int("code")
    if code != 0:
        raise SrsApiError(code, path)
    return top.raw


def parse_version(doc: dict[str, Any], path: str = "/api/v1/versions") -> Version:
    top = _Obj(doc, "reply", path)
    data = top.req_obj("data")
    return Version(
        major=data.req_int("major"),
        minor=data.req_int("minor"),
        revision=data.req_int("revision"),
        version=data.req_str("version"),
        server_id=top.opt_str("server"),
        service_id=top.opt_str("service"),
        service_pid=top.opt_str("pid"),
    )


def parse_summary(doc: dict[str, Any], path: str = "/api/v1/summaries") -> Summary:
    data = _Obj(doc, "reply", path).req_obj("data")
    own = data.req_obj("self")
    system = data.req_obj("system")
    return Summary(
        ok=data.opt_bool("ok"),
        now_ms=data.opt_int("now_ms"),
        process=ProcessSummary(
            version=own.opt_str("version"),
            pid=own.opt_int("pid"),
            ppid=own.opt_int("ppid"),
            argv=own.opt_str("argv"),
            cwd=own.opt_str("cwd"),
            mem_kbyte=own.opt_int("mem_kbyte"),
            mem_percent=own.opt_float("mem_percent"),
            cpu_percent=own.opt_float("cpu_percent"),
            srs_uptime=own.opt_int("srs_uptime"),
        ),
        system=SystemSummary(
            cpu_percent=system.opt_float("cpu_percent"),
            cpus=system.opt_int("cpus"),
            cpus_online=system.opt_int("cpus_online"),
            mem_ram_kbyte=system.opt_int("mem_ram_kbyte"),
            mem_ram_percent=system.opt_float("mem_ram_percent"),
            load_1m=system.opt_float("load_1m"),
            load_5m=system.opt_float("load_5m"),
            load_15m=system.opt_float("load_15m"),
            uptime=system.opt_float("uptime"),
            srs_sample_time=system.opt_int("srs_sample_time"),
            srs_send_bytes=system.opt_int("srs_send_bytes"),
            srs_recv_bytes=system.opt_int("srs_recv_bytes"),
            conn_srs=system.opt_int("conn_srs"),
            conn_sys=system.opt_int("conn_sys"),
            conn_sys_et=system.opt_int("conn_sys_et"),
            conn_sys_tw=system.opt_int("conn_sys_tw"),
        ),
    )


def _kbps(item: _Obj) -> tuple[int, int]:
    """(recv, send) kbps over 30 s."""
    kbps = item.req_obj("kbps")
    return kbps.req_int("recv_30s"), kbps.req_int("send_30s")


def parse_vhost(raw: Any, where: str, path: str) -> Vhost:
    item = _Obj(raw, where, path)
    recv, send = _kbps(item)
    hls = item.opt_obj("hls")
    return Vhost(
        id=item.req_str("id"),
        name=item.req_str("name"),
        enabled=item.req_bool("enabled"),
        clients=item.req_int("clients"),
        streams=item.req_int("streams"),
        send_bytes=item.req_int("send_bytes"),
        recv_bytes=item.req_int("recv_bytes"),
        kbps_recv=recv,
        kbps_send=send,
        hls_enabled=bool(hls and hls.opt_bool("enabled")),
        hls_fragment=hls.opt_float("fragment") if hls else None,
    )


def parse_stream(raw: Any, where: str, path: str) -> Stream:
    item = _Obj(raw, where, path)
    recv, send = _kbps(item)
    publish = item.req_obj("publish")
    cid = publish.opt_str("cid")
    video = item.opt_obj("video")
    audio = item.opt_obj("audio")
    return Stream(
        id=item.req_str("id"),
        name=item.req_str("name"),
        vhost_id=item.req_str("vhost"),
        app=item.req_str("app"),
        url=item.opt_str("url"),
        tc_url=item.opt_str("tcUrl"),
        clients=item.req_int("clients"),
        frames=item.req_int("frames"),
        send_bytes=item.req_int("send_bytes"),
        recv_bytes=item.req_int("recv_bytes"),
        kbps_recv=recv,
        kbps_send=send,
        publish_active=publish.req_bool("active"),
        publish_cid=cid or None,  # SRS before 6.0 sent "" with no publisher
        video=None
        if video is None
        else VideoInfo(
            codec=video.req_str("codec"),
            profile=video.opt_str("profile"),
            level=video.opt_str("level"),
            width=video.opt_int("width"),
            height=video.opt_int("height"),
        ),
        audio=None
        if audio is None
        else AudioInfo(
            codec=audio.req_str("codec"),
            sample_rate=audio.opt_int("sample_rate"),
            channel=audio.opt_int("channel"),
            profile=audio.opt_str("profile"),
        ),
    )


def parse_client(raw: Any, where: str, path: str) -> Client:
    item = _Obj(raw, where, path)
    recv, send = _kbps(item) if "kbps" in item.raw else (None, None)  # 4.0+
    return Client(
        id=item.req_str("id"),
        vhost_id=item.req_str("vhost"),
        stream_id=item.req_str("stream"),
        ip=item.req_str("ip"),
        url=item.req_str("url"),
        name=item.opt_str("name"),
        type=item.req_str("type"),
        publish=item.req_bool("publish"),
        alive=item.req_float("alive"),
        send_bytes=item.opt_int("send_bytes"),
        recv_bytes=item.opt_int("recv_bytes"),
        kbps_recv=recv,
        kbps_send=send,
        tc_url=item.opt_str("tcUrl"),
    )


T = TypeVar("T")


def parse_list(
    doc: dict[str, Any], key: str, path: str, parse: Callable[[Any, str, str], T]
) -> list[T]:
    """The `key` list of a reply (vhosts, streams, clients), each item parsed."""
    items = _Obj(doc, "reply", path).req_list(key)
    return [parse(raw, f"{key}[{index}]", path) for index, raw in enumerate(items)]


def parse_reload_state(
    doc: dict[str, Any], path: str = "/api/v1/raw?rpc=reload-fetch"
) -> ReloadState:
    data = _Obj(doc, "reply", path).req_obj("data")
    return ReloadState(
        err=data.req_int("err"),
        msg=data.opt_str("msg") or "",
        state=data.req_int("state"),
        rid=data.req_str("rid"),
    )


def parse_raw_api_config(doc: dict[str, Any], path: str = "/api/v1/raw?rpc=raw") -> RawApiConfig:
    http_api = _Obj(doc, "reply", path).req_obj("http_api")
    raw_api = http_api.req_obj("raw_api")
    return RawApiConfig(
        http_api_enabled=http_api.req_bool("enabled"),
        listen=http_api.req_str("listen"),
        crossdomain=http_api.req_bool("crossdomain"),
        raw_api_enabled=raw_api.req_bool("enabled"),
        allow_reload=raw_api.req_bool("allow_reload"),
        allow_query=raw_api.req_bool("allow_query"),
        allow_update=raw_api.req_bool("allow_update"),
    )


def parse_self_proc_stats(
    doc: dict[str, Any], path: str = "/api/v1/self_proc_stats"
) -> SelfProcStats:
    data = _Obj(doc, "reply", path).req_obj("data")
    return SelfProcStats(
        pid=data.opt_int("pid"),
        state=data.opt_str("state"),
        rss_pages=data.opt_int("rss"),
        vsize=data.opt_int("vsize"),
        num_threads=data.opt_int("num_threads"),
        percent=data.opt_float("percent"),
    )


# ---------------------------------------------------------------------------
# Paging
# ---------------------------------------------------------------------------


class Paging:
    """Which window to ask for next, and when to stop, for SRS's start/count lists.

    SRS returns items [start, start+count) of a list that may change between requests.
    Windows overlap by `overlap` items, so up to that many items vanishing before the
    window between two requests cannot push a still-present item past us; items that
    appear twice are kept once (first sighting). Paging stops at a short page, or at a
    full page with nothing new, which is how a server that ignores `start` (SRS 3's
    streams/) answers.
    """

    def __init__(self, page_size: int, overlap: int | None = None) -> None:
        if page_size < SRS_MIN_COUNT:
            raise ValueError(f"page_size must be at least {SRS_MIN_COUNT} (SRS's minimum count)")
        self.page_size = page_size
        self.overlap = min(page_size // 4, 16) if overlap is None else overlap
        if not 0 <= self.overlap < page_size:
            raise ValueError("overlap must be at least 0 and below page_size")
        self.start = 0
        self.done = False
        self.seen: set[str] = set()

    def feed(self, ids: list[str]) -> list[bool]:
        """Take one page's ids; return, per id, whether it is new. Updates `done`/`start`."""
        fresh = []
        for item_id in ids:
            new = item_id not in self.seen
            self.seen.add(item_id)
            fresh.append(new)
        if len(ids) < self.page_size or not any(fresh):
            self.done = True
        else:
            self.start += self.page_size - self.overlap
        return fresh


# ---------------------------------------------------------------------------
# I/O
# ---------------------------------------------------------------------------

# 502/503/504 come from a proxy in front of a restarting SRS; SRS itself answers 200.
_RETRYABLE_STATUS = frozenset({502, 503, 504})


class SrsApi:
    """aiohttp client of one SRS; every request, connect included, bounded by `timeout`.

    Use as `async with SrsApi(url, timeout=2.0) as api: await api.streams()`.
    """

    def __init__(
        self, base_url: str, timeout: float, page_size: int = DEFAULT_PAGE_SIZE
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        Paging(page_size)  # validates page_size now, not at the first list call
        self.page_size = page_size
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> SrsApi:
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(
                total=self.timeout, connect=self.timeout, sock_connect=self.timeout,
                sock_read=self.timeout,
            ),
            trust_env=False,
            # SRS answers `Connection: Close` to everything; never try to reuse a socket.
            connector=aiohttp.TCPConnector(force_close=True),
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _request(self, method: str, path: str) -> tuple[int, bytes]:
        if self._session is None:
            raise RuntimeError("SrsApi used outside 'async with'")
        url = self.base_url + path
        try:
            # asyncio.timeout backs aiohttp's own timeouts, so no phase can hang.
            async with asyncio.timeout(self.timeout), self._session.request(
                method, url, allow_redirects=False
            ) as resp:
                return resp.status, await resp.read()
        except TimeoutError:
            raise SrsUnavailable(url, f"no reply within {self.timeout:g}s") from None
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
            raise SrsUnavailable(url, _describe(exc)) from exc
        except aiohttp.ClientError as exc:
            raise SrsProtocolError(path, f"bad HTTP reply: {_describe(exc)}") from exc

    async def _call(self, path: str, method: str = "GET") -> dict[str, Any]:
        status, body = await self._request(method, path)
        if status != 200:
            if status in _RETRYABLE_STATUS:
                raise SrsUnavailable(self.base_url + path, f"HTTP {status}")
            hint = " (is http_api auth on? it is not supported)" if status == 401 else ""
            raise SrsProtocolError(path, f"HTTP {status}, SRS answers 200{hint}")
        return decode_reply(body, path)

    async def _list(
        self, path: str, key: str, parse: Callable[[Any, str, str], T], item_id: Callable[[T], str]
    ) -> list[T]:
        paging = Paging(self.page_size)
        result: list[T] = []
        while not paging.done:
            page_path = f"{path}?start={paging.start}&count={paging.page_size}"
            items = parse_list(await self._call(page_path), key, page_path, parse)
            fresh = paging.feed([item_id(item) for item in items])
            result.extend(item for item, new in zip(items, fresh, strict=True) if new)
        return result

    async def versions(self) -> Version:
        return parse_version(await self._call("/api/v1/versions"))

    async def summaries(self) -> Summary:
        return parse_summary(await self._call("/api/v1/summaries"))

    async def self_proc_stats(self) -> SelfProcStats:
        return parse_self_proc_stats(await self._call("/api/v1/self_proc_stats"))

    async def vhosts(self) -> list[Vhost]:
        path = "/api/v1/vhosts/"
        return parse_list(await self._call(path), "vhosts", path, parse_vhost)

    async def streams(self) -> list[Stream]:
        """Every stream, paged (SRS returns 10 per request unless asked for more)."""
        return await self._list("/api/v1/streams/", "streams", parse_stream, _item_id)

    async def clients(self) -> list[Client]:
        """Every client, paged like streams()."""
        return await self._list("/api/v1/clients/", "clients", parse_client, _item_id)

    async def kick_client(self, client_id: str) -> None:
        """Ask SRS to close one client's connection (2049 if it is already gone)."""
        await self._call(f"/api/v1/clients/{quote(client_id, safe='')}", method="DELETE")

    async def reload(self) -> None:
        """Start a reload (asynchronous in SRS): follow it with reload_fetch()."""
        await self._call("/api/v1/raw?rpc=reload")

    async def reload_fetch(self) -> ReloadState:
        path = "/api/v1/raw?rpc=reload-fetch"
        return parse_reload_state(await self._call(path), path)

    async def raw_api_config(self) -> RawApiConfig:
        path = "/api/v1/raw?rpc=raw"
        return parse_raw_api_config(await self._call(path), path)

    async def builtin_metrics(self) -> str:
        """SRS's own exporter text from the API port's /metrics: the only source of
        srs_clients_total and srs_clients_errs_total. SrsApiError(1090) if it is off."""
        path = "/metrics"
        status, body = await self._request("GET", path)
        if status != 200:
            raise SrsProtocolError(path, f"HTTP {status}, SRS answers 200")
        if body.lstrip().startswith(b"{"):
            decode_reply(body, path)  # raises SrsApiError for {"code":1090}
            raise SrsProtocolError(path, "JSON with code 0 where metrics text was expected")
        return body.decode("utf-8", errors="replace")


def _item_id(item: Stream | Client) -> str:
    return item.id


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
