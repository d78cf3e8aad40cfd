"""Parsing SRS API replies: the replies recorded from SRS 6.0.155, and the shapes of
older and newer versions as their sources write them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from agents.errors import PermanentError
from agents.srs.api import (
    AudioInfo,
    ReloadState,
    SrsApiError,
    SrsProtocolError,
    VideoInfo,
    byte_totals,
    decode_reply,
    parse_client,
    parse_list,
    parse_raw_api_config,
    parse_reload_state,
    parse_self_proc_stats,
    parse_stream,
    parse_summary,
    parse_version,
    parse_vhost,
)

FIXTURES = Path(__file__).parents[1] / "fixtures" / "srs-6.0.155"
API = FIXTURES / "api"


def raw(name: str) -> dict[str, Any]:
    """A byte-exact recorded body, decoded as the client decodes it."""
    return decode_reply((API / "raw" / f"{name}.raw.json").read_bytes(), f"/{name}")


def pretty(name: str) -> dict[str, Any]:
    return decode_reply((API / name).read_bytes(), f"/{name}")


def recorded_metrics() -> dict[str, float]:
    text = (FIXTURES / "exporter-metrics.txt").read_text()
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_versions() -> None:
    version = parse_version(raw("api_versions"))
    assert (version.major, version.minor, version.revision) == (6, 0, 155)
    assert version.version == "6.0.155"
    assert version.server_id == "vid-ob891rq"
    assert version.service_id == "4eq2ia0l"
    assert version.service_pid == "21437"  # a string in the envelope


def test_summaries() -> None:
    summary = parse_summary(raw("api_summaries"))
    assert summary.ok is True
    assert summary.now_ms == 1795718115982
    proc = summary.process
    assert proc.version == "6.0.155"
    assert proc.pid == 21437  # an int here, unlike the envelope
    assert proc.mem_kbyte == 18672
    assert proc.cpu_percent == pytest.approx(0.02)
    assert proc.srs_uptime == 38
    system = summary.system
    assert system.cpus == 2
    assert system.load_1m == pytest.approx(1.99)
    assert (system.srs_send_bytes, system.srs_recv_bytes) == (479463, 930384)
    assert system.conn_srs == 3


def test_summaries_pretty_recapture() -> None:
    summary = parse_summary(pretty("api_summaries.json"))
    assert summary.process.srs_uptime == 77
    assert summary.system.conn_srs == 5


def test_byte_totals_match_srs_exporter() -> None:
    """The vhost sums equal SRS's own srs_send_bytes_total/srs_receive_bytes_total,
    recorded at the same moment; so do the summaries' sampled counters."""
    vhosts = parse_list(raw("api_vhosts"), "vhosts", "/api/v1/vhosts/", parse_vhost)
    metrics = recorded_metrics()
    assert byte_totals(vhosts) == (
        metrics["srs_send_bytes_total"],
        metrics["srs_receive_bytes_total"],
    )
    system = parse_summary(raw("api_summaries")).system
    assert (system.srs_send_bytes, system.srs_recv_bytes) == byte_totals(vhosts)


def test_self_proc_stats_give_srs_memory() -> None:
    stats = parse_self_proc_stats(raw("api_self_proc_stats"))
    assert stats.pid == 21437
    assert stats.rss_pages is not None
    assert stats.rss_pages * 4 == recorded_metrics()["srs_memory"]


def test_vhosts() -> None:
    [vhost] = parse_list(raw("api_vhosts"), "vhosts", "/api/v1/vhosts/", parse_vhost)
    assert vhost.id == "vid-n0cu715"
    assert vhost.name == "__defaultVhost__"
    assert vhost.enabled is True
    assert (vhost.clients, vhost.streams) == (3, 2)
    assert (vhost.kbps_recv, vhost.kbps_send) == (242, 125)
    assert vhost.hls_enabled is True
    assert vhost.hls_fragment == 2.0


