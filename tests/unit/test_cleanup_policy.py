"""cleanup.policy: which names may go, what is always kept, ages, the disk watermark."""

from __future__ import annotations

import pytest

from agents.cleanup.policy import (
    DiskUsage,
    LiveStreams,
    Policy,
    Verdict,
    bytes_over_mark,
    is_old,
)
from agents.errors import ConfigError

# What SRS 6.0.155 leaves in the html volume (FACTS §8): segments, playlists and their
# temporary names, the unfinished DVR of a crash, an unfinished MP4 DVR.
LEFTOVERS = [
    "s1-41.ts",
    "s1-44.ts.tmp",
    "s1.m3u8",
    "s1.m3u8.temp",
    "s1.1795718081416.flv.tmp",
    "s1.1795718081416.mp4.tmp",
]


@pytest.mark.parametrize("name", LEFTOVERS)
def test_the_guides_patterns_match_srs_leftovers(name: str) -> None:
    assert Policy().classify("live", "live", name) is Verdict.CANDIDATE


@pytest.mark.parametrize("name", ["s2.1795718081418.flv", "s2.1795718081418.mp4",
                                  "livestream.html", "readme.txt", "s1.flv.part", "cover.jpg"])
def test_other_names_do_not_match_the_defaults(name: str) -> None:
    assert Policy().classify("live", "live", name) is not Verdict.CANDIDATE


@pytest.mark.parametrize("name", [
    "s2.1795718081418.flv", "rec.mp4", "index.html", "nginx.html", "favicon.ico",
    "crossdomain.xml", ".srs-agents-html.json", ".srs-agents-intent.4242.x1y2.json",
    "REC.MP4", "s1.1795718081416.FLV", "Index.HTML",
])
def test_dvr_results_and_default_html_are_protected_even_when_everything_matches(
        name: str) -> None:
    policy = Policy(patterns=("*",))
    assert policy.classify("", "", name) is Verdict.PROTECTED
    assert policy.classify("live", "live", name) is Verdict.PROTECTED


def test_everything_else_goes_with_a_catch_all_pattern() -> None:
    assert Policy(patterns=("*",)).classify("live", "live", "notes.txt") is Verdict.CANDIDATE


@pytest.mark.parametrize("rel,name", [("console", "console"), ("players", "players"),
                                      ("demos", "demos"), ("srs/html/players", "players")])
def test_console_players_demos_are_never_entered(rel: str, name: str) -> None:
    assert Policy().dir_protected(rel, name)


def test_protect_globs_match_paths_relative_to_the_root() -> None:
    policy = Policy(protect=("archive/*", "vip-*", "live/keep-*.ts"))
    assert policy.classify("archive", "archive", "a.ts") is Verdict.PROTECTED
    assert policy.classify("archive/2026/01", "01", "a.ts") is Verdict.PROTECTED  # * spans /
    assert policy.classify("live", "live", "keep-1.ts") is Verdict.PROTECTED
    assert policy.classify("live", "live", "other-1.ts") is Verdict.CANDIDATE
    assert policy.dir_protected("vip-room", "vip-room")
    assert not policy.dir_protected("live", "live")


def test_files_of_publishing_streams_are_live() -> None:
    live = LiveStreams(frozenset({("live", "s1"), ("game", "match")}))
    policy = Policy().with_live(live)
    for name in ("s1-3.ts", "s1.m3u8", "s1.1795718081416.flv.tmp", "s1-9.ts.tmp"):
        assert policy.classify("live", "/html/live", name) is Verdict.LIVE
    assert policy.classify("vhost/game", "/html/vhost/game", "match-1.ts") is Verdict.LIVE
    # Same stream name in another app, or another stream in the same app: not live.
    assert policy.classify("other", "/html/other", "s1-3.ts") is Verdict.CANDIDATE
    assert policy.classify("live", "/html/live", "s2-3.ts") is Verdict.CANDIDATE
    # The prefix test errs on the side of keeping.
    assert policy.classify("live", "/html/live", "s10-3.ts") is Verdict.LIVE


def test_live_files_are_found_whatever_the_root_and_the_layout() -> None:
    live = LiveStreams(frozenset({("live", "s1"), ("tv/news", "n1")}))
    policy = Policy().with_live(live)
    # The root is the app directory itself: the app shows only in the root's path.
    assert policy.classify("", "/data/html/live", "s1-3.ts") is Verdict.LIVE
    # An app holding '/' (rtmp://host/tv/news/n1).
    assert policy.classify("tv/news", "/html/tv/news", "n1-4.ts") is Verdict.LIVE
    assert policy.classify("news", "/html/news", "n1-4.ts") is Verdict.CANDIDATE
    # hls_ts_file [app]/[stream]/[seq].ts: every file under the stream's directory.
    assert policy.classify("live/s1", "/html/live/s1", "12.ts") is Verdict.LIVE
    assert policy.classify("live/s1/hd", "/html/live/s1/hd", "index.m3u8") is Verdict.LIVE
    assert policy.classify("live/s2", "/html/live/s2", "12.ts") is Verdict.CANDIDATE


def test_age_and_directories() -> None:
    policy = Policy(older_than=3 * 86400)
    now = 1_800_000_000.0
    cutoff = policy.cutoff(now)
    assert cutoff == now - 3 * 86400
    assert is_old(cutoff - 1, cutoff)
    assert not is_old(cutoff, cutoff)  # exactly the age is not older than it
    assert policy.may_remove_dir("live", cutoff - 1, cutoff)
    assert not policy.may_remove_dir("live", cutoff + 1, cutoff)
    assert not policy.may_remove_dir("", 0.0, cutoff)  # never the root


@pytest.mark.parametrize("patterns,protect,flag", [
    ((), (), "--patterns"),
    (("live/*.ts",), (), "--patterns"),
    (("*.ts",), ("/abs/*",), "--protect"),
])
def test_bad_globs_are_config_errors_naming_the_flag(
        patterns: tuple[str, ...], protect: tuple[str, ...], flag: str) -> None:
    with pytest.raises(ConfigError, match=flag):
        Policy(patterns=patterns, protect=protect)


def test_disk_usage_reads_like_df() -> None:
    # df: Use% = used / (used + available); the root reserve is neither.
    usage = DiskUsage(total=1000, free=150, available=100)
    assert usage.used == 850
    assert usage.percent == pytest.approx(100 * 850 / 950)


def test_bytes_over_mark() -> None:
    usage = DiskUsage(total=1000, free=200, available=200)  # 80 % used
    assert bytes_over_mark(usage, 0) == 0  # off
    assert bytes_over_mark(usage, 90) == 0
    need = bytes_over_mark(usage, 50)
    after = DiskUsage(total=1000, free=200 + need, available=200 + need)
    assert after.percent < 50
    before_enough = DiskUsage(total=1000, free=200 + need - 1, available=200 + need - 1)
    assert before_enough.percent >= 50
