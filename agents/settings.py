"""Settings of every command, built once: flag > env SRS_AGENT_<FLAG> > default.

Each command has a frozen dataclass; each field carries its flag, help text and a
parser. A bad value raises ConfigError with one line that names the flag or env
variable, the value, and what was expected. The README's configuration reference is
rendered from these classes (`python -m agents.settings`), and a test keeps it in sync.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

from agents.errors import ConfigError

ENV_PREFIX = "SRS_AGENT_"

Parser = Callable[[str], Any]


class InvalidValue(ValueError):
    """Raised by a parser; the message says what was expected."""


# ---------------------------------------------------------------------------
# Value parsers: each takes the raw string and returns the typed value.
# ---------------------------------------------------------------------------

_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")


def parse_duration(raw: str) -> float:
    """'250ms', '30s', '5m', '3d', '1h30m' or a bare number of seconds -> seconds."""
    text = raw.strip()
    try:
        value = float(text)
    except ValueError:
        pos, value = 0, 0.0
        for match in _DURATION_RE.finditer(text):
            if match.start() != pos:
                break
            value += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
            pos = match.end()
        if pos != len(text) or not text:
            raise InvalidValue("expected a duration such as 500ms, 30s, 5m, 3d") from None
    if not math.isfinite(value):
        raise InvalidValue("expected a finite duration")
    if value < 0:
        raise InvalidValue("expected a duration of zero or more")
    return value


def parse_timeout(raw: str) -> float:
    """A duration above zero (a timeout of 0 would fail every request)."""
    value = parse_duration(raw)
    if value <= 0:
        raise InvalidValue("expected a duration above zero")
    return value


def parse_bool(raw: str) -> bool:
    text = raw.strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off", ""}:
        return False
    raise InvalidValue("expected true or false")


def parse_listen(raw: str) -> tuple[str, int]:
    """'host:port', ':port' or '[::1]:port' -> (host, port)."""
    text = raw.strip()
    host, sep, port_text = text.rpartition(":")
    if not sep or not port_text.isdigit():
        raise InvalidValue("expected host:port, e.g. 0.0.0.0:9973 or 127.0.0.1:9973")
    port = int(port_text)
    if not 0 <= port <= 65535:
        raise InvalidValue("expected a port from 0 to 65535")
    host = host.strip("[]") or "0.0.0.0"
    return host, port


def parse_http_url(raw: str) -> str:
    text = raw.strip().rstrip("/")
    parts = urlsplit(text)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise InvalidValue("expected an http:// or https:// URL, e.g. http://127.0.0.1:1985")
    return text


def parse_optional_http_url(raw: str) -> str:
    return "" if not raw.strip() else parse_http_url(raw)


def parse_str(raw: str) -> str:
    return raw


def parse_nonempty(raw: str) -> str:
    if not raw.strip():
        raise InvalidValue("expected a non-empty value")
    return raw.strip()


def parse_regex(raw: str) -> str:
    try:
        re.compile(raw)
    except re.error as exc:
        raise InvalidValue(f"expected a regular expression ({exc})") from None
    return raw


def parse_list(raw: str) -> tuple[str, ...]:
    """Comma-separated list; empty string -> empty tuple."""
    return tuple(item.strip() for item in raw.split(",") if item.strip())


def int_parser(minimum: int | None = None, maximum: int | None = None) -> Parser:
    def parse(raw: str) -> int:
        try:
            value = int(raw.strip())
        except ValueError:
            raise InvalidValue("expected a whole number") from None
        if minimum is not None and value < minimum:
            raise InvalidValue(f"expected a whole number >= {minimum}")
        if maximum is not None and value > maximum:
            raise InvalidValue(f"expected a whole number <= {maximum}")
        return value

    return parse


def float_parser(minimum: float = 0.0) -> Parser:
    def parse(raw: str) -> float:
        try:
            value = float(raw.strip())
        except ValueError:
            raise InvalidValue("expected a number") from None
        if value < minimum:
            raise InvalidValue(f"expected a number >= {minimum:g}")
        return value

    return parse


def choice_parser(*choices: str) -> Parser:
    def parse(raw: str) -> str:
        value = raw.strip().lower()
        if value not in choices:
            raise InvalidValue("expected one of " + ", ".join(choices))
        return value

    return parse


def parse_ports(raw: str) -> tuple[int, ...]:
    ports = []
    for item in parse_list(raw):
        if not item.isdigit() or not 0 < int(item) <= 65535:
            raise InvalidValue("expected comma-separated ports, e.g. 1935,8080")
        ports.append(int(item))
    return tuple(ports)


def parse_percent(raw: str) -> float:
    """'85%' or '85' -> 85.0; '' -> 0.0 (off)."""
    text = raw.strip().rstrip("%").strip()
    if not text:
        return 0.0
    try:
        value = float(text)
    except ValueError:
        raise InvalidValue("expected a percentage such as 85%") from None
    if not 0 < value < 100:
        raise InvalidValue("expected a percentage between 0% and 100%")
    return value


def parse_source(raw: str) -> str:
    """'volume' or 'configmap/NAME'."""
    text = raw.strip()
    if text == "volume":
        return text
    kind, _, name = text.partition("/")
    if kind == "configmap" and re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", name):
        return text
    raise InvalidValue("expected 'volume' or 'configmap/NAME' (NAME a Kubernetes object name)")


# ---------------------------------------------------------------------------
# Declaring settings
# ---------------------------------------------------------------------------


def setting(
    default: Any,
    help: str,
    parse: Parser = parse_str,
    *,
    positional: bool = False,
    metavar: str | None = None,
    public: str | None = None,
) -> Any:
    """A field of a settings dataclass. `default` is the typed value (not a string).

    `public` overrides the user-facing name when the field name cannot be it
    (`from` is a Python keyword): flag `--<public>`, env `SRS_AGENT_<PUBLIC>`.
    """
    return field(
        default=default,
        metadata={
            "help": help,
            "parse": parse,
            "positional": positional,
            "metavar": metavar,
            "public": public,
        },
    )


def _public(f: dataclasses.Field[Any]) -> str:
    return str(f.metadata.get("public") or f.name)


def flag_name(f: dataclasses.Field[Any]) -> str:
    return "--" + _public(f).replace("_", "-")


def env_name(f: dataclasses.Field[Any]) -> str:
    return ENV_PREFIX + _public(f).upper().replace("-", "_")


@dataclass(frozen=True)
class LogSettings:
    log_level: str = setting(
        "info", "Log level.", choice_parser("debug", "info", "warning", "error")
    )
    log_format: str = setting(
        "json", "One JSON object per line, or text for humans.", choice_parser("json", "text")
    )


@dataclass(frozen=True)
class SrsSettings(LogSettings):
    srs_api: str = setting(
        "http://127.0.0.1:1985", "Base URL of SRS's HTTP API.", parse_http_url, metavar="URL"
    )
    srs_timeout: float = setting(
        2.0, "Timeout of each request to SRS's API.", parse_timeout, metavar="DURATION"
    )
    config_dir: str = setting(
        "/usr/local/srs/conf", "Directory SRS reads its config from (the mounted ConfigMap).",
        metavar="DIR",
    )
    config_file: str = setting(
        "srs.conf", "SRS's config file, relative to --config-dir.", metavar="FILE"
    )
    srs_process: str = setting(
        r"(^|/)srs(\s|$)",
        "Regular expression matched against each process's command line (argv joined by "
        "spaces) to find SRS in the shared PID namespace.",
        parse_regex,
        metavar="REGEX",
    )


@dataclass(frozen=True)
class OpsSettings:
    listen: tuple[str, int] = setting(
        ("0.0.0.0", 9973),
        "Ops server address: GET /metrics, /healthz, /readyz (nothing on it changes state).",
        parse_listen,
        metavar="HOST:PORT",
    )


@dataclass(frozen=True)
class KubeSettings:
    namespace: str = setting(
        "", "Namespace to work in; empty means the pod's own (service account namespace)."
    )
    pod_name: str = setting(
        "", "This pod's name, for Events (set it from the downward API: metadata.name)."
    )


@dataclass(frozen=True)
class CheckConfigSettings(LogSettings):
    file: str = setting("", "The srs.conf to check.", parse_nonempty, positional=True,
                        metavar="FILE")


@dataclass(frozen=True)
class ReloadSettings(SrsSettings, OpsSettings, KubeSettings):
    source: str = setting(
        "volume",
        "Where config changes come from: 'volume' watches --config-dir (a mounted ConfigMap); "
        "'configmap/NAME' watches that ConfigMap through the Kubernetes API and writes it "
        "into --config-dir with the kubelet's atomic layout.",
        parse_source,
        metavar="SOURCE",
    )
    reload_method: str = setting(
        "signal",
        "How to reload SRS: 'signal' sends SIGHUP to the SRS process; 'api' calls "
        "/api/v1/raw?rpc=reload (needs raw_api with allow_reload).",
        choice_parser("signal", "api"),
    )
    restart_on_unreloadable: bool = setting(
        False,
        "When a change cannot be reloaded (root listen, daemon, cluster.mode, ...), "
        "gracefully quit SRS so Kubernetes restarts it on the new config.",
        parse_bool,
    )
    debounce: float = setting(
        0.1,
        "Quiet time that gathers plain file writes into one reload (the kubelet's ..data "
        "swap is acted on at once).",
        parse_duration,
        metavar="DURATION",
    )
    verify_timeout: float = setting(
        5.0, "How long to wait for SRS to confirm a reload.", parse_duration, metavar="DURATION"
    )
    once: bool = setting(
        False,
        "API mode: write the ConfigMap into --config-dir once and exit (an init container).",
        parse_bool,
    )


@dataclass(frozen=True)
class ExporterSettings(SrsSettings, OpsSettings):
    cache_ttl: float = setting(
        1.0, "Serve scrapes within this age from one read of SRS's API; 0 reads on every scrape.",
        parse_duration, metavar="DURATION",
    )
    max_streams: int = setting(
        1000, "Streams labelled one by one (most clients first); the rest are summed as 'other'.",
        int_parser(0),
    )
    streams_include: tuple[str, ...] = setting(
        (), "Only these streams get their own series: comma-separated globs on vhost/app/stream.",
        parse_list, metavar="GLOBS",
    )
    streams_exclude: tuple[str, ...] = setting(
        (), "These streams never get their own series: comma-separated globs on vhost/app/stream.",
        parse_list, metavar="GLOBS",
    )


@dataclass(frozen=True)
class SidecarSettings(ReloadSettings, ExporterSettings):
    """reload + exporter + ops server in one process."""

    drain_state_file: str = setting(
        "/run/srs-agents/drain.json",
        "State file the preStop `srs-agent drain` writes beside its --done-file; the sidecar "
        "serves the drain's metrics from it. Empty turns it off.", metavar="FILE",
    )
    drain_done_file: str = setting(
        "/run/srs-agents/drained",
        "The drain's --done-file. The sidecar removes a stale one at start, so the SRS "
        "container's preStop cannot return before the next drain. Empty turns it off.",
        metavar="FILE",
    )
    final_scrape_wait: float = setting(
        15.0,
        "On SIGTERM after a drain, wait up to this long for one scrape to carry the drain's "
        "outcome before exiting.", parse_duration, metavar="DURATION",
    )


@dataclass(frozen=True)
class DrainSettings(SrsSettings, KubeSettings):
    deadline: float = setting(
        0.0,
        "Soft deadline of the drain; at it SRS gets SIGINT and finalizes. 0 derives it from "
        "--grace-period minus --deadline-margin.",
        parse_duration, metavar="DURATION",
    )
    grace_period: float = setting(
        30.0, "The pod's terminationGracePeriodSeconds (the manifest sets it).",
        parse_duration, metavar="DURATION",
    )
    deadline_margin: float = setting(
        5.0, "Time kept back from the grace period for SRS's final wait and exit.",
        parse_duration, metavar="DURATION",
    )
    pre_stop_delay: float = setting(
        0.0, "Wait before signalling SRS, so endpoint removal spreads to load balancers.",
        parse_duration, metavar="DURATION",
    )
    migrate_rate: float = setting(
        0.0, "Kick players (never publishers) through the API at this many per second before "
        "the quit, so they reconnect elsewhere gradually; 0 turns it off.",
        float_parser(0.0), metavar="N",
    )
    ports: tuple[int, ...] = setting(
        (), "SRS's client ports to follow in /proc/net/tcp*; empty reads them from the config "
        "(listen, http_server.listen).", parse_ports, metavar="PORTS",
    )
    progress_interval: float = setting(
        5.0, "How often drain logs connections left and time left.", parse_duration,
        metavar="DURATION",
    )
    done_file: str = setting(
        "", "File created when the drain has ended (drained, deadline hit or SRS gone); the "
        "SRS container's preStop waits for it, so the kubelet's SIGTERM reaches SRS only "
        "after the drain. Empty turns it off.", metavar="FILE",
    )


@dataclass(frozen=True)
class CopyHtmlSettings(LogSettings):
    from_dir: str = setting(
        "/usr/local/share/srs-agents/html", "Source tree (SRS's default html, in the image); its "
        "version is read from <from>.version beside it, or the tree is hashed.",
        metavar="DIR", public="from",
    )
    to: str = setting(
        "/usr/local/srs/objs/nginx/html", "Target directory (the shared volume).", metavar="DIR"
    )
    dry_run: bool = setting(False, "Print the plan, write nothing.", parse_bool)


@dataclass(frozen=True)
class CleanupSettings(LogSettings, OpsSettings, KubeSettings):
    roots: tuple[str, ...] = setting(
        ("/usr/local/srs/objs/nginx/html",), "Directories to clean, comma-separated.",
        parse_list, metavar="DIRS",
    )
    patterns: tuple[str, ...] = setting(
        ("*.ts*", "*.m3u8*", "*.flv.tmp", "*.mp4.tmp"),
        "File name globs that may be deleted, comma-separated.", parse_list, metavar="GLOBS",
    )
    protect: tuple[str, ...] = setting(
        (), "Extra globs (on the path relative to the root) never deleted, comma-separated.",
        parse_list, metavar="GLOBS",
    )
    older_than: float = setting(
        3 * 86400.0, "Minimum age by mtime.", parse_duration, metavar="DURATION"
    )
    once: bool = setting(False, "Run one pass and exit (for a CronJob).", parse_bool)
    schedule: str = setting("", "Cron expression for the long-running mode, e.g. '15 1 * * *'.")
    timezone: str = setting("UTC", "Time zone of --schedule, e.g. Asia/Shanghai.")
    dry_run: bool = setting(False, "List what would be deleted, delete nothing.", parse_bool)
    max_deletions: int = setting(
        100000, "Safety cap: stop a run after this many deletions; 0 means no cap.",
        int_parser(0),
    )
    max_usage: float = setting(
        0.0, "Disk watermark such as 85%: delete oldest eligible files first until usage is "
        "under it; empty turns it off.", parse_percent, metavar="PERCENT",
    )
    concurrency: int = setting(
        4, "Threads cleaning at once, each in its own directory where it can: 4 suits a "
        "local disk; 16-32 an NFS volume, where each call waits on the network.",
        int_parser(1, 256),
    )
    srs_api: str = setting(
        "", "SRS API to ask which streams are publishing now (their files are never touched); "
        "empty turns it off.", parse_optional_http_url, metavar="URL",
    )
    srs_timeout: float = setting(
        2.0, "Timeout of each request to SRS's API.", parse_timeout, metavar="DURATION"
    )
    leader_elect: bool = setting(
        False, "Hold a Kubernetes Lease while cleaning, so only one cleaner runs at a time.",
        parse_bool,
    )
    lease_name: str = setting("srs-cleanup", "Name of the Lease for --leader-elect.")
    pushgateway: str = setting(
        "", "With --once, push the run's metrics to this Prometheus Pushgateway URL.",
        parse_optional_http_url, metavar="URL",
    )


@dataclass(frozen=True)
class ControllerSettings(LogSettings, OpsSettings, KubeSettings):
    origin_statefulset: str = setting(
        "", "Name of the origin StatefulSet (with its headless Service)."
    )
    origin_selector: str = setting(
        "", "Label selector of per-origin Services (the one-Deployment-per-origin variant)."
    )
    edge_configmap: str = setting(
        "", "ConfigMap holding the edge srs.conf (origin directive). With neither this nor "
        "--origin-configmap, ConfigMaps labelled srs-agents/role=edge|origin are found in the "
        "namespace.",
    )
    origin_configmap: str = setting(
        "", "ConfigMap holding the origin srs.conf (coworkers directive)."
    )
    config_key: str = setting("srs.conf", "Key of srs.conf inside the ConfigMaps.")
    rtmp_port: int = setting(1935, "Origin RTMP port written into origin lists.",
                             int_parser(1, 65535))
    api_port: int = setting(1985, "Origin HTTP API port written into coworkers.",
                            int_parser(1, 65535))
    debounce: float = setting(
        2.0, "How long an origin that stops being ready (not terminating) stays listed; "
        "origins that become ready are listed at once, terminating ones leave at once.",
        parse_duration, metavar="DURATION",
    )
    leader_elect: bool = setting(True, "Hold a Lease so only one replica writes.", parse_bool)
    lease_name: str = setting("srs-controller", "Name of the Lease for --leader-elect.")
    lease_duration: float = setting(
        15.0, "How long the Lease holds without renewal: a standby takes over this long after "
        "a leader dies without releasing it.", parse_duration, metavar="DURATION",
    )


COMMANDS: dict[str, tuple[type[Any], str]] = {
    "sidecar": (SidecarSettings, "reload + exporter + ops server in one process (the SRS pod's "
                                 "sidecar)"),
    "reload": (ReloadSettings, "watch the config, validate it, reload SRS and verify"),
    "exporter": (ExporterSettings, "SRS HTTP API to Prometheus metrics"),
    "drain": (DrainSettings, "graceful quit of SRS from preStop; waits for connections to drain"),
    "copy-html": (CopyHtmlSettings, "seed SRS's default html into a shared volume, then exit"),
    "cleanup": (CleanupSettings, "safe DVR/HLS cleanup, once or on a schedule"),
    "controller": (ControllerSettings, "keep origin lists of edges and origins in sync"),
    "check-config": (CheckConfigSettings, "validate an srs.conf; print file:line:col: message"),
}

S = TypeVar("S")


def add_arguments(parser: argparse.ArgumentParser, cls: type[Any]) -> None:
    """Declare every field of `cls` on `parser`; values stay raw strings (None if absent)."""
    for f in dataclasses.fields(cls):
        meta = f.metadata
        text = meta["help"].replace("%", "%%")  # argparse formats help with %
        if meta.get("positional"):
            parser.add_argument(f.name, metavar=meta.get("metavar"), help=text)
            continue
        env_help = f" [env {env_name(f)}; default: {render_default(f.default)}]".replace("%", "%%")
        if meta["parse"] is parse_bool:
            parser.add_argument(
                flag_name(f), dest=f.name, nargs="?", const="true", default=None,
                metavar="BOOL", help=text + env_help,
            )
        else:
            parser.add_argument(
                flag_name(f), dest=f.name, default=None, metavar=meta.get("metavar"),
                help=text + env_help,
            )


def build(cls: type[S], args: Mapping[str, Any], environ: Mapping[str, str]) -> S:
    """Resolve each field: flag > env > default; raise ConfigError naming the source."""
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        parse: Parser = f.metadata["parse"]
        raw = args.get(f.name)
        source = flag_name(f)
        if f.metadata.get("positional"):
            source = f.metadata.get("metavar") or f.name
        if raw is None and env_name(f) in environ:
            raw, source = environ[env_name(f)], env_name(f)
        if raw is None:
            values[f.name] = f.default
            continue
        try:
            values[f.name] = parse(raw)
        except InvalidValue as exc:
            raise ConfigError(f"{source}: invalid value {raw!r}: {exc}") from None
    return cls(**values)


def render_default(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], int) \
            and isinstance(value[0], str):
        return f"{value[0]}:{value[1]}"
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value) or '""'
    if isinstance(value, float):
        return f"{value:g}s" if value else "0"
    if value == "":
        return '""'
    return str(value)


def reference_markdown(commands: Sequence[str]) -> str:
    """The configuration reference of README, rendered from the dataclasses."""
    lines = []
    for command in commands:
        cls, summary = COMMANDS[command]
        lines.append(f"### `srs-agent {command}`")
        lines.append("")
        lines.append(f"{summary[0].upper()}{summary[1:]}.")
        lines.append("")
        lines.append("| flag | env | default | meaning |")
        lines.append("|---|---|---|---|")
        for f in dataclasses.fields(cls):
            meta = f.metadata
            if meta.get("positional"):
                flag, env, default = f"`{meta.get('metavar') or f.name}`", "", "(required)"
            else:
                flag = f"`{flag_name(f)}`"
                env = f"`{env_name(f)}`"
                default = f"`{render_default(f.default)}`"
            lines.append(f"| {flag} | {env} | {default} | {meta['help']} |")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def main() -> int:
    """Print README's configuration reference for the commands that have landed."""
    from agents.cli import ENTRYPOINTS  # noqa: PLC0415 - cli imports this module

    sys.stdout.write(reference_markdown(list(ENTRYPOINTS)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
