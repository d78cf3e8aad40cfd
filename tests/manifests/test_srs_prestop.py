"""The SRS container's preStop, as rendered, run by a real /bin/sh (dash, as in the Ubuntu-based
SRS images): it returns when the drain's done file appears, and on its own at its bound when the
drain never runs. Only the bound and the file's path are changed, to fit a test."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

import pytest

from tests.manifests.kustomize import Obj
from tests.manifests.objects import SRS_WAIT, pods, prestop

pytestmark = pytest.mark.integration

SHELL = "/bin/sh"


def srs_wait_script(renders: dict[str, list[Obj]], bound: int, done_file: Path) -> str:
    """The rendered preStop of SRS (all renders carry the same one), with `bound` and
    `done_file` put in."""
    scripts = set()
    for pod in pods(renders):
        srs = pod.container("srs")
        if srs is not None and pod.container("srs-agent") is not None:
            scripts.add(prestop(srs)[2])
    found = [m for m in (SRS_WAIT.fullmatch(s) for s in scripts) if m]
    assert found, f"no SRS preStop in the renders matches {SRS_WAIT.pattern}"
    match = found[0]
    script = match.string
    (b0, b1), (f0, f1) = match.span("bound"), match.span("file")
    assert b1 < f0
    return script[:b0] + str(bound) + script[b1:f0] + str(done_file) + script[f1:]


async def run(script: str) -> tuple[int, float]:
    """(exit code, seconds) of `/bin/sh -c SCRIPT`."""
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(SHELL, "-c", script,
                                                stderr=subprocess.PIPE)
    try:
        _, err = await asyncio.wait_for(proc.communicate(), 60)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise AssertionError("the preStop did not return within 60 s") from None
    assert not err, err.decode()
    assert proc.returncode is not None
    return proc.returncode, time.monotonic() - started


async def test_returns_when_the_drain_is_done(renders: dict[str, list[Obj]],
                                              tmp_path: Path) -> None:
    done = tmp_path / "drained"
    script = srs_wait_script(renders, 600, done)
    waiting = asyncio.ensure_future(run(script))
    await asyncio.sleep(0.5)
    assert not waiting.done(), "the preStop returned before the done file existed"
    done.write_text("")
    code, seconds = await waiting
    assert code == 0
    assert seconds < 60  # far below the 600 s bound: the file released it


async def test_returns_at_once_when_the_drain_is_already_done(
        renders: dict[str, list[Obj]], tmp_path: Path) -> None:
    done = tmp_path / "drained"
    done.write_text("")
    code, _ = await run(srs_wait_script(renders, 600, done))
    assert code == 0


async def test_gives_up_at_its_bound_when_no_drain_runs(renders: dict[str, list[Obj]],
                                                        tmp_path: Path) -> None:
    """The bound counts whole seconds of /proc/uptime from the hook's start: it ends after
    more than bound - 1 s and by bound (the early side, never past it)."""
    code, seconds = await run(srs_wait_script(renders, 2, tmp_path / "never"))
    assert code == 0
    assert seconds > 1.0
    assert seconds < 30  # generous: a slow machine still returns long before this
