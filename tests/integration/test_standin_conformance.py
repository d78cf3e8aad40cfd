"""The SRS stand-in answers like the recorded SRS 6.0.155, field by field.

Every comparison is against tests/fixtures/srs-6.0.155 (recorded from a real SRS): key
paths and JSON types of each endpoint, the header lines of each raw reply, the exporter's
metric names/types/HELP, paging, error codes, raw rpc replies and reload results. If the
stand-in drifts from the recordings, one of these fails.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import StandInFactory
from tests.standin.harness import StandIn

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "srs-6.0.155"
API = FIXTURES / "api"
RAW = API / "raw"

# Recorded endpoint -> path on the stand-in's API port.
ENDPOINTS = {
    "api_versions": "/api/v1/versions",
    "api_summaries": "/api/v1/summaries",
    "api_streams": "/api/v1/streams/",
    "api_clients": "/api/v1/clients/",
    "api_vhosts": "/api/v1/vhosts/",
    "api_rusages": "/api/v1/rusages",
    "api_self_proc_stats": "/api/v1/self_proc_stats",
    "api_system_proc_stats": "/api/v1/system_proc_stats",
    "api_meminfos": "/api/v1/meminfos",
    "api_features": "/api/v1/features",
    "api_authors": "/api/v1/authors",
    "api_clusters": "/api/v1/clusters",
    "api_root": "/api/",
    "api_v1_root": "/api/v1/",
    "http_api_root": "/",
}


# --- helpers -------------------------------------------------------------------------


def key_paths(value: Any, prefix: str = "", jq: bool = False) -> set[str]:
    """`a.b`, `list.[].c` for every non-null leaf. With `jq`, false leaves are left out
    too, as jq's `leaf_paths` did when api_field_names.txt was made."""
    paths: set[str] = set()
    if isinstance(value, dict):
        for k, v in value.items():
            paths |= key_paths(v, f"{prefix}{k}.", jq)
    elif isinstance(value, list):
        for item in value:
            paths |= key_paths(item, f"{prefix}[].", jq)
    elif value is not None and not (jq and value is False):
        paths.add(prefix[:-1])
    return paths


def leaf_types(value: Any, prefix: str = "", strict: bool = True) -> dict[str, str]:
    """JSON type of each leaf; without `strict`, int and float are both `number`
    (the pretty recordings went through jq, which prints 2.00 as 2)."""
    types: dict[str, str] = {}
    if isinstance(value, dict):
        for k, v in value.items():
            types.update(leaf_types(v, f"{prefix}{k}.", strict))
    elif isinstance(value, list):
        for item in value:
            types.update(leaf_types(item, f"{prefix}[].", strict))
    elif value is not None:
        name = type(value).__name__
        if not strict and name in ("int", "float"):
            name = "number"
        types[prefix[:-1]] = name
    return types


def recorded_field_names() -> dict[str, set[str]]:
    sections: dict[str, set[str]] = {}
    current = ""
    for line in (API / "api_field_names.txt").read_text().splitlines():
        if line.startswith("## "):
            current = line[3:].removesuffix(".json")
        elif line.strip():
            sections[current] = {p.strip() for p in line.split(",")}
    return sections


def recorded(name: str) -> tuple[Any, bool]:
    """The recorded reply (raw when there is one) and whether it is byte-exact."""
    raw = RAW / f"{name}.raw.json"
    if raw.exists():
        return json.loads(raw.read_text()), True
    return json.loads((API / f"{name}.json").read_text()), False


def raw_http(port: int, path: str, method: str = "GET") -> tuple[str, list[tuple[str, str]], bytes]:
    """One request over a plain socket: the status line, header lines in order, body."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            assert chunk, f"connection closed before the reply head: {data!r}"
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = [(k, v.strip()) for k, _, v in (line.partition(":") for line in lines[1:])]
        length = int(dict(headers)["Content-Length"])
        while len(body) < length:
            chunk = s.recv(65536)
            assert chunk
            body += chunk
    return lines[0], headers, body


def recorded_headers(name: str) -> tuple[str, list[tuple[str, str]]]:
    lines = (RAW / f"{name}.headers").read_text().replace("\r\n", "\n").strip().split("\n")
    return lines[0], [(k, v.strip()) for k, _, v in (line.partition(":") for line in lines[1:])]


async def capture_like(srs: StandIn) -> None:
    """The recording's scene: publishers s1 and s2, one RTMP player on s1."""
    srs.connect_publisher("live", "s1")
    srs.connect_publisher("live", "s2")
    await srs.wait_clients(2)
    srs.connect_player("live", "s1")
    await srs.wait_clients(3)


