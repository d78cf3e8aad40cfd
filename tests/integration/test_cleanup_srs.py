"""--srs-api: files of streams publishing now are never touched, against the SRS stand-in."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import StandInFactory
from tests.standin.harness import free_port

pytestmark = pytest.mark.integration

AGENT = str(Path(sys.executable).with_name("srs-agent"))
DAY = 86400.0


async def run_cleanup(*args: str) -> tuple[int, list[dict[str, Any]]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SRS_AGENT_")}
    proc = await asyncio.create_subprocess_exec(
        AGENT, "cleanup", "--once", "--log-level", "debug", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(proc.communicate(), timeout=30)
    lines = [json.loads(line) for line in err.decode().splitlines()]
    assert proc.returncode is not None
    return proc.returncode, lines


def old_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"G" * 188)
    when = time.time() - 9 * DAY
    os.utime(path, (when, when))


async def test_files_of_publishing_streams_are_kept(standin: StandInFactory) -> None:
    # 25 synthetic publishers (live/fake00000..fake00024) page past SRS's 10-item
    # default, and one real publisher (live/s1) writes HLS segments as we clean.
    srs = await standin(tick=0.2, fake_streams=25, hls_fragment=0.5)
    srs.connect_publisher("live", "s1")
    await srs.wait_event("publish")
    html = srs.html_dir
    deadline = time.monotonic() + 10
    while not list((html / "live").glob("s1-*.ts")):
        assert time.monotonic() < deadline, "the stand-in wrote no segment"
        await asyncio.sleep(0.05)
    live_old = [html / "live" / "s1.1795718081416.flv.tmp", html / "live" / "fake00003-7.ts",
                html / "live" / "fake00024.m3u8"]
    gone = [html / "live" / "ended-1.ts", html / "live" / "ended.m3u8",
            html / "other" / "fake00003-7.ts", html / "live" / "s2-1.ts"]
    for path in live_old + gone:
        old_file(path)

    # --older-than 0: age protects nothing, only the stream list does.
    rc, lines = await run_cleanup("--roots", str(html), "--srs-api", srs.api_url,
                                  "--older-than", "0")
    report = next(line["report"] for line in lines if "report" in line)
    assert rc == 0, report
    assert report["live_streams"] == 26
    deleted = {Path(line["path"]) for line in lines if line["msg"].startswith("deleted ")}
    assert deleted >= set(gone)
    assert not [p for p in deleted if p.parent.name == "live"
                and p.name.startswith(("s1", "fake"))], "a live stream's file was deleted"
    for path in live_old:
        assert path.exists()
    assert list((html / "live").glob("s1*.ts"))
    assert report["kept"]["live"] >= len(live_old)


async def test_an_unreachable_srs_api_means_no_deletion(tmp_path: Path) -> None:
    old_file(tmp_path / "live" / "s1-1.ts")
    rc, lines = await run_cleanup("--roots", str(tmp_path), "--srs-api",
                                  f"http://127.0.0.1:{free_port()}", "--srs-timeout", "1s")
    report = next(line["report"] for line in lines if "report" in line)
    assert rc == 1
    assert report["errors"] == {"srs_api_unreachable": 1}
    assert report["files_deleted"] == 0
    assert (tmp_path / "live" / "s1-1.ts").exists()


async def test_a_root_set_to_the_app_directory_keeps_live_files(
        standin: StandInFactory) -> None:
    # The app ("live") shows only in the root's own path; nothing in the stream's
    # window may go, even with --older-than 0.
    srs = await standin(tick=0.2, hls_fragment=0.5)
    srs.connect_publisher("live", "s1")
    await srs.wait_event("publish")
    app_dir = srs.html_dir / "live"
    deadline = time.monotonic() + 10
    while not list(app_dir.glob("s1-*.ts")):
        assert time.monotonic() < deadline, "the stand-in wrote no segment"
        await asyncio.sleep(0.05)
    old_file(app_dir / "ended-1.ts")

    rc, lines = await run_cleanup("--roots", str(app_dir), "--srs-api", srs.api_url,
                                  "--older-than", "0")
    report = next(line["report"] for line in lines if "report" in line)
    assert rc == 0, report
    deleted = {Path(line["path"]).name for line in lines if line["msg"].startswith("deleted ")}
    assert "ended-1.ts" in deleted
    assert not [name for name in deleted if name.startswith("s1")], deleted
    assert report["kept"]["live"] >= 2
