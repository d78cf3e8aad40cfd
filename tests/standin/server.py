"""The SRS 6.0.155 stand-in: a real process that behaves like SRS where the agents look.

It listens where srs.conf says, answers the HTTP API and /metrics like SRS, reloads on
SIGHUP (and `raw?rpc=reload`, and inotify when enabled), quits fast or gracefully on the
same signals with the same main-loop tick, waits without limit for TCP clients on a
graceful quit, writes HLS/DVR files, and crashes with exit code 134 when a reload
changes the root `listen`, as SRS 6.0.155 does (recorded in tests/fixtures/srs-6.0.155).

Its one invention: it does not speak RTMP. A client on the RTMP port declares itself
with a first line `PUBLISH <app>/<stream>\\n` or `PLAY <app>/<stream>\\n` (optionally
`?vhost=<vhost>` after the stream, and for PUBLISH the words `video=none` or
`audio=none`). A publisher's later bytes are relayed to the stream's players and written
into the HLS segments and the DVR file.

Extra options, before the SRS ones: `--tick SECONDS` (main-loop period and drain poll,
default 1.0 as in SRS), `--events FILE` (JSON lines of notable events, for tests),
`--fake-streams N` (synthetic publishing streams with stable pseudo-random figures and
no TCP connection), `--fake-seed N`, `--api-version 4|5|6` (trim the API to what that
SRS version had). Must not import `agents`: it is an independent double of SRS.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import dataclasses
import errno as errno_mod
import fcntl
import json
import os
import random
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from tests.standin import srsconf
from tests.standin.api import (
    API_PATTERNS,
    VERSION,
    Api,
    json_response,
    match_pattern,
    render_metrics,
)
from tests.standin.httpd import (
    BadRequest,
    Request,
    Response,
    read_request,
    render_head,
    text_error,
    write_response,
)
from tests.standin.media import FLV_HEADER, DvrSession, HlsMuxer, HlsSettings
from tests.standin.procinfo import Sampler, public_ip, uname_labels
from tests.standin.srsconf import Config, SrsError
from tests.standin.srsjson import JsonValue, dumps
from tests.standin.srslog import SrsLog
from tests.standin.stat import (
    AudioInfo,
    Client,
    Statistic,
    StreamRef,
    VideoInfo,
    random_str,
    stream_url,
)

SIGNATURE = "SRS/6.0.155(Hang)"
HANDSHAKE_TIMEOUT = 30.0
SOURCE_CLEANUP = 3.0
PLAYER_BUFFER_LIMIT = 4 * 1024 * 1024
MIME = {
    ".ts": "video/MP2T",
    ".flv": "video/x-flv",
    ".m4v": "video/x-m4v",
    ".3gpp": "video/3gpp",
    ".3gp": "video/3gpp",
    ".mp4": "video/mp4",
    ".aac": "audio/x-aac",
    ".mp3": "audio/mpeg",
    ".m4a": "audio/x-m4a",
    ".ogg": "audio/ogg",
    ".m3u8": "application/vnd.apple.mpegurl",
    ".rss": "application/rss+xml",
    ".json": "application/json",
    ".swf": "application/x-shockwave-flash",
    ".doc": "application/msword",
    ".zip": "application/zip",
    ".rar": "application/x-rar-compressed",
    ".xml": "text/xml",
    ".html": "text/html",
    ".js": "text/javascript",
    ".css": "text/css",
    ".ico": "image/x-icon",
    ".png": "image/png",
    ".jpeg": "image/jpeg",
    ".jpg": "image/jpeg",
    ".gif": "image/gif",
    ".mpd": "application/dash+xml",
    ".m4s": "video/iso.segment",
    ".mp4v": "video/mp4",
}
ASSERT_LINE = (
    "srs: ./src/kernel/srs_kernel_error.cpp:446: static void SrsCplxError::srs_assert(bool): "
    "Assertion `expression' failed."
)
BACKTRACE = (
    "SrsCplxError::srs_assert(bool) at srs_kernel_error.cpp:427",
    "srs_close_stfd(void*&) at srs_protocol_st.cpp:92 (discriminator 1)",
    "SrsTcpListener::listen() at srs_app_listener.cpp:275",
    "SrsMultipleTcpListeners::listen() at srs_app_listener.cpp:367",
    "SrsServer::listen() at srs_app_server.cpp:579 (discriminator 8)",
    "SrsServer::on_reload_listen() at srs_app_server.cpp:1327",
    "SrsConfig::do_reload_listen() at srs_app_config.cpp:2098",
    "SrsConfig::reload_conf(SrsConfig*) at srs_app_config.cpp:1656",
    "SrsConfig::reload(SrsReloadState*) at srs_app_config.cpp:1413",
    "SrsServer::do_cycle() at srs_app_server.cpp:1031 (discriminator 3)",
    "SrsServer::cycle() at srs_app_server.cpp:900",
)


# --------------------------------------------------------------------------------------
# options


@dataclass
class Options:
    config: str = "./conf/srs.conf"
    test: bool = False
    env_only: bool = False
    tick: float = 1.0
    events: str | None = None
    fake_streams: int = 0
    fake_seed: int = 1
    api_version: int = 6
    argv: str = ""


def parse_args(argv: list[str]) -> Options | int:
    """Our `--long` options first, then SRS's own (`SrsConfig::parse_argv`)."""
    opts = Options(argv=" ".join(argv))
    rest: list[str] = []
    i = 0
    longs = {"--tick", "--events", "--fake-streams", "--fake-seed", "--api-version"}
    while i < len(argv):
        arg = argv[i]
        name, eq, value = arg.partition("=")
        if name in longs:
            if not eq:
                i += 1
                if i >= len(argv):
                    print(f"{name} requires a value", file=sys.stderr)
                    return 2
                value = argv[i]
            try:
                if name == "--tick":
                    opts.tick = float(value)
                elif name == "--events":
                    opts.events = value
                elif name == "--fake-streams":
                    opts.fake_streams = int(value)
                elif name == "--fake-seed":
                    opts.fake_seed = int(value)
                else:
                    opts.api_version = int(value)
            except ValueError:
                print(f"{name}: bad value {value!r}", file=sys.stderr)
                return 2
            if opts.tick <= 0 or opts.api_version not in (4, 5, 6) or opts.fake_streams < 0:
                print(f"{name}: value out of range: {value!r}", file=sys.stderr)
                return 2
        else:
            rest.append(arg)
        i += 1

    show_help = len(rest) == 0
    j = 0
    while j < len(rest):
        p = rest[j]
        if not p.startswith("-"):
            show_help = True
            j += 1
            continue
        k = 1
        while k < len(p):
            ch = p[k]
            k += 1
            if ch in "?h":
                show_help = True
                break
            if ch == "t":
                show_help, opts.test = False, True
            elif ch == "e":
                show_help, opts.env_only = False, True
            elif ch in "vV":
                print("6.0.155")
                return 0
            elif ch in "gG":
                print(SIGNATURE)
                return 0
            elif ch == "c":
                show_help = False
                if k < len(p):
                    opts.config = p[k:]
                    break
                j += 1
                if j >= len(rest):
                    print("-c requires params", file=sys.stderr)
                    return 255
                opts.config = rest[j]
                break
            elif ch == "-":
                continue
            else:
                print(f'invalid option: "{ch}", read help: srs -h', file=sys.stderr)
                return 255
        j += 1
    if show_help:
        print(
            f"{SIGNATURE}, MIT\nUsage: srs <-h?vVgG>|<[-t] -c filename>\n"
            "Stand-in options: --tick S --events FILE --fake-streams N --fake-seed N "
            "--api-version 4|5|6"
        )
        return 0
    return opts


