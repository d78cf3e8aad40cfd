"""`check`: what SRS 6's `srs -t` rejects (check_normal_config after its legacy rewrites)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.srs import directives
from agents.srs.conf import check, load, parse, transform

FIXTURES = Path(__file__).parents[1] / "fixtures"
RECORDED = sorted((FIXTURES / "srs-6.0.155" / "conf").glob("*.conf"))
OURS = sorted((FIXTURES / "conf").glob("*.conf"))  # include-vhost.inc is a fragment

BASE = "listen 1935;\n"


def problems(text: str) -> list[str]:
    return [str(p) for p in check(parse(text, "t.conf"))]


def test_fixtures_are_there() -> None:
    assert len(RECORDED) == 8
    assert {p.name for p in OURS} >= {"edge.conf", "origin.conf", "odd-spacing.conf"}


@pytest.mark.parametrize("path", RECORDED + OURS, ids=lambda p: p.name)
def test_every_fixture_config_is_valid(path: Path) -> None:
    assert check(load(str(path))) == []


def test_unknown_root_directive() -> None:
    assert problems(BASE + "daemon off;\nfoo_unknown_directive on;\n") == [
        "t.conf:3:1: illegal directive foo_unknown_directive"
    ]


def test_unknown_names_in_blocks_carry_srs_wording() -> None:
    text = BASE + (
        "http_api {\n    enabled on;\n    lisen 1985;\n    raw_api { allow_all on; }\n}\n"
        "http_server { root ./html; }\n"
        "vhost live {\n"
        "    hls {\n        enabled on;\n        hls_fragmnet 2;\n    }\n"
        "    transcode { engine e { vbitrate 800; vbitrat 1; } }\n"
        "    stats on;\n"
        "}\n"
    )
    assert problems(text) == [
        "t.conf:4:5: illegal http_api.lisen",
        "t.conf:5:15: illegal http_api.raw_api.allow_all",
        "t.conf:7:15: illegal http_stream.root",
        "t.conf:11:9: illegal vhost.hls.hls_fragmnet of live",
        "t.conf:13:42: illegal vhost.transcode.engine.vbitrat of live",
        "t.conf:14:5: illegal vhost.stats",
    ]


def test_names_of_other_srs_versions_are_named() -> None:
    text = BASE + "heartbeat { ports on; }\nvhost v { bandcheck { enabled on; } }\n"
    # `heartbeat.ports` is SRS 7's; SRS 6 still takes the vhost-level `bandcheck` block.
    assert problems(text) == ["t.conf:2:13: illegal heartbeat.ports (accepted by SRS 7)"]
    assert problems(BASE + "http_api { auth { enabled on; } }\n") == []
    assert directives.versions_accepting("http_api", "auth") == [5, 6, 7]


def test_legacy_spellings_srs_rewrites_are_accepted() -> None:
    text = BASE + (
        "http_stream { enabled on; listen 8080; }\n"
        "srt_server { tlpkdrop on; }\n"
        "rtc_server { perf_stat on; queue_length 10; }\n"
        "vhost v {\n"
        "    mode remote;\n    origin a b;\n    gop_cache off;\n    refer a.com;\n"
        "    refer_play b.com;\n    forward 127.0.0.1:19350;\n    http { enabled on; }\n"
        "    mr { enabled on; latency 350; }\n    publish_1stpkt_timeout 20000;\n"
        "    nack { enabled on; }\n    twcc { enabled on; }\n"
        "    http_remux { hstrs on; }\n"
        "}\n"
    )
    assert problems(text) == []
    vhost = next(d for d in transform(parse(text, "t.conf").root) if d.name == "vhost")
    assert [d.name for d in vhost.children or []] == [
        "forward", "http_static", "http_remux", "cluster", "play", "refer", "publish", "rtc",
    ]  # fmt: skip
    cluster = vhost.get("cluster")
    assert cluster is not None and [(d.name, d.args) for d in cluster.children or []] == [
        ("mode", ["remote"]),
        ("origin", ["a", "b"]),
    ]


def test_legacy_blocks_keep_only_what_srs_moves() -> None:
    # SRS moves mr.enabled/latency and drops the rest unchecked.
    assert problems(BASE + "vhost v { mr { enabled on; bogus 1; } }\n") == []
    # http -> http_static, whose children SRS does check.
    assert problems(BASE + "vhost v { http { bogus 1; } }\n") == [
        "t.conf:2:18: illegal vhost.http_static.bogus of v"
    ]


def test_srs_checks_only_the_first_singleton_block() -> None:
    text = BASE + "stats { network 0; }\nstats { bogus 1; }\n"
    assert problems(text) == []


def test_unchecked_levels_take_anything() -> None:
    text = BASE + "vhost v { hds { anything 1; } ingest i { engine { anything 1; } } }\n"
    assert problems(text) == []


def test_empty_and_listen_problems() -> None:
    assert problems("") == ["t.conf:1:1: conf is empty"]
    assert problems("daemon off;\n") == ["t.conf:1:1: listen requires params"]
    assert problems("listen;\n") == ["t.conf:1:1: listen requires params"]
    assert problems("listen :1935;\n") == ["t.conf:1:1: listen.ip= is invalid"]
    assert problems("listen 1.2.3:1935;\n") == ["t.conf:1:1: listen.ip=1.2.3 is invalid"]
    assert problems("listen 0.0.0.0:0 [::1]:x;\n") == [
        "t.conf:1:1: listen.port=0 is invalid",
        "t.conf:1:1: listen.port=0 is invalid",
    ]
    assert problems("listen 1935 0.0.0.0:1936 [::]:1937 127.0.0.1:1938x;\n") == []


def test_values_srs_rejects() -> None:
    cases = {
        "heartbeat { interval 0.5; }": "t.conf:2:13: invalid heartbeat.interval=0",
        "stats { network -1; }": "t.conf:2:9: invalid stats.network=-1",
        "http_api { https { enabled on; } }": "t.conf:2:1: https api depends on http",
        "http_server { https { enabled on; } }": "t.conf:2:1: https stream depends on http",
        "http_api { listen 8080; https { listen 1990; } }":
            "t.conf:2:1: for same http, https api(1990) != server(8088)",
        "asprocess on;": "t.conf:2:1: daemon conflicts with asprocess",
        "max_connections 0;": "t.conf:2:1: max_connections=0 is invalid",
        "is_full on;": "t.conf:2:1: never use full.conf(t.conf)",
        "chunk_size 100;":
            "t.conf:2:1: chunk_size=100 should be in [128, 65536]; SRS 6 crashes on this",
        "vhost v { chunk_size 65537; }":
            "t.conf:2:11: chunk_size=65537 of v should be in [128, 65536]; SRS 6 crashes on this",
        "vhost v { http_remux { enabled on; } http_remux { enabled off; } }":
            "t.conf:2:38: vhost.http_remux only one but count=2 of v",
        "vhost v { hls { enabled on; } http_remux { enabled on; mount [app].ts; } }":
            "t.conf:2:1: vhost.hls conflict with vhost.http-ts of v",
        "vhost v { forward { enabled on; } publish { kickoff_for_idle 0.5; } }":
            "t.conf:2:1: vhost.forward conflicts with vhost.publish.kickoff_for_idle",
        "vhost v { ingest a { } ingest a { } }": "t.conf:2:24: ingest id=a exists for v",
    }  # fmt: skip
    for line, expected in cases.items():
        assert problems(BASE + line + "\n") == [expected], line


def test_values_srs_lets_through() -> None:
    ok = [
        "asprocess on; daemon off;",
        "http_api { listen 8080; } http_server { listen 8080; }",
        "heartbeat { interval 1; }",
        "vhost v { http_remux { mount [app].ts; enabled on; } hls { enabled on; } }",
        "vhost v { forward { enabled on; } publish { kickoff_for_idle 0; } }",
        "vhost v { ingest a { } } vhost w { ingest a { } }",
        "chunk_size 0; vhost v { chunk_size 1; }",  # SRS prints 0 as "(null)" and survives
        "max_connections abc;",  # atoi("abc") is 0, but an empty/absent value means 1000
    ]
    for line in ok[:-1]:
        assert problems(BASE + line + "\n") == [], line
    assert problems(BASE + ok[-1] + "\n") == ["t.conf:2:1: max_connections=0 is invalid"]


def test_all_problems_are_listed_in_srs_order() -> None:
    text = "bogus 1;\nvhost v { hls { x 1; } }\nmax_connections -1;\n"
    assert problems(text) == [
        "t.conf:1:1: illegal directive bogus",
        "t.conf:1:1: listen requires params",
        "t.conf:2:17: illegal vhost.hls.x of v",
        "t.conf:3:1: max_connections=-1 is invalid",
    ]


def test_problems_in_an_included_file_name_that_file(tmp_path: Path) -> None:
    (tmp_path / "main.conf").write_text("listen 1935;\ninclude vhosts.conf;\n")
    (tmp_path / "vhosts.conf").write_text("vhost v {\n    hls { bogus on; }\n}\n")
    found = check(load(str(tmp_path / "main.conf")))
    where = tmp_path / "vhosts.conf"
    assert [str(p) for p in found] == [f"{where}:2:11: illegal vhost.hls.bogus of v"]


def test_unresolved_include_is_not_checked() -> None:
    assert problems(BASE + "include other.conf;\nvhost v { include x.conf; }\n") == []