def test_vhost_by_id() -> None:
    vhost = parse_vhost(pretty("api_vhosts_by_id.json")["vhost"], "vhost", "/api/v1/vhosts/x")
    assert vhost.send_bytes == 573192


def test_streams() -> None:
    s1, s2 = parse_list(raw("api_streams"), "streams", "/api/v1/streams/", parse_stream)
    assert (s1.id, s1.name, s1.app, s1.url) == ("vid-058je76", "s1", "live", "/live/s1")
    assert s1.vhost_id == "vid-n0cu715"
    assert s1.tc_url == "rtmp://127.0.0.1:1935/live"
    assert (s1.clients, s1.frames) == (2, 703)
    assert (s1.send_bytes, s1.recv_bytes) == (475077, 466925)
    assert (s1.kbps_recv, s1.kbps_send) == (121, 125)
    assert s1.publish_active is True
    assert s1.publish_cid == "5k3uk760"
    assert s1.video == VideoInfo("H264", "Other", "1.3", 320, 240)
    assert s1.audio == AudioInfo("AAC", 44100, 2, "LC")
    assert s2.name == "s2" and s2.clients == 1


def test_stream_snapshot_and_by_id() -> None:
    streams = parse_list(
        pretty("api_streams_snapshot2.json"), "streams", "/api/v1/streams/", parse_stream
    )
    assert [s.clients for s in streams] == [4, 1]
    by_id = parse_stream(pretty("api_streams_by_id.json")["stream"], "stream", "/x")
    assert by_id.id == "vid-058je76" and by_id.frames == 953


def test_clients() -> None:
    clients = parse_list(raw("api_clients"), "clients", "/api/v1/clients/", parse_client)
    assert [(c.id, c.type, c.publish) for c in clients] == [
        ("5k3uk760", "fmle-publish", True),
        ("6021pd75", "rtmp-play", False),
        ("y5o6b8h5", "fmle-publish", True),
    ]
    player = clients[1]
    assert player.stream_id == "vid-058je76"
    assert player.vhost_id == "vid-n0cu715"
    assert player.ip == "127.0.0.1"
    assert player.url == "/live/s1"
    assert player.name == "s1"
    assert player.alive == pytest.approx(31.83)
    assert (player.send_bytes, player.recv_bytes) == (470691, 3466)
    assert (player.kbps_recv, player.kbps_send) == (0, 0)


def test_clients_with_hls_play() -> None:
    clients = parse_list(
        pretty("api_clients_snapshot2_with_hls_play.json"), "clients", "/x", parse_client
    )
    hls = [c for c in clients if c.type == "hls-play"]
    assert [c.name for c in hls] == ["s1.m3u8", "s1.m3u8"]
    assert hls[0].tc_url == "http://127.0.0.1/live"


def test_stream_not_found() -> None:
    with pytest.raises(SrsApiError) as info:
        decode_reply((API / "api_streams_notfound.json").read_bytes(), "/api/v1/streams/nope")
    assert info.value.code == 2048
    assert info.value.path == "/api/v1/streams/nope"
    assert "/api/v1/streams/nope" in str(info.value)
    assert "stream not found" in str(info.value)
    assert isinstance(info.value, PermanentError)


@pytest.mark.parametrize(
    ("code", "meaning"),
    [
        (1060, "bad or unknown raw rpc"),
        (1061, "raw API disabled"),
        (1090, "exporter disabled"),
        (1023, "config invalid"),
        (2049, "client not found"),
        (4242, "unknown error code"),
    ],
)
def test_error_codes_are_named(code: int, meaning: str) -> None:
    with pytest.raises(SrsApiError, match=meaning) as info:
        decode_reply(json.dumps({"code": code}).encode(), "/api/v1/raw?rpc=reload")
    assert info.value.code == code
    assert "/api/v1/raw?rpc=reload" in str(info.value)


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"<html>502 Bad Gateway</html>", "not JSON"),
        (b'{"code":0,"streams":[', "not JSON"),
        (b"", "not JSON"),
        (b"[1, 2]", "expected an object"),
        (b'{"streams": []}', "reply.code: missing"),
        (b'{"code": "zero"}', "reply.code: expected an integer"),
    ],
)
def test_not_an_srs_reply(body: bytes, detail: str) -> None:
    with pytest.raises(SrsProtocolError, match=detail) as info:
        decode_reply(body, "/api/v1/streams/")
    assert "/api/v1/streams/" in str(info.value)