# --- field names, types and headers ---------------------------------------------------


async def test_every_recorded_endpoint_has_the_same_fields_and_types(
    standin: StandInFactory,
) -> None:
    srs = await standin(tick=0.2)
    await capture_like(srs)
    names = recorded_field_names()
    for name, path in ENDPOINTS.items():
        got = await srs.get_json(path)
        want, exact = recorded(name)
        if name in names:
            assert key_paths(got, jq=True) == names[name], name
        assert key_paths(got) == key_paths(want), name
        assert leaf_types(got, strict=exact) == leaf_types(want, strict=exact), name
    # the single-object replies
    streams = (await srs.get_json("/api/v1/streams/"))["streams"]
    s1 = next(s for s in streams if s["name"] == "s1")
    player = next(
        c for c in (await srs.get_json("/api/v1/clients/"))["clients"] if c["type"] == "rtmp-play"
    )
    vhost_id = s1["vhost"]
    for name, path in {
        "api_streams_by_id": f"/api/v1/streams/{s1['id']}",
        "api_clients_by_id": f"/api/v1/clients/{player['id']}",
        "api_vhosts_by_id": f"/api/v1/vhosts/{vhost_id}",
    }.items():
        got = await srs.get_json(path)
        want, _ = recorded(name)
        assert key_paths(got) == key_paths(want), name
        assert leaf_types(got, strict=False) == leaf_types(want, strict=False), name


async def test_values_that_carry_meaning_match_the_recording(standin: StandInFactory) -> None:
    srs = await standin(tick=0.2)
    await capture_like(srs)
    streams = (await srs.get_json("/api/v1/streams/"))["streams"]
    clients = (await srs.get_json("/api/v1/clients/"))["clients"]
    vhosts = (await srs.get_json("/api/v1/vhosts/"))["vhosts"]
    want_streams = recorded("api_streams")[0]["streams"]
    want_clients = recorded("api_clients")[0]["clients"]
    # streams and clients come in id order (a std::map in SRS)
    assert [s["id"] for s in streams] == sorted(s["id"] for s in streams)
    assert [c["id"] for c in clients] == sorted(c["id"] for c in clients)
    by_name = {s["name"]: s for s in streams}
    assert by_name["s1"]["clients"] == 2 and by_name["s2"]["clients"] == 1
    assert sorted(c["type"] for c in clients) == sorted(c["type"] for c in want_clients)
    for got, want in ((by_name["s1"], want_streams[0]), (by_name["s2"], want_streams[1])):
        for key in ("name", "app", "url", "video", "audio"):
            assert got[key] == want[key], key
        assert got["publish"]["active"] is True
        assert got["vhost"] == vhosts[0]["id"]  # the vhost field is the vhost *id*
        assert re.fullmatch(r"vid-[0-9a-z]{7}", got["id"])
        assert abs(got["live_ms"] - time.time() * 1000) < 5000  # live_ms is "now"
    publisher_ids = {c["id"] for c in clients if c["publish"]}
    assert {s["publish"]["cid"] for s in streams} == publisher_ids
    assert vhosts[0]["name"] == "__defaultVhost__"
    assert vhosts[0]["clients"] == 3 and vhosts[0]["streams"] == 2
    assert vhosts[0]["hls"] == {"enabled": True, "fragment": 2.0}
    top = await srs.get_json("/api/v1/versions")
    assert top["data"] == recorded("api_versions")[0]["data"]
    assert top["pid"] == str(srs.pid) and isinstance(top["pid"], str)
    assert re.fullmatch(r"vid-[0-9a-z]{7}", top["server"])
    assert (srs.pid_file.parent / "srs.id").read_text() == top["server"]
    summaries = await srs.get_json("/api/v1/summaries")
    assert summaries["data"]["self"]["pid"] == srs.pid  # an int here


