"""The exporter's pure core on the replies recorded from SRS 6.0.155, and on the shapes
SRS 3/4 write (their sources: no url/tcUrl, an empty publish.cid, no /metrics)."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families

from agents.exporter_model import (
    BUILTIN,
    LABEL_MAX,
    OTHER,
    Model,
    OtherBytes,
    Reading,
    StreamFilter,
    global_families,
    own_families,
    parse_builtin,
    safe_label,
    split_streams,
)
from agents.srs.api import (
    Stream,
    Vhost,
    parse_list,
    parse_self_proc_stats,
    parse_stream,
    parse_summary,
    parse_version,
    parse_vhost,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "srs-6.0.155"
API = FIXTURES / "api"


def load(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((API / name).read_text())
    return doc


def recorded_reading(builtin: bool) -> Reading:
    """The replies SRS 6.0.155 gave in one capture (2 publishers, 1 player)."""
    return Reading(
        summary=parse_summary(load("api_summaries.json")),
        streams=parse_list(load("api_streams.json"), "streams", "s", parse_stream),
        vhosts=parse_list(load("api_vhosts.json"), "vhosts", "v", parse_vhost),
        builtin=parse_builtin((FIXTURES / "exporter-metrics.txt").read_text())
        if builtin else None,
        version=parse_version(load("api_versions.json")),
        proc=parse_self_proc_stats(load("api_self_proc_stats.json")),
    )


def stream(name: str, clients: int = 1, *, app: str = "live", vhost: str = "vid-n0cu715",
           sid: str | None = None, send: int = 1000, recv: int = 2000, kbps: int = 100,
           active: bool = True, **extra: Any) -> Stream:
    """A stream item in SRS 6.0.155's recorded shape, with the given figures."""
    doc = copy.deepcopy(load("api_streams.json")["streams"][0])
    doc.update(id=sid or f"id-{vhost}-{app}-{name}", name=name, app=app, vhost=vhost,
               clients=clients, send_bytes=send, recv_bytes=recv,
               kbps={"recv_30s": kbps, "send_30s": kbps * (clients - 1)},
               publish={"active": active, "cid": "c1" if active else ""})
    doc.update(extra)
    return parse_stream(doc, "streams[0]", "/api/v1/streams/")


def vhost(vid: str, name: str, clients: int = 0) -> Vhost:
    doc = copy.deepcopy(load("api_vhosts.json")["vhosts"][0])
    doc.update(id=vid, name=name, clients=clients)
    return parse_vhost(doc, "vhosts[0]", "/api/v1/vhosts/")


def by_sample_name(text: str) -> dict[str, Any]:
    """Parsed families by their samples' name. (Not by family name: a parser names the
    counter srs_clients_total `srs_clients`, like SRS's gauge.)"""
    found: dict[str, Any] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, family)
    return found


def exposition(families: Iterable[Metric]) -> dict[str, Any]:
    """Render as Prometheus text and parse it back: sample name -> parsed family."""
    items = list(families)

    class Fixed:
        def collect(self) -> Iterable[Metric]:
            return items

    registry = CollectorRegistry()
    registry.register(Fixed())
    return by_sample_name(generate_latest(registry).decode())


def values(family: Any, *label_names: str) -> dict[tuple[str, ...], float]:
    return {tuple(s.labels.get(n, "") for n in label_names): s.value for s in family.samples}


# ---------------------------------------------------------------------------
# SRS's 10 built-in names
# ---------------------------------------------------------------------------

def recorded_builtin() -> dict[str, Any]:
    return by_sample_name((FIXTURES / "exporter-metrics.txt").read_text())


def test_the_ten_builtin_names_types_and_help_are_srs_own() -> None:
    recorded = recorded_builtin()
    assert len(recorded) == len(BUILTIN) == 10
    for name, kind, help_text in BUILTIN:
        assert (recorded[name].type, recorded[name].documentation) == (kind, help_text), name