def test_wrong_shape_names_the_field() -> None:
    doc = raw("api_streams")
    doc["streams"][1]["clients"] = "many"
    with pytest.raises(SrsProtocolError, match=r"streams\[1\]\.clients: expected an integer"):
        parse_list(doc, "streams", "/api/v1/streams/", parse_stream)
    doc = raw("api_streams")
    del doc["streams"][0]["publish"]
    with pytest.raises(SrsProtocolError, match=r"streams\[0\]\.publish: missing"):
        parse_list(doc, "streams", "/api/v1/streams/", parse_stream)
    with pytest.raises(SrsProtocolError, match=r"reply\.streams: expected a list"):
        parse_list({"code": 0, "streams": {}}, "streams", "/api/v1/streams/", parse_stream)
    with pytest.raises(SrsProtocolError, match=r"vhosts\[0\]: expected an object"):
        parse_list({"code": 0, "vhosts": [None]}, "vhosts", "/api/v1/vhosts/", parse_vhost)


def test_extra_fields_are_ignored() -> None:
    doc = raw("api_streams")
    doc["streams"][0]["rtc"] = {"enabled": True}
    doc["streams"][0]["kbps"]["recv_5m"] = 1
    doc["future_envelope_field"] = [1, 2]
    streams = parse_list(doc, "streams", "/api/v1/streams/", parse_stream)
    assert streams[0].kbps_recv == 121


# Shapes of older SRS, written as their statistic dumps() build them
# (srs_app_statistic.cpp of the 3.0release and 4.0release branches).
SRS4_STREAMS = b"""{"code":0,"server":"vid-1k2","streams":[{"id":"vid-a1","name":"s1",
"vhost":"vid-v1","app":"live","live_ms":1700000000000,"clients":1,"frames":10,
"send_bytes":0,"recv_bytes":1000,"kbps":{"recv_30s":8,"send_30s":0},
"publish":{"active":false,"cid":""},"video":null,"audio":null}]}"""

SRS3_CLIENTS = b"""{"code":0,"server":105,"clients":[{"id":107,"vhost":"vid-v1",
"stream":"vid-a1","ip":"10.0.0.9","pageUrl":"","swfUrl":"","tcUrl":"rtmp://x/live",
"url":"/live/s1","type":"rtmp-play","publish":false,"alive":1.5}]}"""

SRS4_CLIENTS = b"""{"code":0,"server":"vid-1k2","clients":[{"id":"c1","vhost":"vid-v1",
"stream":"vid-a1","ip":"10.0.0.9","pageUrl":"","swfUrl":"","tcUrl":"rtmp://x/live",
"url":"/live/s1","type":"flv-play","publish":false,"alive":2,
"kbps":{"recv_30s":0,"send_30s":900}}]}"""

SRS4_VERSIONS = b"""{"code":0,"server":"vid-1k2","data":{"major":4,"minor":0,
"revision":271,"version":"4.0.271"}}"""


def test_srs4_stream_shape() -> None:
    [stream] = parse_list(decode_reply(SRS4_STREAMS, "/s"), "streams", "/s", parse_stream)
    assert stream.url is None and stream.tc_url is None  # 5.0+
    assert stream.publish_cid is None  # "" before 6.0 when nobody publishes
    assert stream.publish_active is False
    assert stream.video is None and stream.audio is None