async def test_reply_headers_are_those_of_the_recording(standin: StandInFactory) -> None:
    srs = await standin(tick=0.2)
    await capture_like(srs)
    for headers_file in sorted(RAW.glob("*.headers")):
        name = headers_file.name.removesuffix(".headers")
        if name == "metrics":
            status, headers, body = raw_http(srs.exporter_port, "/metrics")
        else:
            status, headers, body = raw_http(srs.api_port, ENDPOINTS[name])
        want_status, want_headers = recorded_headers(name)
        assert status == want_status, name
        assert [k for k, _ in headers] == [k for k, _ in want_headers], name
        for (key, value), (_, want_value) in zip(headers, want_headers, strict=True):
            if key == "Content-Length":
                assert int(value) == len(body), name
            else:
                assert value == want_value, (name, key)


async def test_raw_bodies_are_written_like_srs_json(standin: StandInFactory) -> None:
    """SRS prints numbers with %.2f (`"fragment":2.00`) and no spaces: same text form."""
    srs = await standin(tick=0.2)
    await capture_like(srs)
    _, _, body = raw_http(srs.api_port, "/api/v1/vhosts/")
    recorded_text = (RAW / "api_vhosts.raw.json").read_text()
    assert b'"hls":{"enabled":true,"fragment":2.00}' in body
    assert '"hls":{"enabled":true,"fragment":2.00}' in recorded_text
    _, _, body = raw_http(srs.api_port, "/api/v1/clients/")
    assert re.search(rb'"alive":\d+\.\d\d,', body)
    assert b", " not in body and b": " not in body
    _, _, body = raw_http(srs.api_port, "/api/v1/streams/nothing")
    assert body == (API / "api_streams_notfound.json").read_bytes().strip()


# --- exporter ----------------------------------------------------------------------------


def families(text: str) -> dict[str, tuple[str, str, set[tuple[str, ...]]]]:
    return {
        f.name: (f.type, f.documentation, {tuple(sorted(s.labels)) for s in f.samples})
        for f in text_string_to_metric_families(text)
    }


async def test_exporter_has_the_recorded_names_types_help_and_labels(
    standin: StandInFactory,
) -> None:
    srs = await standin(tick=0.2)
    await capture_like(srs)
    want = families((FIXTURES / "exporter-metrics.txt").read_text())
    on_exporter = await srs.get("/metrics", srs.exporter_url)
    on_api = await srs.get("/metrics", srs.api_url)
    assert families(on_exporter) == want
    assert families(on_api) == want
    samples = {s.name: s for f in text_string_to_metric_families(on_exporter) for s in f.samples}
    assert samples["srs_streams"].value == 2
    assert samples["srs_clients"].value == 3
    assert samples["srs_clients_total"].value == 3
    build = samples["srs_build_info"].labels
    assert build["pid"] == str(srs.pid) and build["label"] == "test-label"
    assert build["tag"] == "test-tag" and build["version"] == "6.0.155"
    # srs_memory is in KiB (rss pages * 4): the same order as this process's VmRSS
    rss_kib = int(
        next(
            line.split()[1]
            for line in Path(f"/proc/{srs.pid}/status").read_text().splitlines()
            if line.startswith("VmRSS:")
        )
    )
    assert 0.5 * rss_kib <= samples["srs_memory"].value <= 2 * rss_kib


async def test_exporter_disabled_answers_1090_like_the_recording(standin: StandInFactory) -> None:
    srs = await standin(tick=0.2, exporter=False)
    recorded_text = (FIXTURES / "logs" / "run-h-misc.api.txt").read_text()
    section = recorded_text.split("## exporter disabled: GET :1985/metrics\n")[1]
    want_head, _, rest = section.partition("\n\n")
    want_body = rest.split("\n")[0]
    status, headers, body = raw_http(srs.api_port, "/metrics")
    want_lines = want_head.split("\n")
    assert status == want_lines[0]
    assert [f"{k}: {v}" for k, v in headers] == want_lines[1:]
    assert body.decode() == want_body == '{"code":1090}'
    assert not _accepts(srs.exporter_port)


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


# --- paging ----------------------------------------------------------------------------