@pytest.mark.parametrize("builtin", [True, False], ids=["srs-metrics", "computed"])
def test_builtin_series_keep_srs_names_types_labels_and_units(builtin: bool) -> None:
    recorded = recorded_builtin()
    ours = exposition(global_families(recorded_reading(builtin)))
    for name, family in ours.items():
        srs = recorded[name]
        assert (family.type, family.documentation) == (srs.type, srs.documentation), name
        assert [s.name for s in family.samples] == [s.name for s in srs.samples]
        if builtin:
            assert family.samples == srs.samples, name  # passed through as SRS said
        else:
            # computed: the labels we can know are SRS's, with SRS's values
            for ours_sample, srs_sample in zip(family.samples, srs.samples, strict=True):
                assert ours_sample.labels.items() <= srs_sample.labels.items(), name


def test_computed_values_equal_srs_exporter_recorded_at_the_same_time() -> None:
    """srs_memory is KiB (rss pages * 4), bytes are the vhosts' sum, streams and clients
    count SRS's tables: equal to what SRS's own /metrics said in the same capture."""
    recorded = recorded_builtin()
    ours = exposition(global_families(recorded_reading(builtin=False)))
    for name in ("srs_memory", "srs_send_bytes_total", "srs_receive_bytes_total",
                 "srs_streams", "srs_clients"):
        assert ours[name].samples[0].value == recorded[name].samples[0].value, name
    assert recorded["srs_memory"].samples[0].value == 18672  # KiB, not MB or bytes
    # Only SRS's /metrics has these: absent when computed, never invented.
    for name in ("srs_clients_total", "srs_clients_errs_total", "srs_node_uname_info"):
        assert name not in ours
    assert ours["srs_build_info"].samples[0].labels == {
        "server": "vid-ob891rq", "service": "4eq2ia0l", "pid": "21437", "major": "6",
        "version": "6.0.155"}
    assert ours["srs_cpu_percent"].samples[0].value == pytest.approx(2.0)  # 0.02 * 100


def test_srs3_and_4_build_info_has_only_the_ids_they_send() -> None:
    doc = load("api_versions.json")
    for key in ("service", "pid"):
        del doc[key]
    reading = Reading(summary=parse_summary(load("api_summaries.json")), streams=[], vhosts=[],
                      version=parse_version(doc), proc=None)
    ours = exposition(global_families(reading))
    assert ours["srs_build_info"].samples[0].labels == {
        "server": "vid-ob891rq", "major": "6", "version": "6.0.155"}
    assert "srs_memory" not in ours  # self_proc_stats not read: absent, not 0
    assert ours["srs_cpu_percent"].samples[0].value == pytest.approx(1.0)  # summaries: 0.01
    assert ours["srs_streams"].samples[0].value == 0


def test_a_partial_srs_metrics_reply_is_completed_from_the_api() -> None:
    text = "\n".join(line for line in (FIXTURES / "exporter-metrics.txt").read_text()
                     .splitlines() if "srs_streams" not in line) + "\n"
    reading = recorded_reading(builtin=False)
    reading = Reading(summary=reading.summary, streams=reading.streams, vhosts=reading.vhosts,
                      builtin=parse_builtin(text), version=None, proc=None)
    ours = exposition(global_families(reading))
    assert ours["srs_streams"].samples[0].value == 2
    assert ours["srs_clients_total"].samples[0].value == 3


@pytest.mark.parametrize("text", [
    '{"code":0,"server":"vid-x","urls":{"api":"the api root"}}',  # SRS 3/4: the root answers
    "<html>not metrics</html>",
    "other_metric 1\n",
    "",
])
def test_text_that_is_not_srs_metrics_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_builtin(text)


# ---------------------------------------------------------------------------
# Vhosts and streams
# ---------------------------------------------------------------------------


