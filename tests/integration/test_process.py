"""Real processes and real signals: find one by its argv, signal it, wait for its exit
(also as a non-child, as SRS is to the agent), with pidfd and with the poll fallback."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import pytest

from agents.srs import process as process_module
from agents.srs.process import (
    ProcEntry,
    SrsProcessAmbiguous,
    SrsProcessGone,
    find_srs,
    pid_alive,
    scan_proc,
    signal_srs,
    wait_exit,
)

pytestmark = pytest.mark.integration

# Prints "ready" once its SIGHUP handler is in place and "HUP" on each SIGHUP;
# SIGTERM and SIGQUIT keep their default action (exit).
CHILD = """
import signal, sys, time
signal.signal(signal.SIGHUP, lambda *_: print("HUP", flush=True))
print("ready", flush=True)
while True:
    time.sleep(60)
"""

# Starts CHILD in its own session, prints its pid and exits: the grandchild is then
# nobody's child here, like SRS next to the agent in a pod.
LAUNCHER = """
import subprocess, sys
child = subprocess.Popen([sys.executable, "-c", sys.argv[1], sys.argv[2]],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
print(child.pid, flush=True)
"""


@pytest.fixture
def marker() -> str:
    return f"srs-test-{uuid.uuid4().hex}"


@pytest.fixture
def spawn() -> Iterator[list[subprocess.Popen[str]]]:
    children: list[subprocess.Popen[str]] = []
    yield children
    for child in children:
        if child.poll() is None:
            child.kill()
        child.wait()
        if child.stdout is not None:
            child.stdout.close()


def start(children: list[subprocess.Popen[str]], marker: str) -> subprocess.Popen[str]:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, marker], stdout=subprocess.PIPE, text=True
    )
    children.append(child)
    assert child.stdout is not None
    assert child.stdout.readline() == "ready\n"
    return child


def test_scan_and_find_a_real_process(spawn: list[subprocess.Popen[str]], marker: str) -> None:
    child = start(spawn, marker)
    entries = {e.pid: e for e in scan_proc()}
    assert entries[child.pid] == ProcEntry(child.pid, (sys.executable, "-c", CHILD, marker))
    assert find_srs(marker) == child.pid
    assert os.getpid() in entries  # scanned like any process; find_srs excludes it


def test_two_matches_are_ambiguous(spawn: list[subprocess.Popen[str]], marker: str) -> None:
    first, second = start(spawn, marker), start(spawn, marker)
    with pytest.raises(SrsProcessAmbiguous) as info:
        find_srs(marker)
    assert f"pid {first.pid}:" in str(info.value)
    assert f"pid {second.pid}:" in str(info.value)


def test_signal_reaches_the_process(spawn: list[subprocess.Popen[str]], marker: str) -> None:
    child = start(spawn, marker)
    signal_srs(child.pid, signal.SIGHUP)
    assert child.stdout is not None
    assert child.stdout.readline() == "HUP\n"
    assert pid_alive(child.pid)


async def test_wait_exit_with_pidfd(spawn: list[subprocess.Popen[str]], marker: str) -> None:
    child = start(spawn, marker)
    assert await wait_exit(child.pid, timeout=0.2) is False
    assert child.poll() is None
    signal_srs(child.pid, signal.SIGTERM)
    assert await wait_exit(child.pid, timeout=30) is True
    assert not pid_alive(child.pid)  # a zombie until reaped: counted as exited
    assert child.wait() == -signal.SIGTERM


async def test_wait_exit_of_a_non_child(marker: str) -> None:
    launcher = subprocess.run(
        [sys.executable, "-c", LAUNCHER, CHILD, marker],
        capture_output=True, text=True, check=True, timeout=30,
    )
    pid = int(launcher.stdout)
    try:
        assert find_srs(marker) == pid
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # really not ours
        assert await wait_exit(pid, timeout=0.2) is False
        signal_srs(pid, signal.SIGQUIT)
        assert await wait_exit(pid, timeout=30) is True
        assert not pid_alive(pid)
    finally:
        if pid_alive(pid):
            os.kill(pid, signal.SIGKILL)


async def test_already_gone(spawn: list[subprocess.Popen[str]], marker: str) -> None:
    child = start(spawn, marker)
    child.kill()
    child.wait()  # reaped: the pid no longer exists
    assert not pid_alive(child.pid)
    began = time.monotonic()
    assert await wait_exit(child.pid, timeout=30) is True
    assert await wait_exit(child.pid, timeout=30, use_pidfd=False) is True
    assert time.monotonic() - began < 30
    with pytest.raises(SrsProcessGone, match=f"SRS process {child.pid} is gone"):
        signal_srs(child.pid, signal.SIGHUP)


async def test_poll_fallback(spawn: list[subprocess.Popen[str]], marker: str) -> None:
    child = start(spawn, marker)
    assert await wait_exit(child.pid, timeout=0.2, use_pidfd=False) is False
    signal_srs(child.pid, signal.SIGTERM)
    assert await wait_exit(child.pid, timeout=30, use_pidfd=False) is True


async def test_fallback_is_logged_once(
    spawn: list[subprocess.Popen[str]],
    marker: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Without os.pidfd_open (old kernels), poll, and say so once per process."""
    monkeypatch.delattr(os, "pidfd_open")
    monkeypatch.setattr(process_module._pidfd_fallback, "fired", False)
    child = start(spawn, marker)
    with caplog.at_level(logging.WARNING, logger="srs_agent.srs.process"):
        assert await wait_exit(child.pid, timeout=0.1) is False
        signal_srs(child.pid, signal.SIGTERM)
        assert await wait_exit(child.pid, timeout=30) is True
    warnings = [r for r in caplog.records if "polling every 50 ms" in r.getMessage()]
    assert len(warnings) == 1
