"""srs.conf for the SRS stand-in: a port of SRS 6.0.155's tokenizer, checks and getters.

The stand-in must accept and reject exactly what SRS accepts and rejects, with the same
error text, so that a reload agent tested against it meets the same failures as in
production. The tokenizer is a line-by-line port of `SrsConfDirective::read_token` and
`parse_conf` (trunk/src/app/srs_app_config.cpp); the checks keep SRS's lists of known
directives; the getters keep SRS's defaults, env overrides (`SRS_...`) and on/off rules.
Pure: reading a file is the only I/O, and it is passed in as a callable.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

ERROR_SYSTEM_CONFIG_INVALID = 1023
ERROR_SYSTEM_FILE_OPENE = 1042

ERROR_NAMES: dict[int, tuple[str, str]] = {
    1002: ("SocketBind", "Bind socket failed"),
    1034: ("PidFileAcquire", "SRS process exists so that acquire pid file failed"),
    1036: ("PidFileLock", "SRS process exists so that lock pid file failed"),
    ERROR_SYSTEM_CONFIG_INVALID: ("ConfigInvalid", "Configuration is invalid"),
    ERROR_SYSTEM_FILE_OPENE: ("FileOpen", "Failed to open file"),
}

DEFAULT_VHOST = "__defaultVhost__"

# SrsDirectiveState
STATE_INIT, STATE_ENTIRE, STATE_BLOCK_START, STATE_BLOCK_END, STATE_EOF = range(5)
# SrsDirectiveContext
CTX_FILE, CTX_BLOCK = 0, 1


class SrsError(Exception):
    """An SRS error chain: `code` and the messages from the outermost wrap inwards."""

    def __init__(self, code: int, message: str, func: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.messages = [message]
        self.funcs = [func]
        self.state = 0  # the reload state at failure: 10 parsing, 20 checking, 30 applying

    def wrap(self, message: str, func: str = "") -> SrsError:
        self.messages.insert(0, message)
        self.funcs.insert(0, func)
        return self

    def summary(self) -> str:
        """`srs_error_summary`: what reload-fetch reports in `msg`."""
        name = ERROR_NAMES.get(self.code, ("", ""))[0]
        head = f"code={self.code}" + (f"({name})" if name else "")
        return head + "".join(f" : {m}" for m in self.messages)

    def description(self, pid: int, cid: str) -> str:
        """`srs_error_desc`: what SRS logs, with one `thread` line per wrap."""
        name, long_name = ERROR_NAMES.get(self.code, ("", ""))
        head = (
            f"code={self.code}"
            + (f"({name})" if name else "")
            + (f"({long_name})" if long_name else "")
        )
        text = head + "".join(f" : {m}" for m in self.messages) + "\n"
        where = "[./src/app/srs_app_config.cpp:0][errno=11]"
        frames = [f"thread [{pid}][{cid}]: {func or 'unknown'}() {where}" for func in self.funcs]
        return text + "\n".join(frames)


def config_invalid(message: str, func: str = "") -> SrsError:
    return SrsError(ERROR_SYSTEM_CONFIG_INVALID, message, func)


@dataclass
class Directive:
    name: str
    args: list[str] = field(default_factory=list)
    directives: list[Directive] = field(default_factory=list)
    conf_line: int = 0

    def arg0(self) -> str:
        return self.args[0] if self.args else ""

    def get(self, name: str, arg0: str | None = None) -> Directive | None:
        for d in self.directives:
            if d.name == name and (arg0 is None or d.arg0() == arg0):
                return d
        return None

    def get_or_create(self, name: str, arg0: str | None = None) -> Directive:
        found = self.get(name, arg0)
        if found is None:
            found = Directive(name, [arg0] if arg0 is not None else [])
            self.directives.append(found)
        return found

    def equals(self, other: Directive | None) -> bool:
        """`srs_directive_equals`: same name, args and children, recursively."""
        if other is None:
            return False
        if self.name != other.name or self.args != other.args:
            return False
        if len(self.directives) != len(other.directives):
            return False
        return all(a.equals(b) for a, b in zip(self.directives, other.directives, strict=True))


class _Buffer:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.line = 1

    def empty(self) -> bool:
        return self.pos >= len(self.text)


class _TokenError(Exception):
    def __init__(self, error: SrsError, line_start: int, state: int) -> None:
        super().__init__(str(error))
        self.error = error
        self.line_start = line_start
        self.state = state


def _is_common_space(ch: str) -> bool:
    return ch in " \t\r\n"


def _read_token(buf: _Buffer, trace: Callable[[str], None]) -> tuple[list[str], int, int]:
    """Port of `SrsConfDirective::read_token`: returns (args, line_start, state)."""
    args: list[str] = []
    line_start = 0
    pstart = buf.pos
    sharp_comment = False
    d_quoted = s_quoted = False
    need_space = False
    last_space = True

    def fail(message: str) -> _TokenError:
        return _TokenError(config_invalid(message, "read_token"), line_start, STATE_INIT)

    while True:
        if buf.empty():
            if args or not last_space:
                raise fail(f'line {buf.line}: unexpected end of file, expecting ; or "}}"')
            trace("config parse complete")
            return args, line_start, STATE_EOF

        ch = buf.text[buf.pos]
        buf.pos += 1

        if ch in "\n\r":
            if ch == "\n":
                buf.line += 1
            sharp_comment = False
            if args:
                raise fail(f"line {buf.line - 1}: unexpected end of line to parse token {args[0]}")

        if sharp_comment:
            continue

        if need_space:
            if _is_common_space(ch):
                last_space = True
                need_space = False
                continue
            if ch == ";":
                return args, line_start, STATE_ENTIRE
            if ch == "{":
                return args, line_start, STATE_BLOCK_START
            raise fail(f"line {buf.line}: unexpected '{ch}'")

        if last_space:
            if _is_common_space(ch):
                continue
            pstart = buf.pos - 1
            if ch == ";":
                if not args:
                    raise fail(f"line {buf.line}: unexpected ';'")
                return args, line_start, STATE_ENTIRE
            if ch == "{":
                if not args:
                    raise fail(f"line {buf.line}: unexpected '{{'")
                return args, line_start, STATE_BLOCK_START
            if ch == "}":
                if args:
                    raise fail(f"line {buf.line}: unexpected '}}'")
                return args, line_start, STATE_BLOCK_END
            if ch == "#":
                sharp_comment = True
                continue
            if ch == '"':
                pstart += 1
                d_quoted = True
            elif ch == "'":
                pstart += 1
                s_quoted = True
            last_space = False
            continue

        # The last character is not a space.
        if line_start == 0:
            line_start = buf.line
        found = False
        if d_quoted:
            if ch == '"':
                d_quoted = False
                need_space = True
                found = True
        elif s_quoted:
            if ch == "'":
                s_quoted = False
                need_space = True
                found = True
        elif _is_common_space(ch) or ch in ";{":
            last_space = True
            found = True
        if found:
            word = buf.text[pstart : buf.pos - 1]
            if word:
                args.append(word)
            if ch == ";":
                return args, line_start, STATE_ENTIRE
            if ch == "{":
                return args, line_start, STATE_BLOCK_START
            if ch in "\n\r" and args:
                raise fail(f"line {buf.line - 1}: unexpected end of line to parse token {args[0]}")


ReadFile = Callable[[str], str]


def _read_text(path: str) -> str:
    with open(path, "rb") as f:
        return f.read().decode("utf-8", errors="surrogateescape")


def _build_buffer(path: str, read: ReadFile) -> _Buffer:
    try:
        text = read(path)
    except OSError:
        error = SrsError(ERROR_SYSTEM_FILE_OPENE, f"open file {path} failed", "open")
        raise error.wrap(f"open file={path}", "fullfill").wrap(
            f"read from src {path}", "build_buffer"
        ) from None
    return _Buffer(text)


def _parse_conf(
    parent: Directive, buf: _Buffer, ctx: int, read: ReadFile, trace: Callable[[str], None]
) -> None:
    """Port of `SrsConfDirective::parse_conf`, `include` included."""
    if ctx == CTX_FILE and buf.empty():
        return
    while True:
        try:
            args, line_start, state = _read_token(buf, trace)
        except _TokenError as e:
            raise e.error.wrap(
                f"read token, line={e.line_start}, state={e.state}", "parse_conf"
            ) from None

        if state == STATE_BLOCK_END:
            if ctx == CTX_BLOCK:
                return
            raise config_invalid(f'line {buf.line}: unexpected "}}"', "parse_conf")
        if state == STATE_EOF:
            if ctx != CTX_BLOCK:
                return
            raise config_invalid(
                f'line {parent.conf_line}: unexpected end of file, expecting "}}"', "parse_conf"
            )
        if not args:
            raise config_invalid(f"line {parent.conf_line}: empty directive", "parse_conf")

        if args[0] != "include":
            directive = Directive(args[0], args[1:], [], line_start)
            parent.directives.append(directive)
            if state == STATE_BLOCK_START:
                try:
                    _parse_conf(directive, buf, CTX_BLOCK, read, trace)
                except SrsError as e:
                    raise e.wrap("parse dir", "parse_conf") from None
            continue

        files = args[1:]
        if not files:
            raise config_invalid(f"line {buf.line}: include is empty directive", "parse_conf")
        for name in files:
            trace(f"config parse include {name}")
            try:
                sub = _build_buffer(name, read)
            except SrsError as e:
                raise e.wrap(f"buffer fullfill {name}", "parse_conf") from None
            try:
                _parse_conf(parent, sub, CTX_FILE, read, trace)
            except SrsError as e:
                raise e.wrap(f"parse include buffer {name}", "parse_conf") from None


def parse_text(
    text: str, read: ReadFile = _read_text, trace: Callable[[str], None] | None = None
) -> Directive:
    """Parse config text into the root directive; raises SrsError like `root parse`."""
    root = Directive("root")
    try:
        _parse_conf(root, _Buffer(text), CTX_FILE, read, trace or (lambda _m: None))
    except SrsError as e:
        raise e.wrap("root parse", "parse_buffer") from None
    return root


def parse_file(
    path: str, read: ReadFile = _read_text, trace: Callable[[str], None] | None = None
) -> Directive:
    """`SrsConfig::parse_file`: errors are wrapped with `parse buffer <path>`."""
    if not path:
        raise config_invalid("empty config", "parse_file")
    try:
        buf = _build_buffer(path, read)
    except SrsError as e:
        raise e.wrap(f"buffer fullfill {path}", "parse_file") from None
    try:
        return parse_text(buf.text, read, trace)
    except SrsError as e:
        raise e.wrap(f"parse buffer {path}", "parse_file") from None


# --- transform: older spellings that SRS 6 still accepts (srs_config_transform_vhost) ---

_PLAY_MOVED = {
    "time_jitter",
    "mix_correct",
    "atc",
    "atc_auto",
    "mw_latency",
    "gop_cache",
    "gop_cache_max_frames",
    "queue_length",
    "send_min_interval",
    "reduce_sequence_header",
}
_CLUSTER_MOVED = {"mode", "origin", "token_traverse", "vhost", "debug_srs_upnode"}


def transform(root: Directive) -> None:
    """Rewrite old-style directives in place, as `srs_config_transform_vhost` does."""
    for top in root.directives:
        if top.name == "http_stream":
            top.name = "http_server"
        if top.name != "vhost":
            continue
        kept: list[Directive] = []
        moved: list[tuple[str, Directive]] = []
        for conf in top.directives:
            n = conf.name
            if n == "http":
                conf.name = "http_static"
            if n == "http_remux":
                conf.directives = [d for d in conf.directives if d.name != "hstrs"]
            if (n == "refer" and not conf.directives) or n in ("refer_play", "refer_publish"):
                sub = {"refer": "all", "refer_play": "play", "refer_publish": "publish"}[n]
                moved.append(("refer", Directive(sub, list(conf.args))))
                continue
            if n == "mr":
                if (en := conf.get("enabled")) is not None:
                    moved.append(("publish", Directive("mr", list(en.args))))
                if (lat := conf.get("latency")) is not None:
                    moved.append(("publish", Directive("mr_latency", list(lat.args))))
                continue
            if n == "publish_1stpkt_timeout":
                moved.append(("publish", Directive("firstpkt_timeout", list(conf.args))))
                continue
            if n == "publish_normal_timeout":
                moved.append(("publish", Directive("normal_timeout", list(conf.args))))
                continue
            if n in _PLAY_MOVED:
                moved.append(("play", Directive(n, list(conf.args))))
                continue
            if n == "forward" and not conf.directives and conf.args:
                conf.directives = [
                    Directive("enabled", ["on"]),
                    Directive("destination", conf.args),
                ]
                conf.args = []
            if n in _CLUSTER_MOVED:
                moved.append(("cluster", Directive(n, list(conf.args))))
                continue
            kept.append(conf)
        top.directives = kept
        for parent_name, child in moved:
            parent = top.get_or_create(parent_name)
            if parent_name == "refer":
                parent.get_or_create("enabled", "on")
            existing = parent.get(child.name)
            if existing is not None:
                existing.args = child.args
            else:
                parent.directives.append(child)


# --- check: the known directives of SRS 6.0.155 (SrsConfig::check_normal_config) ---

ROOT_DIRECTIVES = frozenset(
    {
        "listen",
        "pid",
        "chunk_size",
        "ff_log_dir",
        "srs_log_tank",
        "srs_log_level",
        "srs_log_level_v2",
        "srs_log_file",
        "max_connections",
        "daemon",
        "heartbeat",
        "tencentcloud_apm",
        "http_api",
        "stats",
        "vhost",
        "pithy_print_ms",
        "http_server",
        "stream_caster",
        "rtc_server",
        "srt_server",
        "utc_time",
        "work_dir",
        "asprocess",
        "server_id",
        "ff_log_level",
        "grace_final_wait",
        "force_grace_quit",
        "grace_start_wait",
        "empty_ip_ok",
        "disable_daemon_for_docker",
        "inotify_auto_reload",
        "auto_reload_for_docker",
        "tcmalloc_release_rate",
        "query_latest_version",
        "first_wait_for_qlv",
        "threads",
        "circuit_breaker",
        "is_full",
        "in_docker",
        "tencentcloud_cls",
        "exporter",
    }
)
HTTP_API_DIRECTIVES = frozenset({"enabled", "listen", "crossdomain", "raw_api", "auth", "https"})
RAW_API_DIRECTIVES = frozenset({"enabled", "allow_reload", "allow_query", "allow_update"})
AUTH_DIRECTIVES = frozenset({"enabled", "username", "password"})
HTTP_SERVER_DIRECTIVES = frozenset({"enabled", "listen", "dir", "crossdomain", "https"})
SRT_SERVER_DIRECTIVES = frozenset(
    {
        "enabled",
        "listen",
        "maxbw",
        "mss",
        "latency",
        "recvlatency",
        "peerlatency",
        "connect_timeout",
        "peer_idle_timeout",
        "sendbuf",
        "recvbuf",
        "payloadsize",
        "default_app",
        "sei_filter",
        "mix_correct",
        "tlpktdrop",
        "tsbpdmode",
        "passphrase",
        "pbkeylen",
    }
)
HEARTBEAT_DIRECTIVES = frozenset({"enabled", "interval", "url", "device_id", "summaries"})
STATS_DIRECTIVES = frozenset({"enabled", "network", "disk"})
RTC_SERVER_DIRECTIVES = frozenset(
    {
        "enabled",
        "listen",
        "dir",
        "candidate",
        "ecdsa",
        "tcp",
        "encrypt",
        "reuseport",
        "merge_nalus",
        "black_hole",
        "protocol",
        "ip_family",
        "api_as_candidates",
        "resolve_api_domain",
        "keep_api_domain",
        "use_auto_detect_network_ip",
    }
)
EXPORTER_DIRECTIVES = frozenset({"enabled", "listen", "label", "tag"})
STREAM_CASTER_DIRECTIVES = frozenset({"enabled", "caster", "output", "listen", "sip"})
SIP_DIRECTIVES = frozenset({"enabled", "listen", "timeout", "reinvite", "candidate"})
VHOST_DIRECTIVES = frozenset(
    {
        "enabled",
        "chunk_size",
        "min_latency",
        "tcp_nodelay",
        "dvr",
        "ingest",
        "hls",
        "http_hooks",
        "refer",
        "forward",
        "transcode",
        "bandcheck",
        "play",
        "publish",
        "cluster",
        "security",
        "http_remux",
        "dash",
        "http_static",
        "hds",
        "exec",
        "in_ack_size",
        "out_ack_size",
        "rtc",
        "srt",
    }
)
VHOST_SUB_DIRECTIVES: dict[str, frozenset[str]] = {
    "dvr": frozenset(
        {
            "enabled",
            "dvr_apply",
            "dvr_path",
            "dvr_plan",
            "dvr_duration",
            "dvr_wait_keyframe",
            "time_jitter",
        }
    ),
    "refer": frozenset({"enabled", "all", "publish", "play"}),
    "exec": frozenset({"enabled", "publish"}),
    "play": frozenset(
        {
            "time_jitter",
            "mix_correct",
            "atc",
            "atc_auto",
            "mw_latency",
            "gop_cache",
            "gop_cache_max_frames",
            "queue_length",
            "send_min_interval",
            "reduce_sequence_header",
            "mw_msgs",
        }
    ),
    "cluster": frozenset(
        {
            "mode",
            "origin",
            "token_traverse",
            "vhost",
            "debug_srs_upnode",
            "coworkers",
            "origin_cluster",
            "protocol",
            "follow_client",
        }
    ),
    "publish": frozenset(
        {
            "mr",
            "mr_latency",
            "firstpkt_timeout",
            "normal_timeout",
            "parse_sps",
            "try_annexb_first",
            "kickoff_for_idle",
        }
    ),
    "ingest": frozenset({"enabled", "input", "ffmpeg", "engine"}),
    "http_static": frozenset({"enabled", "mount", "dir"}),
    "http_remux": frozenset(
        {
            "enabled",
            "mount",
            "fast_cache",
            "drop_if_not_match",
            "has_audio",
            "has_video",
            "guess_has_av",
        }
    ),
    "dash": frozenset(
        {
            "enabled",
            "dash_fragment",
            "dash_update_period",
            "dash_timeshift",
            "dash_path",
            "dash_mpd_file",
            "dash_window_size",
            "dash_dispose",
            "dash_cleanup",
        }
    ),
    "hls": frozenset(
        {
            "enabled",
            "hls_entry_prefix",
            "hls_path",
            "hls_fragment",
            "hls_window",
            "hls_on_error",
            "hls_storage",
            "hls_mount",
            "hls_td_ratio",
            "hls_aof_ratio",
            "hls_acodec",
            "hls_vcodec",
            "hls_m3u8_file",
            "hls_ts_file",
            "hls_ts_floor",
            "hls_cleanup",
            "hls_nb_notify",
            "hls_wait_keyframe",
            "hls_dispose",
            "hls_keys",
            "hls_fragments_per_key",
            "hls_key_file",
            "hls_key_file_path",
            "hls_key_url",
            "hls_dts_directly",
            "hls_ctx",
            "hls_ts_ctx",
        }
    ),
    "http_hooks": frozenset(
        {
            "enabled",
            "on_connect",
            "on_close",
            "on_publish",
            "on_unpublish",
            "on_play",
            "on_stop",
            "on_dvr",
            "on_hls",
            "on_hls_notify",
        }
    ),
    "forward": frozenset({"enabled", "destination", "backend"}),
    "security": frozenset({"enabled", "deny", "allow"}),
    "transcode": frozenset({"enabled", "ffmpeg", "engine"}),
    "rtc": frozenset(
        {
            "enabled",
            "nack",
            "twcc",
            "nack_no_copy",
            "bframe",
            "aac",
            "stun_timeout",
            "stun_strict_check",
            "dtls_role",
            "dtls_version",
            "drop_for_pt",
            "rtc_to_rtmp",
            "pli_for_rtmp",
            "rtmp_to_rtc",
            "keep_bframe",
            "opus_bitrate",
            "aac_bitrate",
            "keep_avc_nalu_sei",
        }
    ),
    "srt": frozenset({"enabled", "srt_to_rtmp"}),
}
TRANSCODE_ENGINE_DIRECTIVES = frozenset(
    {
        "enabled",
        "vfilter",
        "vcodec",
        "vbitrate",
        "vfps",
        "vwidth",
        "vheight",
        "vthreads",
        "vprofile",
        "vpreset",
        "vparams",
        "acodec",
        "abitrate",
        "asample_rate",
        "achannels",
        "aparams",
        "output",
        "perfile",
        "iformat",
        "oformat",
    }
)


def _check_children(conf: Directive | None, allowed: frozenset[str], label: str) -> None:
    for d in conf.directives if conf else []:
        if d.name not in allowed:
            raise config_invalid(f"illegal {label}.{d.name}", "check_normal_config")


def check(cfg: Config, trace: Callable[[str], None] | None = None) -> None:
    """`SrsConfig::check_config`: the directive lists and the listen addresses."""
    log = trace or (lambda _m: None)
    try:
        _check_normal(cfg, log)
    except SrsError as e:
        raise e.wrap("check normal", "check_config") from None


def _check_normal(cfg: Config, log: Callable[[str], None]) -> None:
    log("srs checking config...")
    root = cfg.root
    if not cfg.env_only and not root.directives:
        raise config_invalid("conf is empty", "check_normal_config")
    for d in root.directives:
        if d.name not in ROOT_DIRECTIVES:
            raise config_invalid(f"illegal directive {d.name}", "check_normal_config")

    http_api = root.get("http_api")
    for d in http_api.directives if http_api else []:
        if d.name not in HTTP_API_DIRECTIVES:
            raise config_invalid(f"illegal http_api.{d.name}", "check_normal_config")
        if d.name == "raw_api":
            _check_children(d, RAW_API_DIRECTIVES, "http_api.raw_api")
        if d.name == "auth":
            _check_children(d, AUTH_DIRECTIVES, "http_api.auth")
    _check_children(root.get("http_server"), HTTP_SERVER_DIRECTIVES, "http_stream")
    _check_children(root.get("srt_server"), SRT_SERVER_DIRECTIVES, "srt_server")
    _check_children(root.get("heartbeat"), HEARTBEAT_DIRECTIVES, "heartbeat")
    _check_children(root.get("stats"), STATS_DIRECTIVES, "stats")
    _check_children(root.get("rtc_server"), RTC_SERVER_DIRECTIVES, "rtc_server")
    _check_children(root.get("exporter"), EXPORTER_DIRECTIVES, "exporter")

    listens = cfg.listens()
    if not cfg.env_only and not listens:
        raise config_invalid("listen requires params", "check_normal_config")
    for endpoint in listens:
        ip, port = parse_endpoint(endpoint)
        if not _ip_valid(ip):
            raise config_invalid(f"listen.ip={ip} is invalid", "check_normal_config")
        if port <= 0:
            raise config_invalid(f"listen.port={port} is invalid", "check_normal_config")

    if not cfg.http_api_listen():
        raise config_invalid("http_api.listen requires params", "check_normal_config")
    if not cfg.http_server_listen():
        raise config_invalid("http_server.listen requires params", "check_normal_config")
    if cfg.log_tank_file():
        if not cfg.log_file():
            raise config_invalid("log file is empty", "check_normal_config")
    else:
        log("write log to console")

    for caster in (d for d in root.directives if d.name == "stream_caster"):
        for d in caster.directives:
            if d.name not in STREAM_CASTER_DIRECTIVES:
                raise config_invalid(f"illegal stream_caster.{d.name}", "check_normal_config")
            if d.name == "sip":
                _check_children(d, SIP_DIRECTIVES, "stream_caster.sip")

    for vhost in (d for d in root.directives if d.name == "vhost"):
        for conf in vhost.directives:
            if conf.name not in VHOST_DIRECTIVES:
                raise config_invalid(f"illegal vhost.{conf.name}", "check_normal_config")
            allowed = VHOST_SUB_DIRECTIVES.get(conf.name)
            if allowed is None:
                continue
            for sub in conf.directives:
                if sub.name not in allowed:
                    raise config_invalid(
                        f"illegal vhost.{conf.name}.{sub.name} of {vhost.arg0()}",
                        "check_normal_config",
                    )
                if conf.name == "transcode" and sub.name == "engine":
                    for e in sub.directives:
                        if e.name not in TRANSCODE_ENGINE_DIRECTIVES:
                            raise config_invalid(
                                f"illegal vhost.transcode.engine.{e.name} of {vhost.arg0()}",
                                "check_normal_config",
                            )


def _ip_valid(ip: str) -> bool:
    try:
        ipaddress.ip_address(ip)
    except ValueError:
        return False
    return True


def parse_endpoint(endpoint: str) -> tuple[str, int]:
    """`srs_parse_endpoint`: `port`, `ip:port` or `[ipv6]:port`; no ip means 0.0.0.0."""
    ip = "0.0.0.0"
    port_text = endpoint
    if endpoint.startswith("["):
        close = endpoint.find("]")
        ip = endpoint[1:close] if close > 0 else endpoint[1:]
        port_text = endpoint[close + 2 :] if close > 0 else ""
    elif ":" in endpoint:
        if endpoint.count(":") == 1:
            ip, port_text = endpoint.split(":", 1)
        else:  # a bare IPv6 address ending with the port
            ip, _, port_text = endpoint.rpartition(":")
    return ip, atoi(port_text)


def atoi(text: str) -> int:
    """C `atoi`: leading spaces, optional sign, then digits; anything else stops it."""
    s = text.lstrip(" \t\n\r\f\v")
    sign = 1
    if s[:1] in ("+", "-"):
        sign = -1 if s[0] == "-" else 1
        s = s[1:]
    digits = ""
    for ch in s:
        if not ch.isdigit() or not ch.isascii():
            break
        digits += ch
    value = sign * int(digits) if digits else 0
    # strtol saturates at LONG_MAX/LONG_MIN, then atoi keeps the low 32 bits.
    value = max(min(value, 2**63 - 1), -(2**63))
    value &= 0xFFFFFFFF
    return value - 2**32 if value >= 2**31 else value


def atof(text: str) -> float:
    """C `atof`, enough for config numbers: the longest leading float, else 0."""
    s = text.strip()
    best = 0.0
    for end in range(len(s), 0, -1):
        try:
            best = float(s[:end])
        except ValueError:
            continue
        return best
    return best


# --- getters (SrsConfig::get_*), with SRS's defaults and env overrides ---


class Config:
    """A parsed, transformed srs.conf and the getters the stand-in needs."""

    def __init__(
        self,
        root: Directive,
        path: str = "",
        env: Mapping[str, str] | None = None,
        env_only: bool = False,
    ) -> None:
        self.root = root
        self.path = path
        self.env: Mapping[str, str] = os.environ if env is None else env
        self.env_only = env_only

    # env: "srs.http_api.listen" -> SRS_HTTP_API_LISTEN
    def _env(self, key: str) -> str:
        return self.env.get(key.replace(".", "_").upper(), "")

    def _root_arg(self, name: str) -> str | None:
        d = self.root.get(name)
        return d.arg0() if d is not None and d.arg0() else None

    def _sub_arg(self, parent: Directive | None, *names: str) -> str | None:
        d = parent
        for n in names:
            if d is None:
                return None
            d = d.get(n)
        return d.arg0() if d is not None and d.arg0() else None

    def _bool(self, env_key: str, value: str | None, default: bool, prefer_false: bool) -> bool:
        if env_key and (v := self._env(env_key)):
            return v == "on"
        if value is None:
            return default
        return value == "on" if prefer_false else value != "off"

    def listens(self) -> list[str]:
        if v := self._env("srs.listen"):
            return v.split(" ")
        d = self.root.get("listen")
        return list(d.args) if d is not None else []

    def daemon(self) -> bool:
        return self._bool("srs.daemon", self._root_arg("daemon"), True, False)

    def in_docker(self) -> bool:
        return self._bool("srs.in_docker", self._root_arg("in_docker"), False, True)

    def disable_daemon_for_docker(self) -> bool:
        return self._bool(
            "srs.disable_daemon_for_docker",
            self._root_arg("disable_daemon_for_docker"),
            True,
            False,
        )

    def pid_file(self) -> str:
        return self._env("srs.pid") or self._root_arg("pid") or "./objs/srs.pid"

    def server_id_directive(self) -> str:
        return self._env("srs.server_id") or self._root_arg("server_id") or ""

    def log_tank_file(self) -> bool:
        for key in ("srs.srs_log_tank", "srs.log_tank"):
            if v := self._env(key):
                return v != "console"
        tank = self._root_arg("srs_log_tank")
        if tank is None:
            return not self.in_docker()
        return tank != "console"

    def log_file(self) -> str:
        return (
            self._env("srs.srs_log_file")
            or self._env("srs.log_file")
            or self._root_arg("srs_log_file")
            or "./objs/srs.log"
        )

    def _millis(self, key: str, name: str, default: int) -> float:
        if v := self._env(key):
            return atoi(v) / 1000.0
        arg = self._root_arg(name)
        return (default if arg is None else atoi(arg)) / 1000.0

    def grace_start_wait(self) -> float:
        return self._millis("srs.grace_start_wait", "grace_start_wait", 2300)

    def grace_final_wait(self) -> float:
        return self._millis("srs.grace_final_wait", "grace_final_wait", 3200)

    def force_grace_quit(self) -> bool:
        return self._bool("srs.force_grace_quit", self._root_arg("force_grace_quit"), False, True)

    def inotify_auto_reload(self) -> bool:
        return self._bool(
            "srs.inotify_auto_reload", self._root_arg("inotify_auto_reload"), False, True
        )

    def auto_reload_for_docker(self) -> bool:
        return self._bool(
            "srs.auto_reload_for_docker", self._root_arg("auto_reload_for_docker"), True, False
        )

    # http_api
    def http_api_enabled(self) -> bool:
        return self._bool(
            "srs.http_api.enabled", self._sub_arg(self.root.get("http_api"), "enabled"), False, True
        )

    def http_api_listen(self) -> str:
        return (
            self._env("srs.http_api.listen")
            or self._sub_arg(self.root.get("http_api"), "listen")
            or "1985"
        )

    def http_api_crossdomain(self) -> bool:
        return self._bool(
            "srs.http_api.crossdomain",
            self._sub_arg(self.root.get("http_api"), "crossdomain"),
            True,
            False,
        )

    def raw_api(self) -> bool:
        return self._bool(
            "srs.http_api.raw_api.enabled",
            self._sub_arg(self.root.get("http_api"), "raw_api", "enabled"),
            False,
            True,
        )

    def raw_api_allow_reload(self) -> bool:
        return self._bool(
            "srs.http_api.raw_api.allow_reload",
            self._sub_arg(self.root.get("http_api"), "raw_api", "allow_reload"),
            False,
            True,
        )

    # http_server
    def http_server_enabled(self) -> bool:
        return self._bool(
            "srs.http_server.enabled",
            self._sub_arg(self.root.get("http_server"), "enabled"),
            False,
            True,
        )

    def http_server_listen(self) -> str:
        return (
            self._env("srs.http_server.listen")
            or self._sub_arg(self.root.get("http_server"), "listen")
            or "8080"
        )

    def http_server_dir(self) -> str:
        return (
            self._env("srs.http_server.dir")
            or self._sub_arg(self.root.get("http_server"), "dir")
            or "./objs/nginx/html"
        )

    # exporter
    def exporter_enabled(self) -> bool:
        return self._bool(
            "srs.exporter.enabled", self._sub_arg(self.root.get("exporter"), "enabled"), False, True
        )

    def exporter_listen(self) -> str:
        return (
            self._env("srs.exporter.listen")
            or self._sub_arg(self.root.get("exporter"), "listen")
            or "9972"
        )

    def exporter_label(self) -> str:
        return (
            self._env("srs.exporter.label")
            or self._sub_arg(self.root.get("exporter"), "label")
            or ""
        )

    def exporter_tag(self) -> str:
        return (
            self._env("srs.exporter.tag") or self._sub_arg(self.root.get("exporter"), "tag") or ""
        )

    # vhosts
    def vhost_names(self) -> list[str]:
        return [d.arg0() for d in self.root.directives if d.name == "vhost"]

    def get_vhost(self, name: str, try_default: bool = True) -> Directive | None:
        found = self.root.get("vhost", name)
        if found is None and try_default:
            found = self.root.get("vhost", DEFAULT_VHOST)
        return found

    def vhost_enabled(self, vhost: str) -> bool:
        v = self.get_vhost(vhost)
        if v is None:
            return False
        return self._bool("", self._sub_arg(v, "enabled"), True, False)

    def _vhost_sub(self, vhost: str, section: str) -> Directive | None:
        v = self.get_vhost(vhost)
        return v.get(section) if v is not None else None

    def hls_enabled(self, vhost: str) -> bool:
        return self._bool(
            "srs.vhost.hls.enabled",
            self._sub_arg(self._vhost_sub(vhost, "hls"), "enabled"),
            False,
            True,
        )

    def hls_fragment(self, vhost: str) -> float:
        if v := self._env("srs.vhost.hls.hls_fragment"):
            return atof(v)
        arg = self._sub_arg(self._vhost_sub(vhost, "hls"), "hls_fragment")
        return 10.0 if arg is None else atof(arg)

    def hls_window(self, vhost: str) -> float:
        if v := self._env("srs.vhost.hls.hls_window"):
            return atof(v)
        arg = self._sub_arg(self._vhost_sub(vhost, "hls"), "hls_window")
        return 60.0 if arg is None else atof(arg)

    def hls_dispose(self, vhost: str) -> int:
        if v := self._env("srs.vhost.hls.hls_dispose"):
            return atoi(v)
        arg = self._sub_arg(self._vhost_sub(vhost, "hls"), "hls_dispose")
        return 120 if arg is None else atoi(arg)

    def hls_cleanup(self, vhost: str) -> bool:
        return self._bool(
            "srs.vhost.hls.hls_cleanup",
            self._sub_arg(self._vhost_sub(vhost, "hls"), "hls_cleanup"),
            True,
            False,
        )

    def hls_path(self, vhost: str) -> str:
        return (
            self._env("srs.vhost.hls.hls_path")
            or self._sub_arg(self._vhost_sub(vhost, "hls"), "hls_path")
            or "./objs/nginx/html"
        )

    def hls_m3u8_file(self, vhost: str) -> str:
        return (
            self._env("srs.vhost.hls.hls_m3u8_file")
            or self._sub_arg(self._vhost_sub(vhost, "hls"), "hls_m3u8_file")
            or "[app]/[stream].m3u8"
        )

    def hls_ts_file(self, vhost: str) -> str:
        return (
            self._env("srs.vhost.hls.hls_ts_file")
            or self._sub_arg(self._vhost_sub(vhost, "hls"), "hls_ts_file")
            or "[app]/[stream]-[seq].ts"
        )

    def dvr_enabled(self, vhost: str) -> bool:
        return self._bool(
            "srs.vhost.dvr.enabled",
            self._sub_arg(self._vhost_sub(vhost, "dvr"), "enabled"),
            False,
            True,
        )

    def dvr_path(self, vhost: str) -> str:
        return (
            self._env("srs.vhost.dvr.dvr_path")
            or self._sub_arg(self._vhost_sub(vhost, "dvr"), "dvr_path")
            or "./objs/nginx/html/[app]/[stream].[timestamp].flv"
        )

    def http_remux_enabled(self, vhost: str) -> bool:
        return self._bool(
            "srs.vhost.http_remux.enabled",
            self._sub_arg(self._vhost_sub(vhost, "http_remux"), "enabled"),
            False,
            True,
        )

    def http_remux_mount(self, vhost: str) -> str:
        return (
            self._sub_arg(self._vhost_sub(vhost, "http_remux"), "mount")
            or "[vhost]/[app]/[stream].flv"
        )

    def cluster(self, vhost: str) -> dict[str, list[str]]:
        """The vhost's `cluster {}` block, recorded as name -> args."""
        c = self._vhost_sub(vhost, "cluster")
        return {d.name: list(d.args) for d in c.directives} if c is not None else {}


def load(
    path: str,
    env: Mapping[str, str] | None = None,
    trace: Callable[[str], None] | None = None,
    read: ReadFile = _read_text,
    *,
    context: str = "reload",
) -> Config:
    """Parse, transform and check a config file, wrapping errors as SRS does there.

    `context` is where SRS reads the file: "reload" (`SrsConfig::reload`), "start"
    (`parse_options` then `check_config` in main) or "test" (`srs -t`). Raises SrsError
    with `state` set (10 while parsing, 20 while checking) for reload-fetch.
    """
    try:
        root = parse_file(path, read, trace)
    except SrsError as e:
        e.state = 10
        if context == "reload":
            e.wrap("parse file", "reload")
        elif context == "start":
            e.wrap("invalid config", "parse_options").wrap("config parse options", "do_main")
        raise
    transform(root)
    cfg = Config(root, path, env)
    try:
        check(cfg, trace)
    except SrsError as e:
        if context != "test":
            e.wrap("check config", "check_config")
        e.state = 20
        raise
    return cfg