def test_labels_use_vhost_names_never_ids() -> None:
    ours = exposition(Model(1000, StreamFilter()).families(recorded_reading(builtin=True)))
    labelled = {s.labels["vhost"] for f in ours.values() for s in f.samples if "vhost" in s.labels}
    assert labelled == {"__defaultVhost__"}
    assert values(ours["srs_stream_clients"], "app", "stream") == {
        ("live", "s1"): 2, ("live", "s2"): 1}
    assert values(ours["srs_stream_kbps"], "stream", "direction") == {
        ("s1", "receive"): 121, ("s1", "send"): 125, ("s2", "receive"): 120, ("s2", "send"): 0}
    assert values(ours["srs_vhost_send_bytes_total"], "vhost") == {("__defaultVhost__",): 479463}
    assert values(ours["srs_vhost_hls_fragment_seconds"], "vhost") == {("__defaultVhost__",): 2}
    info = ours["srs_stream_info"].samples[0].labels
    assert info == {"vhost": "__defaultVhost__", "app": "live", "stream": "s1",
                    "video_codec": "H264", "video_profile": "Other", "resolution": "320x240",
                    "audio_codec": "AAC", "audio_sample_rate": "44100", "audio_channels": "2"}
    assert "srs_exporter_streams_other" not in ours or not ours[
        "srs_exporter_streams_other"].samples


def test_srs3_stream_shape_gives_absent_labels_not_errors() -> None:
    """SRS 3/4 stream items: no url/tcUrl, publish.cid "" when idle; no video or audio yet."""
    doc = copy.deepcopy(load("api_streams.json")["streams"][0])
    for key in ("url", "tcUrl"):
        del doc[key]
    doc.update(publish={"active": False, "cid": ""}, video=None, audio=None, clients=1)
    idle = parse_stream(doc, "streams[0]", "/api/v1/streams/")
    vhosts = parse_list(load("api_vhosts.json"), "vhosts", "v", parse_vhost)
    ours = exposition(Model(10, StreamFilter()).streams.families([idle], {"vid-n0cu715": "a"}))
    assert values(ours["srs_stream_publish_active"], "stream") == {("s1",): 0}
    assert ours["srs_stream_info"].samples[0].labels == {
        "vhost": "a", "app": "live", "stream": "s1", "video_codec": "", "video_profile": "",
        "resolution": "", "audio_codec": "", "audio_sample_rate": "", "audio_channels": ""}
    assert vhosts  # the vhost list parses the same on every version


def test_top_n_by_clients_and_the_rest_summed_per_vhost() -> None:
    streams = [stream(f"s{i}", clients=i, send=10 * i, recv=20 * i, kbps=i) for i in range(1, 8)]
    streams.append(stream("x1", clients=3, vhost="vid-other", kbps=5, active=False))
    names = {"vid-n0cu715": "__defaultVhost__", "vid-other": "example.com"}
    ours = exposition(Model(3, StreamFilter()).streams.families(streams, names))
    clients = values(ours["srs_stream_clients"], "vhost", "app", "stream")
    assert clients == {
        ("__defaultVhost__", "live", "s7"): 7, ("__defaultVhost__", "live", "s6"): 6,
        ("__defaultVhost__", "live", "s5"): 5,
        ("__defaultVhost__", OTHER, OTHER): 1 + 2 + 3 + 4,
        ("example.com", OTHER, OTHER): 3,
    }
    assert sum(clients.values()) == sum(s.clients for s in streams)
    assert values(ours["srs_stream_publish_active"], "vhost", "stream") == {
        ("__defaultVhost__", "s7"): 1, ("__defaultVhost__", "s6"): 1,
        ("__defaultVhost__", "s5"): 1, ("__defaultVhost__", OTHER): 4, ("example.com", OTHER): 0}
    assert values(ours["srs_exporter_streams_other"], "vhost") == {
        ("__defaultVhost__",): 4, ("example.com",): 1}
    sent = values(ours["srs_stream_send_bytes_total"], "vhost", "stream")
    assert sum(sent.values()) == sum(s.send_bytes for s in streams)
    kbps = values(ours["srs_stream_kbps"], "vhost", "stream", "direction")
    assert kbps[("__defaultVhost__", OTHER, "receive")] == 1 + 2 + 3 + 4
    # the other series carry no per-stream-only families
    assert all(s.labels["stream"] != OTHER for s in ours["srs_stream_info"].samples)
    assert all(s.labels["stream"] != OTHER for s in ours["srs_stream_video_frames_total"].samples)


