"""`srs-agent drain` as a real process against the SRS stand-in as a real process, with
real TCP players, real signals, and the SRS container's preStop loop as a real shell.

The stand-in runs with --tick 0.1 and short grace waits, except in the one faithful
test, which keeps SRS's 1 s tick and the capture config's 700/800 ms waits.
"""

from __future__ import annotations

import asyncio
import fcntl
import itertools
import json
import os
import re
import signal
import socket
import struct
import termios
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from agents.drain import release_after_bad_settings, run_drain
from agents.drain_plan import EXIT_RESERVE, DrainState
from agents.settings import DrainSettings
from tests.agentproc import AGENT
from tests.exitclock import exit_clock
from tests.standin.harness import StandIn

pytestmark = pytest.mark.integration

SRS_HOOK = "until [ -e {done} ]; do sleep 0.2; done"  # the SRS container's preStop

StandInFactory = Callable[..., Awaitable[StandIn]]


@pytest.fixture
async def standin(tmp_path: Path) -> AsyncIterator[StandInFactory]:
    started: list[StandIn] = []

    async def start(**options: Any) -> StandIn:
        options = {"tick": 0.1, "grace_start_wait": 100, "grace_final_wait": 100,
                   "hls": False, **options}
        srs = StandIn(tmp_path / f"srs{len(started)}", **options)
        started.append(srs)
        await srs.start()
        return srs

    yield start
    for srs in started:
        await srs.stop()


class Drain:
    """One `srs-agent drain` process."""

    def __init__(self, proc: asyncio.subprocess.Process, done_file: Path) -> None:
        self.proc = proc
        self.done_file = done_file
        self.exited = exit_clock(proc.pid)
        self.stderr = ""

    @property
    def state_file(self) -> Path:
        return self.done_file.parent / "drain.json"

    async def wait(self, timeout: float = 30) -> int:
        _, err = await asyncio.wait_for(self.proc.communicate(), timeout)
        self.stderr = err.decode()
        return int(self.proc.returncode or 0)

    def logs(self) -> list[dict[str, Any]]:
        return [json.loads(x) for x in self.stderr.splitlines() if x.startswith("{")]

    def state(self) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads(self.state_file.read_text())
        return doc


def pattern_for(srs: StandIn) -> str:
    return r"/srs -c " + re.escape(str(srs.conf_path)) + r"(\s|$)"


