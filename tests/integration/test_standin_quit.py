"""Quit and reload behaviour of the SRS stand-in against the recorded SRS 6.0.155 runs.

Timing checks use generous margins: they check the order of things (tick, then
grace_start_wait, then listeners closed, then the drain, then grace_final_wait), not
speed. One test runs with SRS's real 1 s tick; the others use a shorter one.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import time
from pathlib import Path

import pytest

from tests.conftest import StandInFactory
from tests.standin.harness import DEFAULT_TEMPLATE, StandIn, port_accepts

pytestmark = pytest.mark.integration

LOGS = Path(__file__).resolve().parent.parent / "fixtures" / "srs-6.0.155" / "logs"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def messages(text: str) -> list[str]:
    """The message part of SRS log lines, colours and per-connection noise left out."""
    out = []
    for line in ANSI.sub("", text).splitlines():
        m = re.match(r"\[[^]]*\]\[(?:INFO|WARN|ERROR)\]\[\d+\]\[[0-9a-z]+\](?:\[\d+\])? (.*)", line)
        if m:
            out.append(m.group(1))
    return out


QUIT_WORDS = re.compile(
    r"^(sig=|force gracefully|cleanup for quit|main cycle terminated|start wait|listeners closed"
    r"|ingesters stopped|wait for \d+ conns|source disposed|final wait|srs gracefully quit"
    r"|srs disposed|srs terminated)"
)


def quit_sequence(text: str) -> list[str]:
    """The quit lines in order; repeats that depend on timing are folded: a run of equal
    `wait for N conns` lines, and later copies of `force gracefully quit` (a 2nd SIGTERM)."""
    seq = [m for m in messages(text) if QUIT_WORDS.match(m)]
    seq = [
        m for i, m in enumerate(seq) if not (m.startswith("force gracefully quit") and m in seq[:i])
    ]
    return [m for i, m in enumerate(seq) if i == 0 or m != seq[i - 1]]


def all_ports(srs: StandIn) -> list[int]:
    return [srs.rtmp_port, srs.api_port, srs.http_port, srs.exporter_port]


async def test_sigquit_without_clients_real_tick(standin: StandInFactory) -> None:
    """Run F: tick (0-1 s) + grace_start_wait 700 + grace_final_wait 800; exit 0."""
    srs = await standin(tick=1.0)
    t0 = time.monotonic()
    srs.signal(signal.SIGQUIT)
    code = await srs.wait_exit(10)
    elapsed = time.monotonic() - t0
    assert code == 0
    assert 1.5 - 0.05 <= elapsed <= 1.0 + 1.5 + 1.0
    closed = srs.events("listeners_closed")[0]["mono"]
    exited = srs.events("exit")[0]["mono"]
    assert 0.7 - 0.05 <= closed - t0 <= 1.0 + 0.7 + 0.5
    assert 0.8 - 0.05 <= exited - closed <= 0.8 + 0.5
    assert not any(port_accepts(p) for p in all_ports(srs))
    recorded = (LOGS / "run-f-sigquit-noclients.log").read_text()
    assert quit_sequence(srs.output()) == quit_sequence(recorded)
    assert srs.pid_file.read_text() == str(srs.pid)  # the pid file stays, as with SRS


async def test_sigterm_force_drain_like_run_d(standin: StandInFactory) -> None:
    """Run D: listeners close after the start wait, the drain has no end while clients stay,
    a 2nd SIGTERM is ignored, the exit follows the last client + final wait."""
    srs = await standin(tick=0.2)
    publisher = srs.connect_publisher("live", "s1")
    player = srs.connect_player("live", "s1")
    await srs.wait_clients(2)
    live = srs.html_dir / "live"
    while not (live / "s1.m3u8").exists():
        publisher.sendall(b"x" * 100)
        await asyncio.sleep(0.1)
    t0 = time.monotonic()
    srs.signal(signal.SIGTERM)
    # during the start wait the API still answers
    assert (await srs.get_json("/api/v1/versions"))["code"] == 0
    closed = await srs.wait_event("listeners_closed", timeout=5)
    assert 0.7 - 0.05 <= closed["mono"] - t0 <= 0.2 + 0.7 + 0.5
    assert not any(port_accepts(p) for p in all_ports(srs))
    srs.signal(signal.SIGTERM)  # a 2nd SIGTERM: logged, no effect
    await asyncio.sleep(2.0)
    assert srs.alive()
    assert len(srs.events("signal")) == 2 and len(srs.events("quit_requested")) == 1
    srs.close(player)
    await srs.wait_event("drain_wait", conns=1)
    assert srs.alive()  # the publisher still holds it
    t_last = time.monotonic()
    srs.close(publisher)
    assert await srs.wait_exit(10) == 0
    assert 0.8 - 0.05 <= time.monotonic() - t_last <= 0.2 + 0.8 + 1.0
    waits = srs.events("drain_wait")
    assert [e["conns"] for e in waits][:3] == [2, 2, 2] and waits[-1]["conns"] == 0
    # the drain polls each tick and logs after 1, 2, 4, 8 ... polls (step = step * 2 % 33)
    gap1, gap2 = waits[1]["mono"] - waits[0]["mono"], waits[2]["mono"] - waits[1]["mono"]
    assert 2 * 0.2 * 0.8 <= gap1 <= 2 * 0.2 + 1.0
    assert 4 * 0.2 * 0.8 <= gap2 <= 4 * 0.2 + 1.0
    recorded = (LOGS / "run-d-sigterm-force.log").read_text()
    assert quit_sequence(srs.output()) == quit_sequence(recorded)
    forced = "force gracefully quit, signo=15"
    assert messages(srs.output()).count(forced) == messages(recorded).count(forced) == 2
    # the stream was still a live source at dispose time: HLS files deleted
    assert not (live / "s1.m3u8").exists()
    assert not list(live.glob("s1-*.ts*"))


async def test_sigint_ends_the_drain_like_run_d2(standin: StandInFactory) -> None:
    srs = await standin(tick=0.2, dvr=True)
    srs.connect_publisher("live", "s1")
    srs.connect_player("live", "s1")
    await srs.wait_clients(2)
    srs.signal(signal.SIGTERM)
    await srs.wait_event("listeners_closed", timeout=5)
    await asyncio.sleep(0.5)
    assert srs.alive()
    t_int = time.monotonic()
    srs.signal(signal.SIGINT)
    assert await srs.wait_exit(10) == 0
    assert time.monotonic() - t_int <= 0.2 + 0.8 + 1.0
    out = messages(srs.output())
    assert "sig=2, user terminate program, fast quit" in out
    assert out.index("source disposed") < out.index("final wait for 800ms")
    recorded = (LOGS / "run-d2-sigterm-force-then-sigint.log").read_text()
    assert quit_sequence(srs.output()) == quit_sequence(recorded)
    # the publisher never left: the DVR file stays .flv.tmp (as in run D2)
    assert list((srs.html_dir / "live").glob("s1.*.flv.tmp"))


async def test_sigterm_without_force_is_a_fast_quit_like_run_e(standin: StandInFactory) -> None:
    srs = await standin(tick=0.2, force_grace_quit=False)
    srs.connect_publisher("live", "s1")
    srs.connect_player("live", "s1")
    await srs.wait_clients(2)
    t0 = time.monotonic()
    srs.signal(signal.SIGTERM)
    assert await srs.wait_exit(5) == 0
    assert time.monotonic() - t0 <= 0.2 + 1.0
    recorded = (LOGS / "run-e-sigterm-noforce.log").read_text()
    assert quit_sequence(srs.output()) == quit_sequence(recorded)
    assert not (srs.html_dir / "live" / "s1.m3u8").exists()  # hls_dispose 20: disposed


async def test_sigquit_waits_without_limit_for_an_idle_connection(
    standin: StandInFactory,
) -> None:
    """Any TCP connection holds the drain (run C waited 642 s), the API's too."""
    srs = await standin(tick=0.2, grace_start_wait=100, grace_final_wait=100)
    idle = srs.connect_raw(srs.api_port)
    srs.signal(signal.SIGQUIT)
    await srs.wait_event("listeners_closed", timeout=5)
    await srs.wait_event("drain_wait", count=3)  # after 1 + 2 + 4 polls
    assert srs.alive()
    assert srs.events("drain_wait")[-1]["conns"] == 1
    srs.close(idle)
    assert await srs.wait_exit(5) == 0