# --------------------------------------------------------------------------------------
# events for tests


class Events:
    """One JSON object per line: what happened, with monotonic and wall clocks."""

    def __init__(self, path: str | None) -> None:
        self.path = path

    def emit(self, event: str, **fields: object) -> None:
        if not self.path:
            return
        record = {
            "event": event,
            "mono": time.monotonic(),
            "wall": time.time(),
            "pid": os.getpid(),
            **fields,
        }
        line = json.dumps(record, default=str) + "\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)


# --------------------------------------------------------------------------------------
# connections, consumers and sources


@dataclass(eq=False)
class Conn:
    """One accepted TCP connection; all of them hold up a graceful quit."""

    id: str
    kind: str
    writer: asyncio.StreamWriter
    ip: str
    port: int
    local: tuple[str, int]
    fd: int
    client: Client | None = None
    expired: bool = False

    def expire(self) -> None:
        """`ISrsExpire::expire`: SRS closes the connection."""
        self.expired = True
        with contextlib.suppress(Exception):
            self.writer.close()


@dataclass(eq=False)
class Consumer:
    """A player: RTMP (written directly) or HTTP-FLV (queued for the chunked reply)."""

    conn: Conn
    client: Client
    on_data: Callable[[bytes], int]


@dataclass(eq=False)
class Source:
    """`SrsLiveSource`: lives while publishing, while it has players, and 3 s beyond."""

    url: str
    vhost: str
    app: str
    stream: str
    publisher: Conn | None = None
    consumers: set[Consumer] = field(default_factory=set)
    hls: HlsMuxer | None = None
    dvr: DvrSession | None = None
    die_at: float = 0.0
    source_id: str = ""


@dataclass
class HlsCtx:
    """`SrsHlsVirtualConn`: an HLS viewer known by its `hls_ctx`, not by a TCP connection."""

    ctx: str
    vhost: str
    request_time: float
    interrupt: bool = False


class Listener:
    def __init__(self, name: str, endpoint: str, server: asyncio.Server, fd: int) -> None:
        self.name = name
        self.endpoint = endpoint
        self.server = server
        self.fd = fd


# --------------------------------------------------------------------------------------
# the server