async def test_paging_25_streams_like_srs(standin: StandInFactory) -> None:
    srs = await standin(tick=0.2, fake_streams=25)

    async def ids(query: str) -> list[str]:
        return [s["id"] for s in (await srs.get_json(f"/api/v1/streams/{query}"))["streams"]]

    everything = await ids("?count=1000")
    assert len(everything) == 25 and everything == sorted(everything)
    assert await ids("") == everything[:10]  # count defaults to 10
    assert await ids("?count=3") == everything[:10]  # and is at least 10
    assert await ids("?count=0") == everything[:10]
    assert await ids("?count=abc") == everything[:10]
    assert await ids("?count=20") == everything[:20]
    assert await ids("?start=10") == everything[10:20]
    assert await ids("?start=20") == everything[20:]
    assert await ids("?start=20&count=3") == everything[20:]
    assert await ids("?start=-5") == everything[:10]
    assert await ids("?start=25") == []
    assert await ids("?start=12abc&count=11xyz") == everything[12:23]  # atoi
    clients = (await srs.get_json("/api/v1/clients/?count=100000"))["clients"]
    assert len((await srs.get_json("/api/v1/clients/"))["clients"]) == min(10, len(clients))
    total = sum(s["clients"] for s in (await srs.get_json("/api/v1/streams/?count=99"))["streams"])
    assert total == len(clients)
    # a stream's figures are those of its clients
    by_stream: dict[str, list[Any]] = {}
    for c in clients:
        by_stream.setdefault(c["stream"], []).append(c)
    for s in (await srs.get_json("/api/v1/streams/?count=99"))["streams"]:
        mine = by_stream[s["id"]]
        assert s["clients"] == len(mine)
        assert s["publish"]["cid"] in {c["id"] for c in mine if c["publish"]}
        for key in ("recv_30s", "send_30s"):
            assert abs(s["kbps"][key] - sum(c["kbps"][key] for c in mine)) <= len(mine) + 1
        assert s["kbps"]["recv_30s"] > 0
    # synthetic streams have the recorded shape too
    want_paths = key_paths(recorded("api_streams")[0]["streams"][0])
    full = [
        s
        for s in (await srs.get_json("/api/v1/streams/?count=99"))["streams"]
        if s["video"] and s["audio"]
    ]
    assert full and all(key_paths(s) == want_paths for s in full)


async def test_paging_2500_streams(standin: StandInFactory) -> None:
    srs = await standin(tick=0.2, fake_streams=2500)
    everything = [s["id"] for s in (await srs.get_json("/api/v1/streams/?count=10000"))["streams"]]
    assert len(everything) == 2500 == len(set(everything))
    paged: list[str] = []
    for start in range(0, 2500, 500):
        page = (await srs.get_json(f"/api/v1/streams/?start={start}&count=500"))["streams"]
        assert len(page) == 500
        paged += [s["id"] for s in page]
    assert paged == everything == sorted(everything)
    assert len((await srs.get_json("/api/v1/streams/"))["streams"]) == 10
    metrics = await srs.get("/metrics", srs.exporter_url)
    assert re.search(r"^srs_streams 2500$", metrics, re.M)


# --- error codes, raw rpc, reload -------------------------------------------------------


async def test_not_found_codes_and_methods(standin: StandInFactory) -> None:
    srs = await standin(tick=0.2)
    assert await srs.get_json("/api/v1/streams/vid-nothing") == {"code": 2048}
    assert await srs.get_json("/api/v1/clients/nothing") == {"code": 2049}
    assert await srs.get_json("/api/v1/vhosts/vid-nothing") == {"code": 2014}
    assert (await srs.get_json("/api/v1/vhosts/"))["vhosts"] == []  # none before a stream
    assert (await srs.get_json("/api/v1/streams"))["urls"]  # no slash: the /api/v1/ handler
    assert (await srs.get_json("/whatever"))["urls"]["api"] == "the api root"
    status, headers, body = raw_http(srs.api_port, "/api/v1/streams/", "POST")
    assert status == "HTTP/1.1 405 Method Not Allowed" and body == b"Method Not Allowed"
    assert dict(headers)["Content-Type"] == "text/plain; charset=utf-8"
    assert await srs.get_json("/api/v1/tests/errors") == {"code": 100}