async def start_drain(srs: StandIn, run_dir: Path, *args: str) -> Drain:
    done = run_dir / "drained"
    proc = await asyncio.create_subprocess_exec(
        AGENT, "drain", "--srs-process", pattern_for(srs),
        "--config-dir", str(srs.workdir), "--config-file", "srs.conf",
        "--srs-api", srs.api_url, "--done-file", str(done), "--progress-interval", "0.5",
        *args,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    return Drain(proc, done)


async def test_players_leave_and_drain_returns_as_srs_exits(
    standin: StandInFactory, tmp_path: Path
) -> None:
    srs = await standin()
    srs_exit = exit_clock(srs.pid)
    publisher = srs.connect_publisher("live", "s1")
    players = [srs.connect_player("live", "s1"), srs.connect_flv_player("live", "s1")]
    await srs.wait_clients(3)
    run = tmp_path / "run"
    hook = await asyncio.create_subprocess_exec(
        "/bin/sh", "-c", SRS_HOOK.format(done=run / "drained"))
    try:
        drain = await start_drain(srs, run, "--grace-period", "30")
        quit_event = await srs.wait_event("quit_requested")
        assert quit_event["mode"] == "graceful" and quit_event["signo"] == signal.SIGQUIT
        await asyncio.sleep(2.0)  # the viewers and the publisher leave 2 s into the drain
        assert drain.proc.returncode is None and hook.returncode is None
        for sock in [*players, publisher]:
            srs.close(sock)

        assert await drain.wait() == 0, drain.stderr
        assert await srs.wait_exit(5) == 0
        await asyncio.wait_for(hook.wait(), 5)  # SRS's preStop let go after the drain
    finally:
        if hook.returncode is None:
            hook.kill()
            await hook.wait()
    # the drain noticed the exit at once (the bench measures the 200 ms goal)
    assert await drain.exited - await srs_exit < 1.0
    assert drain.done_file.read_text() == "drained\n"
    state = drain.state()
    assert state["outcome"] == "drained" and state["phase"] == "done"
    assert state["connections_before_quit"] == 3
    assert state["connections"] == 0 and state["listening"] is False  # SRS holds nothing
    assert state["outcomes"] == {"drained": 1}
    assert 28 < state["grace_ends_at"] - state["started_at"] <= 30  # from the process start
    progress = [x for x in drain.logs() if x["msg"].startswith("draining:")]
    assert progress, drain.stderr
    assert progress[0]["connections"] == 3 and progress[0]["listening"] is False
    assert "seconds_to_deadline" in progress[0]
    assert not srs.events("signal_ignored")
    assert [e["name"] for e in srs.events("signal")] == ["SIGQUIT"]


def send_queue(local_port: int, remote_port: int) -> int:
    """Bytes the kernel holds unsent or unacknowledged on one IPv4 socket (tx_queue)."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if (int(fields[1].split(":")[1], 16), int(fields[2].split(":")[1], 16)) == (
                local_port, remote_port):
            return int(fields[4].split(":")[0], 16)
    return 0


def unread(sock: socket.socket) -> int:
    return int(struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0" * 4))[0])


async def test_a_half_closed_player_srs_still_holds_counts_as_left(
    standin: StandInFactory, tmp_path: Path
) -> None:
    """A player that stopped reading and then closed its side: SRS, blocked writing to it,
    holds the socket in CLOSE_WAIT and its graceful quit waits for it, so the drain must
    count it as a connection left."""
    srs = await standin()
    publisher = srs.connect_publisher("live", "s1")
    await srs.wait_clients(1)
    player = socket.socket()
    player.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    player.connect(("127.0.0.1", srs.http_port))
    player.sendall(b"GET /live/s1.flv HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    await srs.wait_clients(2)
    # far more than the player's buffers hold: SRS's writes to it block
    await asyncio.to_thread(publisher.sendall, bytes(8 << 20))
    player_port = player.getsockname()[1]
    for _ in range(500):
        if unread(player) and send_queue(srs.http_port, player_port):
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.3)
    player.shutdown(socket.SHUT_WR)  # the client has gone; SRS has not noticed

    drain = await start_drain(srs, tmp_path / "run", "--grace-period", "30")
    try:
        await srs.wait_event("quit_requested")
        srs.close(publisher)
        # SRS waits for the player alone now
        waiting = await srs.wait_event("drain_wait", conns=1)
        for _ in range(500):
            state = drain.state() if drain.state_file.exists() else {}
            if state.get("updated_at", 0) > waiting["wall"] + 0.1:
                break
            await asyncio.sleep(0.02)
        assert state["phase"] == "draining"
        assert state["connections"] == 1
    finally:
        srs.close(player)  # unread data: a reset, which ends SRS's write
    assert await drain.wait() == 0, drain.stderr
    progress = [x for x in drain.logs() if x["msg"].startswith("draining:")]
    assert any(x["by_port"][str(srs.http_port)] == 1 for x in progress), drain.stderr


async def test_faithful_stuck_player_hits_the_deadline(
    standin: StandInFactory, tmp_path: Path
) -> None:
    """SRS's own 1 s tick and the capture config's 700/800 ms waits."""
    srs = await standin(tick=1.0, grace_start_wait=700, grace_final_wait=800)
    srs.connect_player("live", "stuck")  # never leaves
    await srs.wait_clients(1)
    grace = 7.0
    started = time.monotonic()
    drain = await start_drain(srs, tmp_path / "run", "--grace-period", f"{grace:g}",
                              "--deadline-margin", "3")
    assert await drain.wait() == 1, drain.stderr
    elapsed = time.monotonic() - started
    assert [e["name"] for e in srs.events("signal")] == ["SIGQUIT", "SIGINT"]
    assert await srs.wait_exit(5) == 0  # SIGINT: SRS stopped waiting and exited cleanly
    state = drain.state()
    assert state["outcome"] == "deadline"
    assert state["connections"] == 1
    # inside the grace period by the drain's own clock (from its process start); the
    # wall clock here adds only the exec
    assert state["duration_seconds"] <= grace - EXIT_RESERVE + 0.1
    assert elapsed < grace + 1.0
    assert drain.done_file.read_text() == "deadline\n"
    sigint = [x for x in drain.logs() if "sending SIGINT" in x["msg"]]
    assert sigint and sigint[0]["connections"] == 1
    assert any("exited" in x["msg"] and "after SIGINT" in x["msg"] for x in drain.logs())


async def test_migration_kicks_players_at_the_rate_and_never_a_publisher(
    standin: StandInFactory, tmp_path: Path
) -> None:
    srs = await standin()
    publishers = [srs.connect_publisher("live", "a"), srs.connect_publisher("live", "b")]
    for n in range(6):
        srs.connect_player("live", "a" if n % 2 else "b")
    await srs.wait_clients(8)
    rate = 8.0
    drain = await start_drain(srs, tmp_path / "run", "--grace-period", "30",
                              "--migrate-rate", f"{rate:g}")
    await srs.wait_event("quit_requested", timeout=15)
    for sock in publishers:  # the publishers stay until the quit, then leave
        srs.close(sock)
    assert await drain.wait() == 0, drain.stderr

    kicks = srs.events("client_kicked")
    assert len(kicks) == 6
    assert all("publish" not in k["type"] for k in kicks)
    quit_at = srs.events("quit_requested")[0]["mono"]
    assert all(k["mono"] < quit_at for k in kicks)
    gaps = [b["mono"] - a["mono"] for a, b in itertools.pairwise(kicks)]
    # paced on the drain's side at >= 1/rate; the stand-in sees them through the network
    assert min(gaps) > 0.5 / rate
    assert kicks[-1]["mono"] - kicks[0]["mono"] >= 5 * 0.9 / rate
    state = drain.state()
    assert state["kicked"] == 6 and state["kicked_total"] == 6
    # the two publishers, and at most the last kicked player if SRS is still closing it
    assert 2 <= state["connections_before_quit"] <= 3


async def test_srs_absent_or_already_gone_exits_0_at_once(
    standin: StandInFactory, tmp_path: Path
) -> None:
    srs = await standin()
    srs.signal(signal.SIGKILL)
    await srs.wait_exit(5)
    started = time.monotonic()
    drain = await start_drain(srs, tmp_path / "run", "--grace-period", "30")
    assert await drain.wait() == 0, drain.stderr
    assert time.monotonic() - started < 10  # not the 25 s deadline
    assert drain.done_file.read_text() == "srs_not_found\n"
    error = [x for x in drain.logs() if x["level"] == "error"]
    assert error and "no SRS process" in error[0]["msg"]
    assert "exiting 0 so the pod can stop" in error[0]["msg"]
    assert drain.state()["outcome"] == "srs_not_found"


async def test_srs_exiting_during_pre_stop_delay_ends_the_drain(
    standin: StandInFactory, tmp_path: Path
) -> None:
    srs = await standin(force_grace_quit=False)
    drain = await start_drain(srs, tmp_path / "run", "--grace-period", "60",
                              "--pre-stop-delay", "30")
    for _ in range(500):
        if drain.state_file.exists() and drain.state()["phase"] == "pre-stop-delay":
            break
        await asyncio.sleep(0.02)
    srs_exit = exit_clock(srs.pid)
    srs.signal(signal.SIGTERM)  # force_grace_quit off: a fast quit, not ours
    assert await drain.wait() == 0, drain.stderr
    assert await drain.exited - await srs_exit < 1.0  # not the 30 s delay
    assert drain.state()["outcome"] == "srs_gone"
    assert [e["name"] for e in srs.events("signal")] == ["SIGTERM"]  # never signalled


async def test_force_grace_quit_off_and_sigterm_to_the_drain(
    standin: StandInFactory, tmp_path: Path
) -> None:
    """With force_grace_quit off SIGTERM would be a fast quit, so the drain uses SIGQUIT;
    a SIGTERM reaching the drain itself is logged and the bounded wait goes on."""
    srs = await standin(force_grace_quit=False)
    player = srs.connect_player("live", "s1")
    await srs.wait_clients(1)
    drain = await start_drain(srs, tmp_path / "run", "--grace-period", "30")
    await srs.wait_event("quit_requested")
    await asyncio.sleep(0.3)
    drain.proc.send_signal(signal.SIGTERM)
    await asyncio.sleep(1.0)
    assert drain.proc.returncode is None  # still waiting for the player
    srs.close(player)
    assert await drain.wait() == 0, drain.stderr
    assert srs.events("quit_requested")[0]["mode"] == "graceful"
    assert [e["name"] for e in srs.events("signal")] == ["SIGQUIT"]
    assert any("asked to stop during the drain" in x["msg"] for x in drain.logs())
    assert drain.state()["outcome"] == "drained"


async def test_run_drain_in_process_reports_on_its_registry(
    standin: StandInFactory, tmp_path: Path
) -> None:
    """The form reload's restart uses: same process, the caller's registry and stop."""
    srs = await standin()
    player = srs.connect_player("live", "s1")
    await srs.wait_clients(1)
    settings = DrainSettings(
        srs_process=pattern_for(srs), config_dir=str(srs.workdir), grace_period=30.0,
        progress_interval=0.2,
    )
    registry = CollectorRegistry()
    stop = asyncio.Event()
    stop.set()  # already asked to stop: the drain still does its whole job
    task = asyncio.ensure_future(run_drain(settings, stop, registry, state_file=""))
    await srs.wait_event("quit_requested")
    await asyncio.sleep(0.5)
    during = generate_latest(registry).decode()
    assert "srs_agent_drain_connections 1.0" in during
    assert "srs_agent_drain_in_progress 1.0" in during
    srs.close(player)
    assert await asyncio.wait_for(task, 10) == 0
    assert generate_latest(registry) == b""  # unregistered once done


async def test_settings_that_cannot_work_exit_2_and_still_release_srs(tmp_path: Path) -> None:
    done = tmp_path / "run" / "drained"
    proc = await asyncio.create_subprocess_exec(
        AGENT, "drain", "--grace-period", "10", "--deadline-margin", "5",
        "--pre-stop-delay", "5", "--done-file", str(done),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2
    assert "--pre-stop-delay 5s" in err.decode()
    assert done.read_text() == "failed\n"  # SRS's preStop is not left waiting


@pytest.mark.parametrize(
    ("args", "env", "named"),
    [
        (["--grace-period", "abc", "--done-file", "{done}"], {}, "--grace-period: invalid"),
        ([], {"SRS_AGENT_DEADLINE_MARGIN": "5x", "SRS_AGENT_DONE_FILE": "{done}"},
         "SRS_AGENT_DEADLINE_MARGIN: invalid"),
    ],
)
async def test_a_setting_that_does_not_parse_still_releases_srs(
    tmp_path: Path, args: list[str], env: dict[str, str], named: str
) -> None:
    """The SRS container's preStop waits for the done-file whatever went wrong."""
    done = tmp_path / "run" / "drained"
    done.parent.mkdir()
    (done.parent / "drain.json").write_text(DrainState(
        phase="done", outcome="drained", outcomes={"drained": 2}, kicked_total=5).to_json())
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SRS_AGENT_")}
    environ |= {k: v.format(done=done) for k, v in env.items()}
    proc = await asyncio.create_subprocess_exec(
        AGENT, "drain", *[a.format(done=done) for a in args], env=environ,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2
    assert named in err.decode()
    assert done.read_text() == "failed\n"
    state = json.loads((done.parent / "drain.json").read_text())
    assert state["outcome"] == "failed" and state["phase"] == "done"
    assert state["outcomes"] == {"drained": 2, "failed": 1}
    assert state["kicked_total"] == 5


def test_bad_settings_without_a_done_file_write_nothing(tmp_path: Path) -> None:
    assert release_after_bad_settings({"done_file": None}, {}) is None
    # an empty flag turns the done-file off, whatever the env says
    env = {"SRS_AGENT_DONE_FILE": str(tmp_path / "drained")}
    assert release_after_bad_settings({"done_file": ""}, env) is None
    assert not (tmp_path / "drained").exists()


def test_bad_settings_and_an_unwritable_done_file_say_so(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    problem = release_after_bad_settings({"done_file": str(blocker / "drained")}, {})
    assert problem is not None
    assert f"cannot write --done-file {blocker / 'drained'}" in problem
