"""`unreloadable_changes` (what a reload of SRS 6 cannot apply) and `client_ports`."""

from __future__ import annotations

from pathlib import Path

from agents.srs.conf import Config, client_ports, load, parse, set_directive, unreloadable_changes

FIXTURES = Path(__file__).parents[1] / "fixtures"
CAPTURE = (FIXTURES / "srs-6.0.155" / "conf" / "capture.conf").read_text()
EDGE = (FIXTURES / "conf" / "edge.conf").read_text()


def conf(text: str) -> Config:
    return parse(text, "srs.conf")


def changes(old: str, new: str) -> list[str]:
    return unreloadable_changes(conf(old), conf(new))


def edited(text: str, path: tuple[str, ...], args: list[str], vhost: str | None = None) -> str:
    return set_directive(text, path, args, vhost=vhost)


def test_no_change_and_reloadable_changes() -> None:
    assert changes(CAPTURE, CAPTURE) == []
    hls = edited(CAPTURE, ("vhost", "hls", "hls_fragment"), ["3"])
    assert changes(CAPTURE, hls) == []  # the recorded reload (FACTS 6.1)
    more = edited(hls, ("max_connections",), ["2000"])
    more = edited(more, ("vhost", "dvr", "dvr_plan"), ["segment"])
    more = edited(more, ("http_api", "raw_api", "allow_reload"), ["off"])
    assert changes(CAPTURE, more) == []


def test_root_listen_change_is_reported() -> None:
    assert changes(CAPTURE, edited(CAPTURE, ("listen",), ["127.0.0.1:1936"])) == ["listen"]
    assert changes(CAPTURE, edited(CAPTURE, ("listen",), ["127.0.0.1:1935", "1936"])) == ["listen"]
    # Layout is not a change: SRS compares names and values.
    spaced = CAPTURE.replace("listen              127.0.0.1:1935;", "listen 127.0.0.1:1935; # rtmp")
    assert spaced != CAPTURE and changes(CAPTURE, spaced) == []


def test_daemon_compares_effective_values() -> None:
    base = "listen 1935;\nvhost v {}\n"
    assert changes(base, "daemon on;\n" + base) == []  # daemon defaults to on
    assert changes(base, "daemon off;\n" + base) == ["daemon"]


def test_read_once_root_directives() -> None:
    new = edited(CAPTURE, ("pid",), ["./objs/other.pid"])
    new = edited(new, ("srs_log_tank",), ["file"])
    new = edited(new, ("inotify_auto_reload",), ["on"])
    assert changes(CAPTURE, new) == ["pid", "srs_log_tank", "inotify_auto_reload"]


def test_listeners_need_a_restart() -> None:
    new = edited(CAPTURE, ("http_api", "listen"), ["127.0.0.1:1986"])
    new = edited(new, ("http_server", "listen"), ["127.0.0.1:8081"])
    new = edited(new, ("exporter", "listen"), ["127.0.0.1:9973"])
    assert changes(CAPTURE, new) == ["http_api.listen", "http_server.listen", "exporter.listen"]
    off = edited(CAPTURE, ("exporter", "enabled"), ["off"])
    assert changes(CAPTURE, off) == ["exporter.enabled"]
    # A listen of a server that stays off changes nothing.
    moved = edited(off, ("exporter", "listen"), ["127.0.0.1:9999"])
    assert changes(off, moved) == []
    # Spelling out a default is no change.
    assert changes("listen 1935;\n", "listen 1935;\nhttp_api { enabled off; listen 1985; }\n") == []


def test_rtc_srt_and_stream_casters() -> None:
    base = "listen 1935;\nrtc_server { enabled on; listen 8000; tcp { enabled on; } }\n"
    new = base.replace("listen 8000;", "listen 8001;").replace(
        "tcp { enabled on; }", "tcp { enabled on; listen 8002; }"
    )
    assert changes(base, new) == ["rtc_server.listen", "rtc_server.tcp.listen"]
    assert changes("listen 1935;\n", "listen 1935;\nsrt_server { enabled on; }\n") == [
        "srt_server.enabled"
    ]
    caster = "stream_caster { enabled on; caster flv; listen 8936; }\n"
    assert changes("listen 1935;\n", "listen 1935;\n" + caster) == ["stream_caster"]


def test_vhost_mode_switch_but_not_add_or_remove() -> None:
    origin = EDGE.replace("mode            remote;", "mode            local;")
    assert changes(EDGE, origin) == ["vhost __defaultVhost__ cluster.mode"]
    # SRS's old spelling (`mode` right in the vhost) is the same thing.
    legacy = "listen 1935;\nvhost v { mode remote; origin a; }\n"
    modern = "listen 1935;\nvhost v { cluster { mode remote; origin a; } }\n"
    assert changes(legacy, modern) == []
    # Adding or removing an edge vhost is a reload SRS handles.
    assert changes("listen 1935;\n", modern) == []
    assert changes(modern, "listen 1935;\n") == []
    # Disabled in both: SRS still refuses the switch.
    off = "listen 1935;\nvhost v { enabled off; cluster { mode remote; } }\n"
    assert changes(off, off.replace("mode remote;", "")) == ["vhost v cluster.mode"]


def test_several_changes_are_all_listed() -> None:
    new = edited(EDGE, ("listen",), ["1936"])
    new = edited(new, ("daemon",), ["on"])
    new = edited(new, ("vhost", "cluster", "mode"), ["local"])
    assert changes(EDGE, new) == ["listen", "daemon", "vhost __defaultVhost__ cluster.mode"]


def test_client_ports() -> None:
    assert client_ports(conf(CAPTURE)) == [1935, 8080]
    assert client_ports(load(str(FIXTURES / "conf" / "odd-spacing.conf"))) == [1935, 1936, 8080]
    assert client_ports(conf("listen 1935 1935 0.0.0.0:19350;\n")) == [1935, 19350]
    text = "listen [::]:1935;\nhttp_server { enabled on; https { enabled on; } }\n"
    assert client_ports(conf(text)) == [1935, 8080, 8088]
    assert client_ports(conf("listen 1935;\nhttp_server { enabled off; listen 80; }\n")) == [1935]
    assert client_ports(conf("daemon off;\n")) == []
    legacy = "listen 1935;\nhttp_stream { enabled on; listen 81; }\n"  # SRS 1's name
    assert client_ports(conf(legacy)) == [1935, 81]