def test_ties_are_broken_by_bitrate_then_srs_order() -> None:
    streams = [stream("a", 2, kbps=1), stream("b", 2, kbps=9), stream("c", 2, kbps=1)]
    labelled, others = split_streams(streams, {}, 2, StreamFilter())
    assert [labels[2] for labels, _ in labelled] == ["a", "b"]
    assert [s.name for _, s in others] == ["c"]


def test_max_streams_zero_sums_everything() -> None:
    streams = [stream(f"s{i}", clients=2) for i in range(5)]
    labelled, others = split_streams(streams, {}, 0, StreamFilter())
    assert labelled == [] and len(others) == 5


def test_include_and_exclude_globs_on_vhost_app_stream_names() -> None:
    streams = [stream("cam1", app="live"), stream("cam2", app="live"),
               stream("test1", app="live"), stream("a", app="vod", vhost="vid-b")]
    names = {"vid-n0cu715": "__defaultVhost__", "vid-b": "b.example"}
    only_live = StreamFilter(include=("*/live/*",), exclude=("*/test*",))
    labelled, others = split_streams(streams, names, 100, only_live)
    assert [labels for labels, _ in labelled] == [
        ("__defaultVhost__", "live", "cam1"), ("__defaultVhost__", "live", "cam2")]
    assert sorted((v, s.name) for v, s in others) == [
        ("__defaultVhost__", "test1"), ("b.example", "a")]
    by_vhost = StreamFilter(include=("b.example/*",))
    assert [labels[2] for labels, _ in split_streams(streams, names, 100, by_vhost)[0]] == ["a"]


def test_other_byte_counters_never_go_down_as_streams_move() -> None:
    model = Model(1, StreamFilter())
    names = {"vid-n0cu715": "v"}

    def other_sent(streams: list[Stream]) -> float:
        ours = exposition(model.streams.families(streams, names))
        return values(ours["srs_stream_send_bytes_total"], "stream")[(OTHER,)]

    a1, b1 = stream("a", 5, sid="A", send=100), stream("b", 1, sid="B", send=1000)
    assert other_sent([a1, b1]) == 1000                       # b summed: all its bytes
    a2, b2 = stream("a", 1, sid="A", send=150), stream("b", 5, sid="B", send=1300)
    assert other_sent([a2, b2]) == 1000 + 50                  # b has its own series now
    a3 = stream("a", 1, sid="A", send=170)
    assert other_sent([a3]) == 1050                           # only stream: labelled
    a4, c4 = stream("a", 9, sid="A", send=200), stream("c", 1, sid="C", send=40)
    assert other_sent([a4, c4]) == 1090                       # new stream c: all of it
    c5 = stream("c", 1, sid="C", send=10)                     # went back: a new object
    a5 = stream("a", 9, sid="A", send=210)
    assert other_sent([a5, c5]) == 1100
    assert set(model.streams.other_bytes.last) == {"A", "C"}  # bounded by SRS's list


def test_a_stream_one_read_missed_is_not_counted_twice() -> None:
    """Paging can miss a stream when many streams before the window go away between two
    requests; when it shows again, only what it moved since it was last seen is new."""
    other = OtherBytes()
    a1, b1 = stream("a", sid="A", send=100), stream("b", sid="B", send=1000)
    other.update([a1, b1], [("v", a1), ("v", b1)])
    a2 = stream("a", sid="A", send=150)
    other.update([a2], [("v", a2)])  # B missed by this read
    a3, b3 = stream("a", sid="A", send=160), stream("b", sid="B", send=1200)
    other.update([a3, b3], [("v", a3), ("v", b3)])
    assert other.totals["v"][0] == 160 + 1200
    other.update([], [])
    other.update([], [])  # gone for two reads: forgotten, state bounded
    assert other.last == {} and other.missed == {}