async def test_listen_change_and_sighup_crashes_with_134(standin: StandInFactory) -> None:
    srs = await standin(tick=0.2)
    srs.connect_publisher("live", "s1")
    await srs.wait_clients(1)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        new_port = s.getsockname()[1]
    text = srs.conf_path.read_text()
    srs.write_config(text.replace(f"127.0.0.1:{srs.rtmp_port};", f"127.0.0.1:{new_port};"))
    srs.signal(signal.SIGHUP)
    assert await srs.wait_exit(5) == 134
    assert (
        srs.output()
        .rstrip()
        .endswith(
            "srs: ./src/kernel/srs_kernel_error.cpp:446: static void "
            "SrsCplxError::srs_assert(bool): Assertion `expression' failed."
        )
    )
    assert srs.pid_file.exists()
    # a crash leaves the segment being written as .ts.tmp (run-a-live-dir-after-crash.txt)
    assert list((srs.html_dir / "live").glob("s1-*.ts.tmp"))


async def test_invalid_config_and_sighup_keeps_running(standin: StandInFactory) -> None:
    srs = await standin(tick=0.2)
    good = srs.conf_path.read_text()
    srs.write_config(good.replace("grace_final_wait    800;", "grace_final_wait    800"))
    srs.signal(signal.SIGHUP)
    failed = await srs.wait_event("reload", ok=False)
    assert srs.alive()
    fetch = (await srs.get_json("/api/v1/raw?rpc=reload-fetch"))["data"]
    assert (fetch["err"], fetch["state"], fetch["rid"]) == (1023, 10, failed["rid"])
    assert "unexpected end of line to parse token grace_final_wait" in fetch["msg"]
    srs.write_config(good.replace("hls_fragment    2;", "hls_fragment    4;"))
    srs.signal(signal.SIGHUP)
    ok = await srs.wait_event("reload", ok=True)
    assert ok["rid"] != failed["rid"]
    fetch = (await srs.get_json("/api/v1/raw?rpc=reload-fetch"))["data"]
    assert (fetch["err"], fetch["state"], fetch["msg"]) == (0, 90, "Success")