def test_srs3_client_shape() -> None:
    [client] = parse_list(decode_reply(SRS3_CLIENTS, "/c"), "clients", "/c", parse_client)
    assert client.id == "107"  # integer ids in old SRS 3 releases
    assert client.name is None
    assert client.send_bytes is None and client.recv_bytes is None
    assert client.kbps_recv is None and client.kbps_send is None
    assert client.alive == 1.5


def test_srs4_client_shape() -> None:
    [client] = parse_list(decode_reply(SRS4_CLIENTS, "/c"), "clients", "/c", parse_client)
    assert (client.kbps_recv, client.kbps_send) == (0, 900)
    assert client.send_bytes is None
    assert client.alive == 2.0


def test_srs4_versions_without_service() -> None:
    version = parse_version(decode_reply(SRS4_VERSIONS, "/v"))
    assert version.version == "4.0.271"
    assert version.service_id is None and version.service_pid is None


def test_vhost_with_hls_off_has_no_fragment() -> None:
    doc = raw("api_vhosts")
    doc["vhosts"][0]["hls"] = {"enabled": False}
    [vhost] = parse_list(doc, "vhosts", "/api/v1/vhosts/", parse_vhost)
    assert vhost.hls_enabled is False and vhost.hls_fragment is None


# rpc=reload-fetch and rpc=raw replies as recorded from SRS 6.0.155.
RELOAD_OK = b'{"code":0,"data":{"err":0,"msg":"Success","state":90,"rid":"r1x270b"}}'
RELOAD_FAILED = (
    b'{"code":0,"data":{"err":1023,"msg":"code=1023(ConfigInvalid) : parse file : '
    b'line 35: unexpected end of line to parse token hls_window","state":10,"rid":"o670q6q"}}'
)
RAW_CONFIG = (
    b'{"code":0,"http_api":{"enabled":true,"listen":"127.0.0.1:1985","crossdomain":true,'
    b'"raw_api":{"enabled":true,"allow_reload":true,"allow_query":false,"allow_update":false}}}'
)


def test_reload_fetch() -> None:
    ok = parse_reload_state(decode_reply(RELOAD_OK, "/r"))
    assert ok == ReloadState(err=0, msg="Success", state=90, rid="r1x270b")
    assert ok.succeeded
    failed = parse_reload_state(decode_reply(RELOAD_FAILED, "/r"))
    assert failed.err == 1023 and failed.state == 10 and failed.rid == "o670q6q"
    assert "hls_window" in failed.msg
    assert not failed.succeeded


def test_raw_api_config() -> None:
    config = parse_raw_api_config(decode_reply(RAW_CONFIG, "/r"))
    assert config.http_api_enabled and config.raw_api_enabled and config.allow_reload
    assert config.listen == "127.0.0.1:1985"
    assert not config.allow_query and not config.allow_update


@pytest.mark.parametrize("body", [
    b'{"code":0,"x":' + b"[" * 100_000 + b"]" * 100_000 + b"}",  # nesting too deep
    b'{"code":' + b"1" * 5000 + b"}",  # an int Python refuses to parse (4300+ digits)
])
def test_garbage_replies_are_protocol_errors(body: bytes) -> None:
    with pytest.raises(SrsProtocolError):
        decode_reply(body, "/api/v1/streams/")


def test_raw_control_characters_in_strings_are_read_as_srs_writes_them() -> None:
    doc = decode_reply(b'{"code":0,"name":"a\x01b"}', "/api/v1/streams/")
    assert doc["name"] == "a\x01b"


@pytest.mark.parametrize("value", ["²", "9" * 30, 2**70, -(2**64)])
def test_integers_outside_what_srs_writes_are_refused(value: object) -> None:
    doc = json.loads(json.dumps({"code": 0, "server": "s", "service": "v", "pid": "1",
                                 "data": {"major": value, "minor": 0, "revision": 1,
                                          "version": "6.0.1"}}))
    with pytest.raises(SrsProtocolError):
        parse_version(doc)