class StandIn:
    def __init__(self, opts: Options, cfg: Config, log: SrsLog, events: Events) -> None:
        self.opts = opts
        self.cfg = cfg
        self.log = log
        self.events = events
        self.rng = random.Random()
        self.cid = random_str(self.rng, 8)
        self.pid = os.getpid()
        self.pid_text = str(self.pid)
        self.api_version = opts.api_version
        self.argv = opts.argv
        self.cwd = os.getcwd()
        self.stat = Statistic(self.rng)
        self.sampler = Sampler()
        self.server_id = ""
        self.service_id = random_str(self.rng, 8)
        # captured once, as SrsGoApiRaw and SrsGoApiMetrics do
        self.raw_api = cfg.raw_api()
        self.raw_allow_reload = cfg.raw_api_allow_reload()
        self.exporter_enabled = cfg.exporter_enabled() and self.api_version >= 5
        self.exporter_label = cfg.exporter_label()
        self.exporter_tag = cfg.exporter_tag()
        self.api = Api(self)
        self.listeners: list[Listener] = []
        self.conns: dict[str, Conn] = {}
        self.sources: dict[str, Source] = {}
        self.coworkers: dict[str, tuple[str, str, str]] = {}
        self.hls_ctx: dict[str, HlsCtx] = {}
        self.signal_reload = False
        self.signal_fast_quit = False
        self.signal_grace_quit = False
        self.reload_err: SrsError | None = None
        self.reload_state = 0
        self.reload_id = ""
        self.pid_fd = -1
        self.api_shared = False
        self._tasks: list[asyncio.Task[None]] = []

    # --- ApiHost ---
    def now(self) -> float:
        return time.time()

    def reload_result(self) -> tuple[int, str, int, str]:
        err = self.reload_err
        return (
            err.code if err else 0,
            err.summary() if err else "Success",
            self.reload_state,
            self.reload_id,
        )

    def request_reload(self) -> None:
        self.on_signal(signal.SIGHUP, "api")

    def conn_count(self) -> int:
        return len(self.conns)

    def metrics_text(self) -> str | None:
        if not self.exporter_enabled:
            return None
        now = self.now()
        return render_metrics(
            server_id=self.server_id,
            service_id=self.service_id,
            pid=self.pid_text,
            label=self.exporter_label,
            tag=self.exporter_tag,
            uname=uname_labels(),
            cpu_percent=self.sampler.cpu_percent,
            memory_kib=self.sampler.rss_pages() * 4,
            send_bytes=self.stat.traffic.send_bytes(now),
            recv_bytes=self.stat.traffic.recv_bytes(now),
            streams=len(self.stat.streams),
            clients=len(self.stat.clients),
            clients_total=self.stat.nb_clients_total,
            errs=self.stat.nb_errs,
        )

    def kick(self, client: Client) -> None:
        self.log.warn(self.cid, f"kickoff client id={client.id} ok")
        self.events.emit("client_kicked", id=client.id, type=client.type)
        if client.kick is not None:
            client.kick()

    def origin_of(self, vhost: str, app: str, stream: str, coworker: str) -> JsonValue:
        conf = self.cfg.get_vhost(vhost)
        if conf is None:
            return None
        if stream_url(conf.arg0(), app, stream) not in self.coworkers:
            return None
        listens = self.cfg.listens()
        host, port = "", 1935
        if listens:
            if ":" in listens[0]:
                host, port = srsconf.parse_endpoint(listens[0])
            else:
                port = srsconf.atoi(listens[0])
        service_ip = host if host not in ("", "localhost", "127.0.0.1", "::1", "0.0.0.0") else ""
        if not service_ip:
            service_ip = coworker.split(":", 1)[0] if coworker else ""
        if not service_ip:
            service_ip = public_ip()
        backend = self.cfg.http_api_listen()
        if ":" not in backend:
            backend = f"{service_ip}:{backend}"
        return {
            "ip": service_ip,
            "port": port,
            "vhost": conf.arg0(),
            "api": backend,
            "routers": [backend],
        }

    # --- start ---
    async def run(self) -> None:
        self.write_pid_file()
        self.server_id = self.load_server_id()
        await self.listen_all()
        loop = asyncio.get_running_loop()
        for signo in (signal.SIGHUP, signal.SIGUSR1, signal.SIGTERM, signal.SIGQUIT, signal.SIGINT):
            loop.add_signal_handler(signo, self.on_signal, signo)
        self.log.trace(
            self.cid, "signal installed, reload=1, reopen=10, fast_quit=15, grace_quit=3"
        )
        if self.opts.fake_streams:
            self.create_fake_streams(self.opts.fake_streams, self.opts.fake_seed)
        self.start_auto_reload()
        for coro in (self.timer_cycle(), self.media_cycle()):
            self._tasks.append(asyncio.create_task(coro))
        self.events.emit(
            "ready",
            listeners={x.name: x.endpoint for x in self.listeners},
            server_id=self.server_id,
            service_id=self.service_id,
            tick=self.opts.tick,
            force_grace_quit=self.cfg.force_grace_quit(),
            inotify_auto_reload=self.cfg.inotify_auto_reload(),
            auto_reload_for_docker=self.cfg.auto_reload_for_docker(),
            daemon=self.cfg.daemon(),
            api_version=self.api_version,
        )
        await self.do_cycle()
        await self.stop()

    def write_pid_file(self) -> None:
        path = self.cfg.pid_file()
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
        except OSError as e:
            raise SrsError(1034, f"open pid file={path}, errno={e.errno}") from None
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise SrsError(1036, "srs is already running!") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(self.pid).encode())
        self.pid_fd = fd  # kept open and locked, like SRS; the file stays after exit
        self.log.trace(self.cid, f"write pid={self.pid} to {path} success!")
        self.events.emit("pid_file", path=os.path.abspath(path))

    def load_server_id(self) -> str:
        pid_file = self.cfg.pid_file()
        id_path = pid_file.replace(".pid", ".id")
        if not id_path.endswith(".id"):
            id_path += ".id"
        stored = ""
        with contextlib.suppress(OSError), open(id_path, encoding="utf-8") as f:
            stored = f.read().strip()
        server_id = self.cfg.server_id_directive() or stored or ("vid-" + random_str(self.rng, 7))
        with contextlib.suppress(OSError), open(id_path, "w", encoding="utf-8") as f:
            f.write(server_id)
        return server_id

    async def listen_all(self) -> None:
        cfg = self.cfg
        for endpoint in cfg.listens():
            await self.listen("RTMP", endpoint, self.handle_rtmp)
        api_listen = cfg.http_api_listen()
        server_listen = cfg.http_server_listen()
        self.api_shared = (
            cfg.http_api_enabled() and cfg.http_server_enabled() and api_listen == server_listen
        )
        if cfg.http_api_enabled() and not self.api_shared:
            await self.listen("HTTP-API", api_listen, self.handle_api)
        if cfg.http_server_enabled():
            await self.listen("HTTP-Server", server_listen, self.handle_http_server)
        if self.exporter_enabled:
            await self.listen("Exporter-Server", cfg.exporter_listen(), self.handle_exporter)

    async def listen(
        self,
        name: str,
        endpoint: str,
        handler: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
    ) -> None:
        ip, port = srsconf.parse_endpoint(endpoint)
        try:
            server = await asyncio.start_server(
                handler,
                ip,
                port,
                reuse_address=True,
                backlog=512,
            )
        except OSError as e:
            raise SrsError(1002, f"bind {ip}:{port}, errno={e.errno}") from None
        sock = server.sockets[0]
        self.listeners.append(
            Listener(name, f"{ip}:{sock.getsockname()[1]}", server, sock.fileno())
        )
        self.log.trace(self.cid, f"{name} listen at tcp://{ip}:{port}, fd={sock.fileno()}")
        self.events.emit("listening", name=name, ip=ip, port=sock.getsockname()[1])

    def close_listeners(self) -> None:
        for lst in self.listeners:
            lst.server.close()
        self.events.emit("listeners_closed", names=[x.name for x in self.listeners])

    # --- signals and the main loop (SrsServer::on_signal, do_cycle, stop) ---
    def on_signal(self, signo: int, source: str = "signal") -> None:
        """`SrsServer::on_signal`. `source` says who asked: a real signal, the API's
        `rpc=reload` or inotify; only real signals are recorded as `signal` events."""
        if source == "signal":
            self.events.emit("signal", signo=int(signo), name=signal.Signals(signo).name)
        if signo == signal.SIGHUP:
            self.log.trace(self.cid, f"reload config, signo={int(signo)}")
            self.signal_reload = True
            self.events.emit("reload_requested", source=source)
            return
        if signo == signal.SIGUSR1:
            self.log.reopen()
            self.log.warn(self.cid, f"reopen log file, signo={int(signo)}")
            self.events.emit("log_reopened")
            return
        if signo == signal.SIGTERM and self.cfg.force_grace_quit():
            self.log.trace(self.cid, f"force gracefully quit, signo={int(signo)}")
            signo = signal.SIGQUIT
        if signo in (signal.SIGINT, signal.SIGTERM) and not self.signal_fast_quit:
            self.log.trace(self.cid, f"sig={int(signo)}, user terminate program, fast quit")
            self.signal_fast_quit = True
            self.events.emit("quit_requested", mode="fast", signo=int(signo))
            return
        if signo == signal.SIGQUIT and not self.signal_grace_quit:
            self.log.trace(self.cid, f"sig={int(signo)}, user start gracefully quit")
            self.signal_grace_quit = True
            self.events.emit("quit_requested", mode="graceful", signo=int(signo))
            return
        self.events.emit("signal_ignored", signo=int(signo))

    async def do_cycle(self) -> None:
        while True:
            if self.signal_fast_quit or self.signal_grace_quit:
                self.log.trace(
                    self.cid,
                    f"cleanup for quit signal fast={int(self.signal_fast_quit)}, "
                    f"grace={int(self.signal_grace_quit)}",
                )
                return
            if self.signal_reload:
                self.signal_reload = False
                self.do_reload()
            await asyncio.sleep(self.opts.tick)

    async def stop(self) -> None:
        self.log.warn(self.cid, "main cycle terminated, system quit normally.", 104)
        if self.signal_fast_quit:
            self.close_listeners()
            self.dispose_sources()
            self.log.trace(self.cid, "srs disposed")
        if self.signal_grace_quit:
            await self.gracefully_dispose()
            self.log.trace(self.cid, "srs gracefully quit")
        self.log.trace(self.cid, "srs terminated")
        self.exit(0)

    async def gracefully_dispose(self) -> None:
        start_wait = self.cfg.grace_start_wait()
        await asyncio.sleep(start_wait)
        self.log.trace(self.cid, f"start wait for {int(start_wait * 1000)}ms")
        self.close_listeners()
        self.log.trace(self.cid, "listeners closed")
        self.log.trace(self.cid, "ingesters stopped")
        wait_step = 1
        while self.conns and not self.signal_fast_quit:
            i = 0
            while i < wait_step and self.conns and not self.signal_fast_quit:
                await asyncio.sleep(self.opts.tick)
                i += 1
            wait_step = (wait_step * 2) % 33
            self.log.trace(self.cid, f"wait for {len(self.conns)} conns to quit")
            self.events.emit("drain_wait", conns=len(self.conns))
        self.dispose_sources()
        self.log.trace(self.cid, "source disposed")
        final_wait = self.cfg.grace_final_wait()
        await asyncio.sleep(final_wait)
        self.log.trace(self.cid, f"final wait for {int(final_wait * 1000)}ms")

    def dispose_sources(self) -> None:
        """`SrsLiveSourceManager::dispose`: HLS disposed per `hls_dispose`; DVR left as is."""
        now = self.now()
        for source in list(self.sources.values()):
            if source.hls is not None:
                if source.hls.enabled:
                    source.hls.on_unpublish(now)
                if self.cfg.hls_dispose(source.vhost) > 0:
                    source.hls.dispose()
                    self.events.emit("hls_disposed", url=source.url)
                self.log.trace(self.cid, f"gracefully dispose dash {source.url}")
            if source.dvr is not None:
                source.dvr.abandon()

    def exit(self, code: int) -> None:
        self.events.emit("exit", code=code)
        self.log.close()
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)

    # --- reload (SrsConfig::reload) ---
    def do_reload(self) -> None:
        self.log.trace(self.cid, "starting reload config.")
        self.reload_state = 0
        self.reload_err = None
        self.reload_id = random_str(self.rng, 7)
        try:
            new = srsconf.load(self.cfg.path, trace=lambda m: self.log.trace(self.cid, m))
        except SrsError as e:
            self.reload_state = e.state
            self.reload_err = e
            self.log.warn(
                self.cid, f"reload failed, state={e.state}, err {e.description(self.pid, self.cid)}"
            )
            self.events.emit(
                "reload", ok=False, rid=self.reload_id, state=e.state, err=e.code, msg=e.summary()
            )
            return
        self.reload_state = 30
        old = self.cfg
        old_listen, new_listen = old.root.get("listen"), new.root.get("listen")
        if not (old_listen is None and new_listen is None) and (
            new_listen is None or not new_listen.equals(old_listen)
        ):
            self.crash_on_listen_reload()
        self.cfg = new
        names = list(dict.fromkeys(new.vhost_names() + old.vhost_names()))
        for name in names:
            old_v, new_v = old.root.get("vhost", name), new.root.get("vhost", name)
            if old_v is None or new_v is None or old_v.equals(new_v):
                continue
            self.log.trace(self.cid, f"vhost {name} maybe modified, reload its detail.")
            old_hls, new_hls = old_v.get("hls"), new_v.get("hls")
            if (old_hls is None) != (new_hls is None) or (
                new_hls is not None and not new_hls.equals(old_hls)
            ):
                self.log.trace(self.cid, f"vhost {name} reload hls success.")
                for source in self.sources.values():
                    if source.vhost == name and source.hls is not None:
                        source.hls.reload(self.hls_settings(name))
        self.reload_state = 90
        self.log.trace(self.cid, "reload config success, state=90.")
        self.events.emit("reload", ok=True, rid=self.reload_id, state=90, err=0, msg="Success")

    def crash_on_listen_reload(self) -> None:
        """SRS 6.0.155 asserts when a reload re-listens the RTMP port (run-a-main.log)."""
        self.log.error(self.cid, f"backtrace 17 frames of ./objs/srs {SIGNATURE}")
        for i, frame in enumerate(BACKTRACE):
            self.log.error(self.cid, f"#{i} {frame}")
        sys.stdout.flush()
        sys.stderr.write(ASSERT_LINE + "\n")
        sys.stderr.flush()
        for source in self.sources.values():
            if source.hls is not None:
                source.hls.abandon()
            if source.dvr is not None:
                source.dvr.abandon()
        self.events.emit("crash", code=134, reason="listen changed on reload")
        self.events.emit("exit", code=134)
        os._exit(134)

    # --- inotify auto reload (SrsInotifyWorker) ---
    def start_auto_reload(self) -> None:
        auto = self.cfg.inotify_auto_reload()
        if not auto and in_docker(self.cfg) and self.cfg.auto_reload_for_docker():
            self.log.warn(self.cid, "enable auto reload for docker")
            auto = True
        self.events.emit("auto_reload", enabled=auto)
        if not auto or self.opts.env_only:
            return
        import inotify_simple  # noqa: PLC0415 - only when auto reload is on

        watcher = inotify_simple.INotify(nonblocking=True)
        config_dir = os.path.dirname(self.cfg.path) or "."
        mask = (
            inotify_simple.flags.MODIFY
            | inotify_simple.flags.CREATE
            | inotify_simple.flags.MOVED_TO
        )
        wd = watcher.add_watch(config_dir, mask)
        self.log.trace(
            self.cid, f"auto reload watching fd={watcher.fileno()}, watch={wd}, file={config_dir}"
        )
        self._tasks.append(asyncio.create_task(self.inotify_cycle(watcher, mask)))

    async def inotify_cycle(self, watcher: object, mask: int) -> None:
        import inotify_simple  # noqa: PLC0415

        assert isinstance(watcher, inotify_simple.INotify)
        config_file = os.path.basename(self.cfg.path)
        loop = asyncio.get_running_loop()
        while True:
            await wait_readable(loop, watcher.fileno())
            do_reload = False
            for ev in watcher.read(timeout=0):
                if not ev.name:
                    continue
                if ev.name in ("..data", config_file) and ev.mask & mask:
                    do_reload = True
                self.log.trace(
                    self.cid,
                    f"inotify event wd={ev.wd}, mask={ev.mask:#x}, "
                    f"len={len(ev.name)}, name={ev.name}, reload={int(do_reload)}",
                )
            if do_reload and os.path.exists(self.cfg.path):
                self.on_signal(signal.SIGHUP, "inotify")
            await asyncio.sleep(3.0)

    # --- timers ---
    async def timer_cycle(self) -> None:
        """Kbps windows, process samples, dead sources and idle HLS viewers, every second."""
        while True:
            now = self.now()
            self.stat.sample(now)
            self.sampler.update()
            for source in list(self.sources.values()):
                if (
                    source.publisher is None
                    and not source.consumers
                    and source.die_at
                    and now >= source.die_at + SOURCE_CLEANUP
                ):
                    del self.sources[source.url]
                    self.log.trace(
                        self.cid,
                        f"Live: cleanup die source, id=[{source.source_id}], "
                        f"total={len(self.sources) + 1}",
                    )
                    self.log.trace(self.cid, f"free live source id=[{source.source_id}]")
                    self.events.emit("source_freed", url=source.url)
            for ctx in list(self.hls_ctx.values()):
                window = self.cfg.hls_window(ctx.vhost)
                if ctx.request_time + 2 * window < now:
                    del self.hls_ctx[ctx.ctx]
                    self.stat.on_disconnect(ctx.ctx, now)
                    self.events.emit("client_left", id=ctx.ctx, type="hls-play")
            await asyncio.sleep(1.0)

    async def media_cycle(self) -> None:
        while True:
            now = self.now()
            for source in self.sources.values():
                if source.hls is not None:
                    source.hls.tick(now)
            await asyncio.sleep(0.1)

    # --- connections ---
    def open_conn(self, kind: str, writer: asyncio.StreamWriter) -> Conn:
        peer = writer.get_extra_info("peername") or ("", 0)
        local = writer.get_extra_info("sockname") or ("", 0)
        sock = writer.get_extra_info("socket")
        fd = sock.fileno() if sock is not None else -1
        conn = Conn(
            random_str(self.rng, 8),
            kind,
            writer,
            str(peer[0]),
            int(peer[1]),
            (str(local[0]), int(local[1])),
            fd,
        )
        self.conns[conn.id] = conn
        self.events.emit(
            "conn_open", id=conn.id, kind=kind, peer=f"{conn.ip}:{conn.port}", conns=len(self.conns)
        )
        return conn

    def close_conn(self, conn: Conn) -> None:
        if self.conns.pop(conn.id, None) is None:
            return
        with contextlib.suppress(Exception):
            conn.writer.close()
        self.events.emit("conn_close", id=conn.id, kind=conn.kind, conns=len(self.conns))

    def resolve_vhost(self, requested: str) -> str | None:
        conf = self.cfg.get_vhost(requested)
        if conf is None or not self.cfg.vhost_enabled(conf.arg0()):
            return None
        return conf.arg0()

    def fetch_or_create_source(self, vhost: str, app: str, stream: str) -> Source:
        url = stream_url(vhost, app, stream)
        source = self.sources.get(url)
        if source is None:
            source = Source(url, vhost, app, stream.rsplit(".", 1)[0] if "." in stream else stream)
            self.sources[url] = source
        return source

    def hls_settings(self, vhost: str) -> HlsSettings:
        c = self.cfg
        return HlsSettings(
            c.hls_path(vhost),
            c.hls_m3u8_file(vhost),
            c.hls_ts_file(vhost),
            c.hls_fragment(vhost),
            c.hls_window(vhost),
            c.hls_dispose(vhost),
            c.hls_cleanup(vhost),
        )

    # --- RTMP port: the line protocol ---
    async def handle_rtmp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = self.open_conn("rtmp", writer)
        self.log.trace(conn.id, f"RTMP client ip={conn.ip}:{conn.port}, fd={conn.fd}")
        try:
            try:
                line = await asyncio.wait_for(reader.readuntil(b"\n"), HANDSHAKE_TIMEOUT)
            except (
                TimeoutError,
                asyncio.IncompleteReadError,
                asyncio.LimitOverrunError,
                ConnectionError,
            ):
                return
            decl = parse_declaration(line)
            if decl is None:
                self.log.warn(
                    conn.id,
                    f"serve error code=1011(RtmpHandshake) : not a stand-in "
                    f"declaration: {line[:64]!r}",
                    104,
                )
                return
            verb, app, stream, params = decl
            vhost = self.resolve_vhost(params.get("vhost") or conn.local[0])
            if vhost is None:
                self.log.warn(conn.id, f"serve error code=2014(NoVhost) : vhost for {app}/{stream}")
                return
            tc_url = f"rtmp://{params.get('vhost') or conn.local[0]}:{conn.local[1]}/{app}"
            ref = StreamRef(vhost, app, stream, tc_url, conn.ip)
            if verb == "PUBLISH":
                await self.serve_publisher(conn, reader, ref, params, len(line))
            else:
                await self.serve_player(conn, reader, ref, len(line))
        finally:
            self.close_conn(conn)

    async def serve_publisher(
        self,
        conn: Conn,
        reader: asyncio.StreamReader,
        ref: StreamRef,
        params: dict[str, str],
        head: int,
    ) -> None:
        vhost, app, stream = ref.vhost, ref.app, ref.stream
        source = self.fetch_or_create_source(vhost, app, stream)
        if source.publisher is not None:
            self.log.warn(
                conn.id, f"serve error code=1028(StreamBusy) : stream {source.url} is busy"
            )
            return
        now = self.now()
        self.log.trace(
            conn.id,
            f"client identified, type=fmle-publish, vhost={vhost}, app={app}, "
            f"stream={stream}, param=, duration=0ms",
        )
        client = self.stat.on_client(conn.id, ref, "fmle-publish", now, conn.expire)
        conn.client = client
        self.stat.add_bytes(client, recv=head)
        video = None if params.get("video") == "none" else VideoInfo()
        audio = None if params.get("audio") == "none" else AudioInfo()
        self.publish(source, conn, client, now, video=video, audio=audio)
        try:
            while True:
                try:
                    data = await reader.read(65536)
                except ConnectionError:
                    break
                if not data:
                    break
                self.stat.add_bytes(client, recv=len(data))
                self.feed(source, data)
        finally:
            self.unpublish(source, conn)
            self.stat.on_disconnect(conn.id, self.now())
            self.events.emit("client_left", id=conn.id, type="fmle-publish", url=source.url)

    def publish(
        self,
        source: Source,
        conn: Conn,
        client: Client,
        now: float,
        *,
        video: VideoInfo | None,
        audio: AudioInfo | None,
    ) -> None:
        if source.hls is None or not source.source_id:
            self.log.trace(conn.id, f"new live source, stream_url={source.url}")
        source.publisher = conn
        source.source_id = conn.id
        source.die_at = 0.0
        self.stat.on_stream_publish(client.stream, conn.id, now, video=video, audio=audio)
        if self.cfg.hls_enabled(source.vhost):
            if source.hls is None:
                source.hls = HlsMuxer(
                    source.vhost,
                    source.app,
                    source.stream,
                    source.url,
                    lambda m: self.log.trace(conn.id, m),
                )
            source.hls.on_publish(self.hls_settings(source.vhost), now)
        if self.cfg.dvr_enabled(source.vhost):
            source.dvr = DvrSession(
                self.cfg.dvr_path(source.vhost),
                source.vhost,
                source.app,
                source.stream,
                now,
                log=lambda m: self.log.trace(conn.id, m),
            )
        if self.cfg.http_remux_enabled(source.vhost):
            mount = flv_mount(
                self.cfg.http_remux_mount(source.vhost), source.vhost, source.app, source.stream
            )
            self.log.trace(conn.id, f"http: mount flv stream for sid={source.url}, mount={mount}")
        self.coworkers[source.url] = (source.vhost, source.app, source.stream)
        self.log.trace(conn.id, "start publish mr=0/350, p1stpt=20000, pnt=5000, tcp_nodelay=0")
        self.events.emit(
            "client_connected",
            id=conn.id,
            type="fmle-publish",
            url=source.url,
            stream_id=client.stream.id,
        )
        self.events.emit("publish", url=source.url, id=conn.id)

    def feed(self, source: Source, data: bytes) -> None:
        if source.hls is not None and source.hls.enabled:
            source.hls.write(data)
        if source.dvr is not None:
            source.dvr.write(data)
        for consumer in list(source.consumers):
            sent = consumer.on_data(data)
            if sent:
                self.stat.add_bytes(consumer.client, send=sent)

    def unpublish(self, source: Source, conn: Conn) -> None:
        now = self.now()
        self.log.trace(conn.id, "cleanup when unpublish")
        client = conn.client
        if client is not None:
            self.stat.on_stream_close(client.stream, now)
        if source.hls is not None:
            source.hls.on_unpublish(now)
        if source.dvr is not None:
            source.dvr.close()
            source.dvr = None
        self.coworkers.pop(source.url, None)
        if self.cfg.http_remux_enabled(source.vhost):
            self.log.trace(self.cid, f"http: unmount flv stream for sid={source.url}, i=0")
            for consumer in list(source.consumers):
                if consumer.client.type == "flv-play":
                    consumer.conn.expire()
        source.publisher = None
        source.die_at = now
        self.events.emit("unpublish", url=source.url, id=conn.id)

    async def serve_player(
        self, conn: Conn, reader: asyncio.StreamReader, ref: StreamRef, head: int
    ) -> None:
        vhost, app, stream = ref.vhost, ref.app, ref.stream
        source = self.fetch_or_create_source(vhost, app, stream)
        self.log.trace(
            conn.id,
            f"client identified, type=rtmp-play, vhost={vhost}, app={app}, "
            f"stream={stream}, param=, duration=-1ms",
        )
        client = self.stat.on_client(conn.id, ref, "rtmp-play", self.now(), conn.expire)
        conn.client = client
        self.stat.add_bytes(client, recv=head)
        writer = conn.writer

        def on_data(data: bytes) -> int:
            if (
                writer.is_closing()
                or writer.transport.get_write_buffer_size() > PLAYER_BUFFER_LIMIT
            ):
                return 0
            writer.write(data)
            return len(data)

        consumer = Consumer(conn, client, on_data)
        source.consumers.add(consumer)
        self.log.trace(
            conn.id, "start play smi=0ms, mw_sleep=350, mw_msgs=8, realtime=0, tcp_nodelay=0"
        )
        self.events.emit(
            "client_connected",
            id=conn.id,
            type="rtmp-play",
            url=source.url,
            stream_id=client.stream.id,
        )
        try:
            while True:
                try:
                    data = await reader.read(65536)
                except ConnectionError:
                    break
                if not data:
                    break
                self.stat.add_bytes(client, recv=len(data))
        finally:
            self.remove_consumer(source, consumer)
            self.stat.on_disconnect(conn.id, self.now())
            self.events.emit("client_left", id=conn.id, type="rtmp-play", url=source.url)

    def remove_consumer(self, source: Source, consumer: Consumer) -> None:
        source.consumers.discard(consumer)
        if not source.consumers and source.publisher is None:
            source.die_at = self.now()

    # --- HTTP listeners ---
    async def handle_api(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await self.serve_http("http-api", reader, writer, self.cfg.http_api_crossdomain())

    async def handle_http_server(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await self.serve_http("http-server", reader, writer, True)

    async def handle_exporter(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await self.serve_http("exporter", reader, writer, False)

    async def serve_http(
        self,
        kind: str,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        crossdomain: bool,
    ) -> None:
        conn = self.open_conn(kind, writer)
        try:
            while not conn.expired:
                try:
                    req = await read_request(reader)
                except (BadRequest, ConnectionError, asyncio.IncompleteReadError):
                    break
                if req is None:
                    self.log.warn(conn.id, "client disconnect peer. ret=1007", 104)
                    break
                req.peer_ip, req.peer_port = conn.ip, conn.port
                length = req.header("content-length") or "-1"
                host = req.header("host") or f"{conn.local[0]}:{conn.local[1]}"
                self.log.trace(
                    conn.id,
                    f"HTTP #0 {conn.ip}:{conn.port} {req.method} "
                    f"http://{host}{req.target}, content-length={length}",
                )
                if ".." in req.target:
                    break
                flv = self.flv_target(req) if kind == "http-server" else None
                if flv is not None:
                    await self.serve_flv(conn, reader, req, flv)
                    break
                response = self.route(kind, req)
                headers: list[tuple[str, str]] = [("Connection", "Close")]
                if crossdomain and req.header("origin"):
                    headers += [
                        ("Access-Control-Allow-Origin", "*"),
                        ("Access-Control-Allow-Headers", "*"),
                        ("Access-Control-Allow-Methods", "*"),
                        ("Access-Control-Expose-Headers", "*"),
                        ("Access-Control-Allow-Credentials", "false"),
                        ("Access-Control-Request-Private-Network", "true"),
                    ]
                if req.method == "OPTIONS":
                    response = Response(200 if crossdomain else 405, [("Content-Length", "0")])
                response.headers = headers + [h for h in response.headers if h[0] != "Connection"]
                try:
                    await write_response(writer, response)
                except ConnectionError:
                    break
                if not req.keep_alive:
                    break
        finally:
            self.close_conn(conn)

    def route(self, kind: str, req: Request) -> Response:
        if kind == "exporter":
            if req.path == "/metrics":
                return self.api.metrics(req)
            return text_error(404)
        if kind == "http-api":
            return self.api.serve(req)
        # http-server: static files, plus the API when both share one listener
        if self.api_shared:
            pattern = match_pattern(tuple(p for p in API_PATTERNS if p != "/"), req.path)
            if pattern is not None:
                return self.api.serve(req)
        elif req.path == "/api/v1/versions":
            obj: dict[str, JsonValue] = {"code": 0, "server": self.server_id}
            if self.api_version >= 5:
                obj.update({"service": self.service_id, "pid": self.pid_text})
            obj["data"] = dict(VERSION)
            return json_response(req, dumps(obj))
        return self.serve_static(req, self.cfg.http_server_dir())

    def serve_static(self, req: Request, root_dir: str) -> Response:
        """`SrsHttpFileServer` (with HLS sessions by `hls_ctx`, `SrsHlsStream`)."""
        upath = req.path
        if upath.endswith("/"):
            upath += "index.html"
        fullpath = root_dir.rstrip("/") + upath
        if not os.path.isfile(fullpath):
            return text_error(404)
        self.log.trace(self.cid, f"http match file={fullpath}, pattern=/, upath={upath}")
        ext = os.path.splitext(fullpath)[1]
        vhost = self.resolve_vhost(req.host) or "__defaultVhost__"
        if ext == ".m3u8" and self.hls_ctx_enabled(vhost):
            return self.serve_m3u8_ctx(req, fullpath, vhost)
        try:
            with open(fullpath, "rb") as f:
                body = f.read()
        except OSError:
            return text_error(404)
        if ext == ".ts":
            ctx = self.hls_ctx.get(req.query("hls_ctx"))
            client = self.stat.clients.get(ctx.ctx) if ctx else None
            if client is not None:
                self.stat.add_bytes(client, send=len(body))
        return Response(
            200,
            [
                ("Content-Length", str(len(body))),
                ("Content-Type", MIME.get(ext, "application/octet-stream")),
            ],
            body,
        )

    def hls_ctx_enabled(self, vhost: str) -> bool:
        hls = self.cfg.get_vhost(vhost)
        conf = hls.get("hls") if hls is not None else None
        value = conf.get("hls_ctx") if conf is not None else None
        return value is None or value.arg0() != "off"

    def serve_m3u8_ctx(self, req: Request, fullpath: str, vhost: str) -> Response:
        ctx_id = req.query("hls_ctx")
        now = self.now()
        ctx = self.hls_ctx.get(ctx_id) if ctx_id else None
        if ctx is not None:
            if ctx.interrupt:
                return text_error(404, f"HLS stream {ctx_id} is EOF")
            ctx.request_time = now
            with open(fullpath, encoding="utf-8", errors="replace") as f:
                content = f.read()
            query = f".ts?hls_ctx={ctx_id}"
            content = (
                content.replace(".ts?", query + "&")
                if ".ts?" in content
                else content.replace(".ts", query)
            )
            body = content.encode()
            return Response(
                200,
                [
                    ("Content-Type", "application/vnd.apple.mpegurl"),
                    ("Content-Length", str(len(body))),
                ],
                body,
            )
        if not ctx_id:
            ctx_id = random_str(self.rng, 8)
            while ctx_id in self.hls_ctx:
                ctx_id = random_str(self.rng, 8)
        app = os.path.dirname(req.path).lstrip("/")
        name = os.path.basename(req.path)
        ref = StreamRef(vhost, app, name, f"http://{req.host}/{app}", req.peer_ip)
        client = self.stat.on_client(ctx_id, ref, "hls-play", now, None)
        ctx = HlsCtx(ctx_id, vhost, now)
        self.hls_ctx[ctx_id] = ctx

        def expire(c: HlsCtx = ctx) -> None:
            c.interrupt = True

        client.kick = expire
        self.events.emit(
            "client_connected",
            id=ctx_id,
            type="hls-play",
            url=client.stream.url,
            stream_id=client.stream.id,
        )
        line = f"{req.path}?hls_ctx={ctx_id}"
        if req.raw_query and not req.query("hls_ctx"):
            line += "&" + req.raw_query
        body = f"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,AVERAGE-BANDWIDTH=1\n{line}\n".encode()
        return Response(
            200,
            [("Content-Length", str(len(body))), ("Content-Type", "application/vnd.apple.mpegurl")],
            body,
        )

    def flv_target(self, req: Request) -> StreamRef | None:
        """`SrsHttpStreamServer::hijack`: what an HTTP-FLV play asks for, or None."""
        if not req.path.endswith(".flv") or req.method != "GET":
            return None
        vhost = self.resolve_vhost(req.host)
        if vhost is None or not self.cfg.http_remux_enabled(vhost):
            return None
        mount = self.cfg.http_remux_mount(vhost)
        if not mount.endswith(".flv") or req.path.count("/") != mount.count("/"):
            return None
        app = os.path.dirname(req.path).lstrip("/")
        return StreamRef(vhost, app, os.path.basename(req.path), f"http://{req.host}/{app}", "")

    async def serve_flv(
        self, conn: Conn, reader: asyncio.StreamReader, req: Request, ref: StreamRef
    ) -> None:
        now = self.now()
        ref = dataclasses.replace(ref, ip=conn.ip)
        source = self.fetch_or_create_source(ref.vhost, ref.app, ref.stream)
        client = self.stat.on_client(conn.id, ref, "flv-play", now, conn.expire)
        conn.client = client
        queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=256)

        def on_data(data: bytes) -> int:
            try:
                queue.put_nowait(data)
            except asyncio.QueueFull:
                return 0
            return len(data)

        consumer = Consumer(conn, client, on_data)
        source.consumers.add(consumer)
        self.log.trace(conn.id, f"FLV {req.path}, encoder=FLV, mw_sleep=350ms, cache=0, msgs=128")
        self.events.emit(
            "client_connected",
            id=conn.id,
            type="flv-play",
            url=source.url,
            stream_id=client.stream.id,
        )
        writer = conn.writer
        try:
            head = render_head(
                200,
                [
                    ("Connection", "Close"),
                    ("Content-Type", "video/x-flv"),
                    ("Server", SIGNATURE),
                    ("Transfer-Encoding", "chunked"),
                ],
            )
            writer.write(head + f"{len(FLV_HEADER):x}\r\n".encode() + FLV_HEADER + b"\r\n")
            self.stat.add_bytes(client, send=len(FLV_HEADER))
            eof = asyncio.create_task(reader.read(1))
            while not conn.expired:
                getter = asyncio.create_task(queue.get())
                done, _ = await asyncio.wait({getter, eof}, return_when=asyncio.FIRST_COMPLETED)
                if getter not in done:
                    getter.cancel()
                    break
                data = getter.result()
                writer.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                await writer.drain()
            eof.cancel()
        except ConnectionError:
            pass
        finally:
            self.remove_consumer(source, consumer)
            self.stat.on_disconnect(conn.id, self.now())
            self.events.emit("client_left", id=conn.id, type="flv-play", url=source.url)

    # --- synthetic load ---
    def create_fake_streams(self, count: int, seed: int) -> None:
        """N publishing streams, each with players, stable for a seed; no TCP behind them."""
        rng = random.Random(seed)
        ids = random.Random(seed + 1)
        saved, self.stat.rng = self.stat.rng, ids
        now = self.now()
        videos = [
            ("H264", "High", "4.1", 1920, 1080),
            ("H264", "Main", "3.1", 1280, 720),
            ("H264", "Baseline", "3", 640, 360),
            ("H265", "Main", "4", 1920, 1080),
        ]
        play_types = ["rtmp-play", "flv-play", "hls-play"]
        for i in range(count):
            app = "live"
            name = f"fake{i:05d}"
            started = now - rng.uniform(60, 3600)
            kbps = rng.randint(300, 4000)
            ip = f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
            tc_url = f"rtmp://{ip}:1935/{app}"
            ref = StreamRef("__defaultVhost__", app, name, tc_url, ip)
            pub = self.stat.on_client(random_str(ids, 8), ref, "fmle-publish", started, None)
            pub.created = started
            self.stat.add_rates(pub, kbps * 1000 / 8, 0.0, started, now)
            codec, profile, level, width, height = videos[rng.randrange(len(videos))]
            video = None if rng.random() < 0.05 else VideoInfo(codec, profile, level, width, height)
            audio = (
                None
                if rng.random() < 0.05
                else AudioInfo("AAC", rng.choice([44100, 48000]), 2, "LC")
            )
            self.stat.on_stream_publish(
                pub.stream,
                pub.id,
                started,
                video=video,
                audio=audio,
                fps=float(rng.choice([25, 30])),
            )
            for _ in range(rng.randint(0, 4)):
                ptype = rng.choice(play_types)
                joined = rng.uniform(started, now)
                pname = name + {"rtmp-play": "", "flv-play": ".flv", "hls-play": ".m3u8"}[ptype]
                player_ip = f"192.168.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
                player_ref = StreamRef("__defaultVhost__", app, pname, tc_url, player_ip)
                player = self.stat.on_client(random_str(ids, 8), player_ref, ptype, joined, None)
                player.created = joined
                self.stat.add_rates(player, 0.0, kbps * 1000 / 8, joined, now)
        self.stat.rng = saved
        self.events.emit("fake_streams", count=count, seed=seed)


async def wait_readable(loop: asyncio.AbstractEventLoop, fd: int) -> None:
    ready: asyncio.Future[None] = loop.create_future()

    def on_readable() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(fd, on_readable)
    try:
        await ready
    finally:
        loop.remove_reader(fd)


def flv_mount(template: str, vhost: str, app: str, stream: str) -> str:
    mount = template.replace("[vhost]", vhost).replace("[app]", app).replace("[stream]", stream)
    return mount.replace("__defaultVhost__/", "/")


def parse_declaration(line: bytes) -> tuple[str, str, str, dict[str, str]] | None:
    """`PUBLISH app/stream[?vhost=v] [video=none] [audio=none]` or `PLAY app/stream[?vhost=v]`."""
    try:
        words = line.decode("utf-8").strip().split()
    except UnicodeDecodeError:
        return None
    if len(words) < 2 or words[0] not in ("PUBLISH", "PLAY"):
        return None
    target, _, query = words[1].partition("?")
    app, sep, stream = target.strip("/").rpartition("/")
    if not sep or not app or not stream:
        return None
    params: dict[str, str] = {}
    for part in query.split("&") if query else []:
        k, _, v = part.partition("=")
        params[k] = v
    for word in words[2:]:
        k, _, v = word.partition("=")
        params[k] = v
    return words[0], app, stream, params


def in_docker(cfg: Config) -> bool:
    """SRS: /proc/1/cgroup mentions docker, or `in_docker on`, or SRS_IN_DOCKER=on."""
    try:
        with open("/proc/1/cgroup", encoding="utf-8") as f:
            if "/docker" in f.read():
                return True
    except OSError:
        pass
    return cfg.in_docker()


def set_process_name(name: str) -> None:
    """`comm` = srs, as for the real binary (PR_SET_NAME); best effort."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(15, name.encode(), 0, 0, 0)


def daemonize() -> None:
    """`daemon on`: fork twice; the parent returns 0 to the shell at once, as SRS does."""
    if os.fork() > 0:
        os._exit(0)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)


def main(argv: list[str] | None = None) -> int:
    parsed = parse_args(sys.argv[1:] if argv is None else argv)
    if isinstance(parsed, int):
        return parsed
    opts = parsed
    set_process_name("srs")
    pid = os.getpid()
    boot = SrsLog(pid, None)
    cid = random_str(random.Random(), 8)
    boot.trace(cid, f"XCORE-{SIGNATURE}")
    events = Events(opts.events)
    if not opts.env_only and not os.path.exists(opts.config):
        err = srsconf.config_invalid(f"no config file at {opts.config}")
        if opts.test:
            boot.trace(cid, f"invalid config{err.summary()} in {opts.config}")
            return err.code & 0xFF
        err.wrap("config parse options")
        boot.error(cid, f"Failed, {err.description(pid, cid)}")
        events.emit("exit", code=err.code & 0xFF, reason="no config file")
        return err.code & 0xFF
    try:
        if opts.env_only:
            cfg = Config(srsconf.Directive("root"), opts.config, env_only=True)
            srsconf.check(cfg, lambda m: boot.trace(cid, m))
        else:
            cfg = srsconf.load(
                opts.config,
                trace=lambda m: boot.trace(cid, m),
                context="test" if opts.test else "start",
            )
    except SrsError as e:
        if opts.test:
            boot.trace(cid, f"invalid config{e.summary()} in {opts.config}")
            boot.trace(cid, f"config file {opts.config} test is failed")
            return e.code & 0xFF
        boot.error(cid, f"Failed, {e.description(pid, cid)}")
        events.emit("exit", code=e.code & 0xFF, reason=e.summary())
        return e.code & 0xFF
    if opts.test:
        boot.trace(cid, f"the config file {opts.config} syntax is ok")
        boot.trace(cid, f"config file {opts.config} test is successful")
        return 0

    docker = in_docker(cfg)
    if cfg.daemon() and not (docker and cfg.disable_daemon_for_docker()):
        daemonize()
    log_path = cfg.log_file() if cfg.log_tank_file() else None
    log = SrsLog(os.getpid(), log_path)
    server = StandIn(opts, cfg, log, events)
    log.trace(server.cid, f"{SIGNATURE}, MIT")
    log.trace(
        server.cid,
        f"cwd={server.cwd}, work_dir=./, build: 2026-11-26 18:33:51, "
        f"configure: --rtc=off --srt=off, uname: {' '.join(os.uname())}, "
        f"osx: 0, env: 0, pkg: ",
    )
    events.emit("start", config=os.path.abspath(cfg.path), pid=os.getpid())
    try:
        asyncio.run(server.run())
    except SrsError as e:
        log.error(server.cid, f"Failed, {e.description(os.getpid(), server.cid)}")
        events.emit("exit", code=e.code & 0xFF, reason=e.summary())
        return e.code & 0xFF
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # SIGINT before the handlers are installed
        sys.exit(130)
    except OSError as e:
        if e.errno == errno_mod.EPIPE:
            sys.exit(0)
        raise