async def test_raw_rpc_replies(standin: StandInFactory) -> None:
    srs = await standin(tick=0.2)
    assert await srs.get_json("/api/v1/raw") == {"code": 1060}
    assert await srs.get_json("/api/v1/raw?rpc=nothing") == {"code": 1060}
    fetch = await srs.get_json("/api/v1/raw?rpc=reload-fetch")
    assert fetch == {"code": 0, "data": {"err": 0, "msg": "Success", "state": 0, "rid": ""}}
    raw = await srs.get_json("/api/v1/raw?rpc=raw")
    assert raw == {
        "code": 0,
        "http_api": {
            "enabled": True,
            "listen": f"127.0.0.1:{srs.api_port}",
            "crossdomain": True,
            "raw_api": {
                "enabled": True,
                "allow_reload": True,
                "allow_query": False,
                "allow_update": False,
            },
        },
    }
    assert await srs.get_json("/api/v1/raw?rpc=reload") == {"code": 0}
    done = await srs.wait_event("reload", ok=True)
    assert srs.events("signal") == []  # asked by the API, not by SIGHUP
    assert [e["source"] for e in srs.events("reload_requested")] == ["api"]
    fetch = await srs.get_json("/api/v1/raw?rpc=reload-fetch")
    assert fetch["data"] == {"err": 0, "msg": "Success", "state": 90, "rid": done["rid"]}
    assert re.fullmatch(r"[0-9a-z]{7}", done["rid"])


async def test_raw_api_disabled_like_run_h(standin: StandInFactory) -> None:
    srs = await standin(tick=0.2, raw_api=False)
    text = (FIXTURES / "logs" / "run-h-misc.api.txt").read_text()

    def section(title: str) -> Any:
        return json.loads(text.split(f"## {title}\n")[1].split("\n")[0])

    assert await srs.get_json("/api/v1/raw?rpc=reload") == section(
        "raw_api disabled: GET /api/v1/raw?rpc=reload"
    )
    assert await srs.get_json("/api/v1/raw?rpc=reload-fetch") == section(
        "raw_api disabled: rpc=reload-fetch"
    )
    want_raw = section("raw_api disabled: rpc=raw")
    want_raw["http_api"]["listen"] = f"127.0.0.1:{srs.api_port}"
    assert await srs.get_json("/api/v1/raw?rpc=raw") == want_raw
    assert srs.events("reload") == []


def normalize(text: str) -> str:
    """Take out what differs between runs: config paths and line numbers."""
    text = re.sub(r"\S*srs\.conf", "CONF", text)
    return re.sub(r"line[ =]\d+", "line N", text)


def recorded_reload_failures() -> list[str]:
    log = (FIXTURES / "logs" / "run-a-main.log").read_text()
    return [
        normalize(line.split("reload failed, ", 1)[1])
        for line in log.splitlines()
        if "reload failed, " in line
    ]


async def test_reload_ok_and_failures_like_srs(standin: StandInFactory) -> None:
    srs = await standin(tick=0.2)
    srs.connect_publisher("live", "s1")
    await srs.wait_clients(1)
    good = srs.conf_path.read_text()

    srs.write_config(good.replace("hls_fragment    2;", "hls_fragment    3;"))
    srs.signal(signal.SIGHUP)
    ok = await srs.wait_event("reload", ok=True)
    fragment = (await srs.get_json("/api/v1/vhosts/"))["vhosts"][0]["hls"]["fragment"]
    assert fragment == 3.0

    srs.write_config(good.replace("hls_window      10;", "hls_window      10"))
    srs.signal(signal.SIGHUP)
    syntax = await srs.wait_event("reload", ok=False)
    srs.write_config(good.replace("daemon ", "foo_unknown_directive on;\ndaemon "))
    srs.signal(signal.SIGHUP)
    unknown = await srs.wait_event("reload", ok=False, count=2)
    assert srs.alive()
    assert len({ok["rid"], syntax["rid"], unknown["rid"]}) == 3
    assert (syntax["err"], syntax["state"]) == (1023, 10)
    assert (unknown["err"], unknown["state"]) == (1023, 20)
    fetch = (await srs.get_json("/api/v1/raw?rpc=reload-fetch"))["data"]
    assert fetch == {"err": 1023, "msg": unknown["msg"], "state": 20, "rid": unknown["rid"]}
    assert unknown["msg"] == (
        "code=1023(ConfigInvalid) : check config : check normal : "
        "illegal directive foo_unknown_directive"
    )
    # the WARN lines, as SRS logged them for the same two mistakes
    ours = [
        normalize(line.split("reload failed, ", 1)[1])
        for line in srs.output().splitlines()
        if "reload failed, " in line
    ]
    assert ours == recorded_reload_failures()
    # still running on the last good config
    fragment = (await srs.get_json("/api/v1/vhosts/"))["vhosts"][0]["hls"]["fragment"]
    assert fragment == 3.0