async def test_signals_are_noticed_on_the_tick(standin: StandInFactory) -> None:
    """SIGHUP is logged at once and acted on at the next main-loop tick, as SRS does."""
    srs = await standin(tick=1.0)
    await asyncio.sleep(0.3)
    srs.signal(signal.SIGHUP)
    got = await srs.wait_event("signal", name="SIGHUP")
    done = await srs.wait_event("reload", ok=True)
    assert 0.0 <= done["mono"] - got["mono"] <= 1.0 + 0.3
    out = messages(srs.output())
    assert out.index("reload config, signo=1") < out.index("starting reload config.")
    srs.signal(signal.SIGUSR1)
    await srs.wait_event("log_reopened")
    assert "reopen log file, signo=10" in messages(srs.output())
    assert srs.alive()


async def test_hls_files_stay_after_unpublish_despite_hls_dispose(
    standin: StandInFactory,
) -> None:
    """SRS 6.0.155 (bug #4273): files stay after unpublish whatever hls_dispose is;
    the source is freed ~3 s later, so a later quit does not dispose them either."""
    srs = await standin(
        tick=0.2, hls_fragment=1, hls_dispose=1, grace_start_wait=100, grace_final_wait=100
    )
    publisher = srs.connect_publisher("live", "s1")
    await srs.wait_clients(1)
    live = srs.html_dir / "live"
    while not (live / "s1.m3u8").exists():
        await asyncio.sleep(0.1)
    srs.close(publisher)
    await srs.wait_event("source_freed", timeout=10)  # >= 3 s: past hls_dispose 1 s
    kept = sorted(os.listdir(live))
    assert "s1.m3u8" in kept and any(n.endswith(".ts") for n in kept)
    srs.signal(signal.SIGQUIT)
    assert await srs.wait_exit(10) == 0
    assert sorted(os.listdir(live)) == kept


async def test_inotify_auto_reload_in_docker_with_a_kubelet_style_swap(
    standin: StandInFactory,
) -> None:
    """As recorded: `SRS_IN_DOCKER=on` turns auto reload on; `..data` swaps reload it."""
    template = DEFAULT_TEMPLATE.replace("inotify_auto_reload off;\n", "")
    srs = await standin(tick=0.2, template=template, env={"SRS_IN_DOCKER": "on"})
    assert "enable auto reload for docker" in messages(srs.output())
    # move srs.conf behind ..data, as a ConfigMap volume has it
    first = srs.workdir / "..2026_01_01_00_00_00.1"
    first.mkdir()
    (first / "srs.conf").write_text(srs.conf_path.read_text())
    (srs.workdir / "..data").symlink_to(first.name)
    (srs.workdir / "srs.conf.link").symlink_to("..data/srs.conf")
    os.replace(srs.workdir / "srs.conf.link", srs.conf_path)  # MOVED_TO srs.conf: a reload
    await srs.wait_event("reload", ok=True)
    # the kubelet's update: a new dir, ..data_tmp -> it, renamed over ..data
    second = srs.workdir / "..2026_01_01_00_01_00.2"
    second.mkdir()
    text = (first / "srs.conf").read_text().replace("hls_fragment    2;", "hls_fragment    4;")
    (second / "srs.conf").write_text(text)
    (srs.workdir / "..data_tmp").symlink_to(second.name)
    os.replace(srs.workdir / "..data_tmp", srs.workdir / "..data")
    await srs.wait_event("reload", ok=True, count=2, timeout=10)
    srs.connect_publisher("live", "s1")
    await srs.wait_clients(1)
    assert (await srs.get_json("/api/v1/vhosts/"))["vhosts"][0]["hls"]["fragment"] == 4.0
    assert any(
        m.startswith("inotify event wd=1, mask=0x80, len=") and m.endswith("name=..data, reload=1")
        for m in messages(srs.output())
    )
