"""The HTTP API of SRS 6.0.155 (/api/v1/..., /metrics), answered from the stand-in's state.

Routing follows `SrsHttpServeMux`: a pattern ending in `/` matches its whole subtree, the
longest matching pattern wins, and `/` (the API root) catches everything else. Replies
follow srs_app_http_api.cpp: HTTP 200 with the error in `code`, `{"code":N}` alone for
errors, `server`/`service`/`pid` on the objects that carry them, paging by
`start`/`count` with `count = max(10, count)`. `api_version` 4 and 5 trim what those
SRS versions lack (read from the v4.0-r5 and v5.0-r3 sources).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from tests.standin import stat as st
from tests.standin.httpd import Request, Response, text_error
from tests.standin.procinfo import Sampler
from tests.standin.srsconf import Config
from tests.standin.srsjson import JsonValue, dumps

ERROR_SYSTEM_CONFIG_RAW = 1060
ERROR_SYSTEM_CONFIG_RAW_DISABLED = 1061
ERROR_EXPORTER_DISABLED = 1090
HTTP_BAD_REQUEST = 400

VERSION: dict[str, JsonValue] = {"major": 6, "minor": 0, "revision": 155, "version": "6.0.155"}
AUTHORS: dict[str, JsonValue] = {
    "license": "MIT",
    "contributors": "https://github.com/ossrs/srs/blob/develop/trunk/AUTHORS.md#contributors",
}
BUILD_DATE = "2026-11-26 18:33:51"
FEATURES: dict[str, JsonValue] = {
    "options": "--rtc=off --srt=off --ffmpeg-fit=off --sys-ssl=on --sanitizer=off --jobs=2",
    "options2": (
        "--prefix=/usr/local/srs --config=conf/srs.conf --osx=off --hls=on --hds=off --dvr=on"
        " --ssl=on --https=on --ssl-1-0=off --ssl-local=off --sys-ssl=on --transcode=on"
        " --ingest=on --stat=on --http-callback=on --http-server=on --stream-converter=on"
        " --http-api=on --utest=off --srt=off --sys-srt=off --rtc=off --h265=on --gb28181=off"
        " --simulator=off --cxx11=on --cxx14=off --backtrace=on --ffmpeg-fit=off"
        " --sys-ffmpeg=off --ffmpeg-opus=off --nasm=on --srtp-nasm=off --sys-srtp=off"
        " --clean=on --gperf=off --gmc=off --gmd=off --gmp=off --gcp=off --gprof=off"
        " --static=off --shared-st=off --shared-srt=reserved --shared-ffmpeg=reserved"
        " --shared-srtp=reserved --log-verbose=off --log-info=off --log-trace=on"
        " --log-level_v2=on --gcov=off --apm=off --debug=off --debug-stats=off"
        " --cross-build=off --sanitizer=off --sanitizer-static=off --sanitizer-log=off"
        " --cygwin64=off --single-thread=on --signal-api=off --generic-linux=off"
        " --build-cache=on --cc=gcc --cxx=g++ --ar=ar --ld=ld --randlib=randlib"
    ),
    "build": BUILD_DATE,
    "build2": "1795718031",
    "features": {
        "ssl": True,
        "hls": True,
        "hds": False,
        "callback": True,
        "api": True,
        "httpd": True,
        "dvr": True,
        "transcode": True,
        "ingest": True,
        "stat": True,
        "caster": True,
        "complex_send": True,
        "tcp_nodelay": True,
        "so_sendbuf": False,
        "mr": True,
    },
}
V1_URLS: dict[str, JsonValue] = {
    "versions": "the version of SRS",
    "summaries": "the summary(pid, argv, pwd, cpu, mem) of SRS",
    "rusages": "the rusage of SRS",
    "self_proc_stats": "the self process stats",
    "system_proc_stats": "the system process stats",
    "meminfos": "the meminfo of system",
    "authors": "the license, copyright, authors and contributors",
    "features": "the supported features of SRS",
    "requests": "the request itself, for http debug",
    "vhosts": "manage all vhosts or specified vhost",
    "streams": "manage all streams or specified stream",
    "clients": "manage all clients or specified client, default query top 10 clients",
    "raw": "raw api for srs, support CUID srs for instance the config",
    "clusters": "origin cluster server API",
    "perf": "System performance stat",
    "tcmalloc": "tcmalloc api with params ?page=summary|api",
}
V1_TESTS: dict[str, JsonValue] = {
    "requests": "show the request info",
    "errors": "always return an error 100",
    "redirects": "always redirect to /api/v1/test/errors",
    "[vhost]": "http vhost for http://error.srs.com:1985/api/v1/tests/errors",
}
ROOT_URLS: dict[str, JsonValue] = {
    "api": "the api root",
    "rtc": {
        "v1": {"play": "Play stream", "publish": "Publish stream", "nack": "Simulate the NACK"}
    },
}

API_PATTERNS = (
    "/",
    "/api/v1/versions",
    "/api/",
    "/api/v1/",
    "/api/v1/summaries",
    "/api/v1/rusages",
    "/api/v1/self_proc_stats",
    "/api/v1/system_proc_stats",
    "/api/v1/meminfos",
    "/api/v1/authors",
    "/api/v1/features",
    "/api/v1/vhosts/",
    "/api/v1/streams/",
    "/api/v1/clients/",
    "/api/v1/raw",
    "/api/v1/clusters",
    "/api/v1/tests/requests",
    "/api/v1/tests/errors",
    "/api/v1/tests/redirects",
    "/metrics",
    "/console/",
)


class ApiHost(Protocol):
    """What the API needs from the server."""

    cfg: Config
    stat: st.Statistic
    sampler: Sampler
    api_version: int
    server_id: str
    service_id: str
    pid_text: str
    raw_api: bool
    raw_allow_reload: bool
    argv: str
    cwd: str

    def now(self) -> float: ...

    def reload_result(self) -> tuple[int, str, int, str]: ...

    def request_reload(self) -> None: ...

    def metrics_text(self) -> str | None: ...

    def kick(self, client: st.Client) -> None: ...

    def origin_of(self, vhost: str, app: str, stream: str, coworker: str) -> JsonValue: ...

    def conn_count(self) -> int: ...

    def serve_static(self, req: Request, root_dir: str) -> Response: ...


def match_pattern(patterns: tuple[str, ...], path: str) -> str | None:
    """`SrsHttpServeMux::match`: exact for `/x`, subtree for `/x/`, the longest wins."""
    best: str | None = None
    for pattern in patterns:
        ok = path.startswith(pattern) if pattern.endswith("/") else pattern == path
        if ok and (best is None or len(pattern) > len(best)):
            best = pattern
    return best


def json_response(req: Request, body: str, content_type: str = "") -> Response:
    """`srs_api_response`: JSON, or JSONP when `?callback=` is given."""
    callback = req.query("callback")
    if callback:
        data = f"{callback}({body})".encode()
        return Response(
            200, [("Content-Length", str(len(data))), ("Content-Type", "text/javascript")], data
        )
    data = body.encode("utf-8", errors="surrogateescape")
    length = ("Content-Length", str(len(data)))
    if content_type:  # set by the handler, before srs_api_response_json sets the length
        return Response(200, [("Content-Type", content_type), length], data)
    return Response(200, [length, ("Content-Type", "application/json")], data)


def code_response(req: Request, code: int) -> Response:
    return json_response(req, dumps({"code": code}))


class Api:
    """Routes one request of the API listener (or of a shared HTTP listener)."""

    def __init__(self, host: ApiHost) -> None:
        self.host = host
        self.routes: dict[str, Callable[[Request], Response]] = {
            "/": self.root,
            "/api/v1/versions": self.versions,
            "/api/": self.api,
            "/api/v1/": self.v1,
            "/api/v1/summaries": self.summaries,
            "/api/v1/rusages": lambda r: self.data(r, self.host.sampler.rusages()),
            "/api/v1/self_proc_stats": lambda r: self.data(r, self.host.sampler.self_proc_stats()),
            "/api/v1/system_proc_stats": lambda r: self.data(
                r, self.host.sampler.system_proc_stats()
            ),
            "/api/v1/meminfos": lambda r: self.data(r, self.host.sampler.meminfos()),
            "/api/v1/authors": lambda r: self.data(r, dict(AUTHORS)),
            "/api/v1/features": lambda r: self.data(r, FEATURES),
            "/api/v1/vhosts/": self.vhosts,
            "/api/v1/streams/": self.streams,
            "/api/v1/clients/": self.clients,
            "/api/v1/raw": self.raw,
            "/api/v1/clusters": self.clusters,
            "/api/v1/tests/requests": self.requests,
            "/api/v1/tests/errors": lambda r: code_response(r, 100),
            "/api/v1/tests/redirects": self.redirects,
            "/metrics": self.metrics,
            "/console/": self.console,
        }

    def serve(self, req: Request) -> Response:
        pattern = match_pattern(API_PATTERNS, req.path)
        assert pattern is not None  # "/" matches every path
        return self.routes[pattern](req)

    # --- helpers ---
    def head(self) -> dict[str, JsonValue]:
        obj: dict[str, JsonValue] = {"code": 0, "server": self.host.server_id}
        if self.host.api_version >= 5:
            obj["service"] = self.host.service_id
            obj["pid"] = self.host.pid_text
        return obj

    def data(self, req: Request, data: JsonValue) -> Response:
        obj = self.head()
        obj["data"] = data
        return json_response(req, dumps(obj))

    # --- handlers ---
    def root(self, req: Request) -> Response:
        obj = self.head()
        obj["urls"] = ROOT_URLS
        return json_response(req, dumps(obj))

    def api(self, req: Request) -> Response:
        obj = self.head()
        obj["urls"] = {"v1": "the api version 1.0"}
        return json_response(req, dumps(obj))

    def v1(self, req: Request) -> Response:
        obj = self.head()
        obj["urls"] = V1_URLS
        obj["tests"] = V1_TESTS
        return json_response(req, dumps(obj))

    def versions(self, req: Request) -> Response:
        return self.data(req, dict(VERSION))

    def summaries(self, req: Request) -> Response:
        h = self.host
        now = h.now()
        return self.data(
            req,
            h.sampler.summaries(
                h.argv,
                h.cwd,
                h.stat.traffic.send_bytes(now),
                h.stat.traffic.recv_bytes(now),
                h.conn_count(),
            ),
        )

    def _rest_id(self, req: Request, pattern: str) -> str:
        return req.path[len(pattern) :] if len(req.path) > len(pattern) else ""

    def vhosts(self, req: Request) -> Response:
        h, now = self.host, self.host.now()
        vid = self._rest_id(req, "/api/v1/vhosts/")
        vhost = h.stat.vhosts.get(vid) if vid else None
        if vid and vhost is None:
            return code_response(req, st.ERROR_RTMP_VHOST_NOT_FOUND)
        if req.method != "GET":
            return text_error(405)
        obj = self.head()

        def dump(v: st.Vhost) -> JsonValue:
            return h.stat.dump_vhost(
                v,
                now,
                h.cfg.hls_enabled(v.name),
                h.cfg.vhost_enabled(v.name),
                h.cfg.hls_fragment(v.name),
            )

        if vhost is None:
            obj["vhosts"] = [dump(v) for _, v in sorted(h.stat.vhosts.items())]
        else:
            obj["vhost"] = dump(vhost)
        return json_response(req, dumps(obj))

    def streams(self, req: Request) -> Response:
        h, now = self.host, self.host.now()
        sid = self._rest_id(req, "/api/v1/streams/")
        stream = h.stat.streams.get(sid) if sid else None
        if sid and stream is None:
            return code_response(req, st.ERROR_RTMP_STREAM_NOT_FOUND)
        if req.method != "GET":
            return text_error(405)
        obj = self.head()
        if stream is None:
            start, end = st.page_bounds(req.query("start"), req.query("count"))
            ids = sorted(h.stat.streams)[start:end]
            obj["streams"] = [
                h.stat.dump_stream(h.stat.streams[i], now, h.api_version) for i in ids
            ]
        else:
            obj["stream"] = h.stat.dump_stream(stream, now, h.api_version)
        return json_response(req, dumps(obj))

    def clients(self, req: Request) -> Response:
        h, now = self.host, self.host.now()
        cid = self._rest_id(req, "/api/v1/clients/")
        client = h.stat.clients.get(cid) if cid else None
        if cid and client is None:
            return code_response(req, st.ERROR_RTMP_CLIENT_NOT_FOUND)
        obj = self.head()
        if req.method == "GET":
            if client is None:
                start, end = st.page_bounds(req.query("start"), req.query("count"))
                ids = sorted(h.stat.clients)[start:end]
                obj["clients"] = [
                    h.stat.dump_client(h.stat.clients[i], now, h.api_version) for i in ids
                ]
            else:
                obj["client"] = h.stat.dump_client(client, now, h.api_version)
        elif req.method == "DELETE":
            if client is None:
                return code_response(req, st.ERROR_RTMP_CLIENT_NOT_FOUND)
            if client.kick is None:
                return code_response(req, HTTP_BAD_REQUEST)
            h.kick(client)
        else:
            return text_error(405)
        return json_response(req, dumps(obj))

    def raw(self, req: Request) -> Response:
        h = self.host
        rpc = req.query("rpc")
        if rpc == "raw":
            cfg = h.cfg
            return json_response(
                req,
                dumps(
                    {
                        "code": 0,
                        "http_api": {
                            "enabled": cfg.http_api_enabled(),
                            "listen": cfg.http_api_listen(),
                            "crossdomain": cfg.http_api_crossdomain(),
                            "raw_api": {
                                "enabled": cfg.raw_api(),
                                "allow_reload": cfg.raw_api_allow_reload(),
                                "allow_query": False,
                                "allow_update": False,
                            },
                        },
                    }
                ),
            )
        if not h.raw_api:
            return code_response(req, ERROR_SYSTEM_CONFIG_RAW_DISABLED)
        allowed = ("reload",) if h.api_version < 5 else ("reload", "reload-fetch")
        if rpc not in allowed:
            return code_response(req, ERROR_SYSTEM_CONFIG_RAW)
        if rpc == "reload":
            if not h.raw_allow_reload:
                return code_response(req, ERROR_SYSTEM_CONFIG_RAW_DISABLED)
            h.request_reload()
            return code_response(req, 0)
        err, msg, state, rid = h.reload_result()
        return json_response(
            req, dumps({"code": 0, "data": {"err": err, "msg": msg, "state": state, "rid": rid}})
        )

    def clusters(self, req: Request) -> Response:
        q = {k: req.query(k) for k in ("ip", "vhost", "app", "stream")}
        origin = self.host.origin_of(q["vhost"], q["app"], q["stream"], req.query("coworker"))
        query: dict[str, JsonValue] = dict(q)
        return json_response(req, dumps({"code": 0, "data": {"query": query, "origin": origin}}))

    def requests(self, req: Request) -> Response:
        obj = self.head()
        obj["data"] = {
            "uri": req.target,
            "path": req.path,
            "METHOD": req.method,
            "headers": dict(req.headers),
            "server": {
                "sigature": "SRS",
                "version": "6.0.155",
                "link": "https://github.com/ossrs/srs",
                "time": int(self.host.now() * 1000),
            },
        }
        return json_response(req, dumps(obj))

    def redirects(self, req: Request) -> Response:
        return Response(301, [("Location", "/api/v1/tests/errors"), ("Content-Length", "0")])

    def metrics(self, req: Request) -> Response:
        if self.host.api_version < 5:
            return self.root(req)  # SRS 4 has no /metrics: "/" answers
        text = self.host.metrics_text()
        if text is None:
            return code_response(req, ERROR_EXPORTER_DISABLED)
        return json_response(req, text, "text/plain; charset=utf-8")

    def console(self, req: Request) -> Response:
        return self.host.serve_static(req, self.host.cfg.http_server_dir())


def render_metrics(
    *,
    server_id: str,
    service_id: str,
    pid: str,
    label: str,
    tag: str,
    uname: dict[str, str],
    cpu_percent: float,
    memory_kib: int,
    send_bytes: int,
    recv_bytes: int,
    streams: int,
    clients: int,
    clients_total: int,
    errs: int,
) -> str:
    """`SrsGoApiMetrics::serve_http`: the 10 global series of SRS's built-in exporter."""
    labels = ",".join(f'{k}="{v}"' for k, v in uname.items())
    build = (
        f'server="{server_id}",service="{service_id}",pid="{pid}",'
        f'build_date="{BUILD_DATE}",major="6",version="6.0.155",code="Hang"'
    )
    if label:
        build += f',label="{label}"'
    if tag:
        build += f',tag="{tag}"'
    parts = [
        "# HELP srs_node_uname_info Labeled system information as provided by the uname"
        " system call.",
        "# TYPE srs_node_uname_info gauge",
        f"srs_node_uname_info{{{labels}}} 1",
        "# HELP srs_build_info A metric with a constant '1' value labeled by build_date,"
        " version from which SRS was built.",
        "# TYPE srs_build_info gauge",
        f"srs_build_info{{{build}}} 1",
        "# HELP srs_cpu_percent SRS cpu used percent.",
        "# TYPE srs_cpu_percent gauge",
        f"srs_cpu_percent {cpu_percent * 100:g}",
        "# HELP srs_memory SRS memory used.",
        "# TYPE srs_memory gauge",
        f"srs_memory {memory_kib}",
        "# HELP srs_send_bytes_total SRS total sent bytes.",
        "# TYPE srs_send_bytes_total counter",
        f"srs_send_bytes_total {send_bytes}",
        "# HELP srs_receive_bytes_total SRS total received bytes.",
        "# TYPE srs_receive_bytes_total counter",
        f"srs_receive_bytes_total {recv_bytes}",
        "# HELP srs_streams The number of SRS concurrent streams.",
        "# TYPE srs_streams gauge",
        f"srs_streams {streams}",
        "# HELP srs_clients The number of SRS concurrent clients.",
        "# TYPE srs_clients gauge",
        f"srs_clients {clients}",
        "# HELP srs_clients_total The total counts of SRS clients.",
        "# TYPE srs_clients_total counter",
        f"srs_clients_total {clients_total}",
        "# HELP srs_clients_errs_total The total errors of SRS clients.",
        "# TYPE srs_clients_errs_total counter",
        f"srs_clients_errs_total {errs}",
    ]
    return "\n".join(parts) + "\n"