async def test_config_test_mode_prints_what_srs_prints(standin: StandInFactory) -> None:
    srs = await standin(tick=0.2)
    good = srs.conf_path.read_text()
    cases = {
        "srs-t-syntax-error.log": good.replace("hls_window      10;", "hls_window      10"),
        "srs-t-unknown-directive.log": good.replace(
            "daemon ", "foo_unknown_directive on;\ndaemon "
        ),
    }
    for log_name, text in cases.items():
        path = srs.workdir / log_name.removesuffix(".log") / "srs.conf"
        path.parent.mkdir()
        path.write_text(text)
        proc = await asyncio.create_subprocess_exec(
            *srs.command()[:2],
            "-t",
            "-c",
            str(path),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await proc.communicate()
        want = (FIXTURES / "logs" / log_name).read_text().splitlines()
        assert f"srs -t rc={proc.returncode}" == want[-1]
        got = [normalize(line.split("] ", 1)[1]) for line in out.decode().splitlines()]
        assert got == [normalize(line.split("] ", 1)[1]) for line in want[:-1]]


# --- clients: kick, HTTP-FLV, HLS sessions --------------------------------------------------


async def test_delete_client_disconnects_it_for_real(standin: StandInFactory) -> None:
    srs = await standin(tick=0.2)
    srs.connect_publisher("live", "s1")
    player = srs.connect_player("live", "s1")
    await srs.wait_clients(2)
    clients = (await srs.get_json("/api/v1/clients/"))["clients"]
    target = next(c for c in clients if c["type"] == "rtmp-play")

    def delete() -> Any:
        req = urllib.request.Request(
            f"{srs.api_url}/api/v1/clients/{target['id']}", method="DELETE"
        )
        with urllib.request.urlopen(req, timeout=5) as r:
            return json.loads(r.read())

    reply = await asyncio.to_thread(delete)
    assert reply["code"] == 0 and reply["pid"] == str(srs.pid)
    player.settimeout(5)
    assert await asyncio.to_thread(player.recv, 100) == b""  # closed by the server
    await srs.wait_clients(1)


async def test_http_flv_player_is_a_flv_play_client(standin: StandInFactory) -> None:
    srs = await standin(tick=0.2)
    publisher = srs.connect_publisher("live", "s1")
    await srs.wait_clients(1)
    flv = srs.connect_flv_player("live", "s1")
    await srs.wait_clients(2)
    publisher.sendall(b"media-bytes")
    flv.settimeout(5)
    head = b""
    while b"media-bytes" not in head:
        head += await asyncio.to_thread(flv.recv, 4096)
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and b"Content-Type: video/x-flv" in head
    assert b"FLV\x01" in head
    clients = (await srs.get_json("/api/v1/clients/"))["clients"]
    viewer = next(c for c in clients if c["type"] == "flv-play")
    assert viewer["name"] == "s1.flv" and viewer["url"] == "/live/s1"
    stream = (await srs.get_json("/api/v1/streams/"))["streams"][0]
    assert stream["clients"] == 2
    srs.close(publisher)  # unpublish ends HTTP-FLV viewers (http_unmount)
    while await asyncio.to_thread(flv.recv, 4096):
        pass
    await srs.wait_clients(0)
    assert (await srs.get_json("/api/v1/streams/"))["streams"] == []  # gone with no clients


async def test_hls_files_and_hls_play_sessions(standin: StandInFactory) -> None:
    srs = await standin(tick=0.2, hls_fragment=1, hls_window=3, dvr=True)
    publisher = srs.connect_publisher("live", "s1")
    await srs.wait_clients(1)
    live = srs.html_dir / "live"
    deadline = time.monotonic() + 10
    while not (live / "s1-2.ts").exists() and time.monotonic() < deadline:
        publisher.sendall(b"x" * 1000)
        await asyncio.sleep(0.1)
    # SRS renames the segment to .ts, rewrites the playlist, then opens the next .ts.tmp
    # (run-a-live-dir-inotify.log): a listing can fall between the two, so look again
    # until the next one shows. There is never more than one.
    names = sorted(os.listdir(live))
    while not any(n.endswith(".ts.tmp") for n in names) and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
        names = sorted(os.listdir(live))
    assert "s1.m3u8" in names and (live / "s1-2.ts").exists()
    assert sum(n.endswith(".ts.tmp") for n in names) == 1
    assert any(re.fullmatch(r"s1\.\d{13}\.flv\.tmp", n) for n in names)
    playlist = (live / "s1.m3u8").read_text().splitlines()
    assert playlist[:2] == ["#EXTM3U", "#EXT-X-VERSION:3"]
    assert playlist[2].startswith("#EXT-X-MEDIA-SEQUENCE:")
    assert re.fullmatch(r"#EXT-X-TARGETDURATION:\d+", playlist[3])
    assert any(re.fullmatch(r"#EXTINF:\d+\.\d{3}, no desc", line) for line in playlist)
    assert any(re.fullmatch(r"s1-\d+\.ts", line) for line in playlist)

    # an HLS viewer: a master playlist with hls_ctx, then an hls-play client
    master = await srs.get("/live/s1.m3u8", srs.http_url)
    lines = master.splitlines()
    assert lines[:2] == ["#EXTM3U", "#EXT-X-STREAM-INF:BANDWIDTH=1,AVERAGE-BANDWIDTH=1"]
    ctx = re.fullmatch(r"/live/s1\.m3u8\?hls_ctx=([0-9a-z]{8})", lines[2])
    assert ctx
    child = await srs.get(lines[2], srs.http_url)
    want_child = (API / "hls_child_m3u8_via_http.txt").read_text()
    assert re.search(r"\.ts\?hls_ctx=[0-9a-z]{8}$", want_child, re.M)
    assert re.search(rf"^s1-\d+\.ts\?hls_ctx={ctx.group(1)}$", child, re.M)
    clients = (await srs.get_json("/api/v1/clients/"))["clients"]
    hls = next(c for c in clients if c["type"] == "hls-play")
    want_hls = next(
        c
        for c in recorded("api_clients_snapshot2_with_hls_play")[0]["clients"]
        if c["type"] == "hls-play"
    )
    assert hls["id"] == ctx.group(1) and hls["name"] == want_hls["name"] == "s1.m3u8"
    assert hls["tcUrl"] == want_hls["tcUrl"] == "http://127.0.0.1/live"
    assert key_paths(hls) == key_paths(want_hls)

    # unpublish: segment reaped, DVR finalized, files stay (the 6.0.155 hls_dispose bug)
    srs.close(publisher)
    await srs.wait_event("unpublish")
    names = sorted(os.listdir(live))
    assert not any(n.endswith(".ts.tmp") for n in names)
    assert any(re.fullmatch(r"s1\.\d{13}\.flv", n) for n in names)
    assert "s1.m3u8" in names


async def test_api_version_4_and_5_trim_fields(standin: StandInFactory) -> None:
    srs4 = await standin(tick=0.2, api_version=4)
    srs4.connect_publisher("live", "s1")
    await srs4.wait_clients(1)
    stream = (await srs4.get_json("/api/v1/streams/"))["streams"][0]
    client = (await srs4.get_json("/api/v1/clients/"))["clients"][0]
    assert "tcUrl" not in stream and "url" not in stream
    assert {"name", "send_bytes", "recv_bytes"}.isdisjoint(client)
    top = await srs4.get_json("/api/v1/versions")
    assert "service" not in top and "pid" not in top
    assert await srs4.get_json("/api/v1/raw?rpc=reload-fetch") == {"code": 1060}
    srs5 = await standin(tick=0.2, api_version=5)
    srs5.connect_publisher("live", "s1")
    await srs5.wait_clients(1)
    stream5 = (await srs5.get_json("/api/v1/streams/"))["streams"][0]
    assert key_paths(stream5) == key_paths(recorded("api_streams")[0]["streams"][0])


async def test_process_looks_like_srs_to_a_process_finder(standin: StandInFactory) -> None:
    """The agents find SRS by `(^|/)srs(\\s|$)` on the command line; `comm` is srs too."""
    srs = await standin(tick=0.2)
    cmdline = Path(f"/proc/{srs.pid}/cmdline").read_bytes().split(b"\0")
    assert re.search(r"(^|/)srs(\s|$)", b" ".join(cmdline).decode())
    assert Path(f"/proc/{srs.pid}/comm").read_text().strip() == "srs"
    assert int(srs.pid_file.read_text()) == srs.pid