def test_other_bytes_state_forgets_streams_srs_no_longer_lists() -> None:
    other = OtherBytes()
    other.update([stream("a", sid="A")], [("v", stream("a", sid="A"))])
    other.update([], [])
    assert other.last == {} and other.totals == {"v": [1000, 2000]}


def test_label_values_are_safe_and_bounded() -> None:
    assert safe_label('we"ird\\na\nme\x00') == 'we"ird\\na_me_'
    long_a, long_b = "a" * 300 + "1", "a" * 300 + "2"
    cut_a, cut_b = safe_label(long_a), safe_label(long_b)
    assert len(cut_a) == len(cut_b) == LABEL_MAX and cut_a != cut_b
    assert safe_label("x" * LABEL_MAX) == "x" * LABEL_MAX
    # and the exposition escapes what is left: it parses back to the same value
    streams = [stream('q"uo\\te\nd', 1)]
    ours = exposition(Model(10, StreamFilter()).streams.families(streams, {}))
    assert [s.labels["stream"] for s in ours["srs_stream_clients"].samples] == ['q"uo\\te_d']


def test_a_lone_surrogate_cannot_break_the_exposition() -> None:
    """A `\\ud800` escape in a reply decodes to a lone surrogate, which UTF-8 cannot
    encode: kept in a label, it would fail every scrape while the stream exists."""
    name = json.loads('"cam\\ud800"')
    assert safe_label(name) == "cam_"
    ours = exposition(Model(10, StreamFilter()).streams.families([stream(name, 1)], {}))
    assert [s.labels["stream"] for s in ours["srs_stream_clients"].samples] == ["cam_"]


def test_names_that_clash_after_cutting_are_summed_not_merged() -> None:
    streams = [stream("a" * 300, 3, sid="A"), stream("a" * 300, 2, sid="B", app="live")]
    labelled, others = split_streams(streams, {}, 10, StreamFilter())
    assert len(labelled) == 1 and len(others) == 1
    marker = [stream(OTHER, 1, app=OTHER)]
    labelled, others = split_streams(marker, {}, 10, StreamFilter())
    assert labelled == [] and len(others) == 1


def test_unknown_vhost_id_keeps_the_id() -> None:
    labelled, _ = split_streams([stream("s", vhost="vid-new")], {}, 10, StreamFilter())
    assert labelled[0][0] == ("vid-new", "live", "s")


def test_own_series_report_every_reason_from_zero() -> None:
    ours = exposition(own_families(False, 0.25, {"timeout": 2}))
    assert ours["srs_up"].samples[0].value == 0
    assert ours["srs_scrape_duration_seconds"].samples[0].value == 0.25
    assert values(ours["srs_exporter_errors_total"], "reason") == {
        ("api_code",): 0, ("protocol",): 0, ("refused",): 0, ("timeout",): 2}
    assert ours["srs_exporter_errors_total"].type == "counter"


def test_vhost_series_for_two_vhosts() -> None:
    reading = Reading(summary=parse_summary(load("api_summaries.json")), streams=[],
                      vhosts=[vhost("vid-1", "__defaultVhost__", 3), vhost("vid-2", "b", 1)])
    ours = exposition(Model(10, StreamFilter()).families(reading))
    assert values(ours["srs_vhost_clients"], "vhost") == {("__defaultVhost__",): 3, ("b",): 1}
    assert ours["srs_clients"].samples[0].value == 4
    assert "srs_stream_clients" not in ours or not ours["srs_stream_clients"].samples
