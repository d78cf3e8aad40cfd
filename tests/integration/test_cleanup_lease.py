"""Leader election with a coordination.k8s.io/v1 Lease, against kmock's Kubernetes emulator
served over real HTTP on 127.0.0.1.

kmock keeps objects as plain JSON: it does not check resourceVersion and answers 409
only to a create of an existing object. The tests rely on nothing more; what the real
API server adds (409 on a stale resourceVersion) is checked by the request bodies.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import kmock
import kubernetes
import pytest
from aiohttp import web

from agents.kube.client import Kube
from agents.kube.lease import LeaseLock, parse_lease
from tests.agentproc import AGENT
from tests.kmockapi import kubeconfig

pytestmark = pytest.mark.integration

NS = "media"


@pytest.fixture
async def emulator() -> AsyncIterator[tuple[kmock.KubernetesEmulator, str]]:
    async with kmock.KubernetesEmulator() as k8s, kmock.Server(k8s) as server:
        yield k8s, str(server.url).rstrip("/")


def kube_for(url: str) -> Kube:
    configuration = kubernetes.client.Configuration(host=url)
    return Kube(kubernetes.client.ApiClient(configuration), NS, request_timeout=5)


async def read_lease(kube: Kube, name: str = "srs-cleanup") -> dict[str, Any]:
    doc: dict[str, Any] = await kube.call_json(
        kube.coordination().read_namespaced_lease, name, NS)
    return doc


async def test_acquire_renew_release(emulator: tuple[kmock.KubernetesEmulator, str]) -> None:
    _, url = emulator
    kube = kube_for(url)
    a = LeaseLock(kube, "srs-cleanup", NS, "cleaner-a")
    b = LeaseLock(kube, "srs-cleanup", NS, "cleaner-b")
    assert await a.acquire()
    assert not await b.acquire()
    assert b.holder == "cleaner-a"
    spec = (await read_lease(kube))["spec"]
    assert spec["holderIdentity"] == "cleaner-a"
    assert spec["leaseDurationSeconds"] == 15
    assert spec["leaseTransitions"] == 0
    first_renew = spec["renewTime"]
    assert await a.acquire()  # already ours: a renewal
    assert await a.renew()
    assert (await read_lease(kube))["spec"]["renewTime"] > first_renew
    await a.release()
    spec = (await read_lease(kube))["spec"]
    assert spec["holderIdentity"] == ""
    assert not await a.renew()  # released: no longer ours
    assert await b.acquire()
    spec = (await read_lease(kube))["spec"]
    assert (spec["holderIdentity"], spec["leaseTransitions"]) == ("cleaner-b", 1)
    kube.close()


async def test_an_expired_lease_is_taken_over(
        emulator: tuple[kmock.KubernetesEmulator, str]) -> None:
    _, url = emulator
    kube = kube_for(url)
    a = LeaseLock(kube, "srs-cleanup", NS, "cleaner-a", duration=1)
    b = LeaseLock(kube, "srs-cleanup", NS, "cleaner-b", duration=1)
    assert await a.acquire()
    assert not await b.acquire()
    await asyncio.sleep(1.1)  # a crashed: no renewal for the whole duration
    assert await b.acquire()
    assert not await a.renew()
    assert a.holder == "cleaner-b"
    kube.close()


async def test_two_candidates_creating_at_once_get_one_winner(
        emulator: tuple[kmock.KubernetesEmulator, str]) -> None:
    _, url = emulator
    kube = kube_for(url)
    locks = [LeaseLock(kube, "srs-cleanup", NS, f"cleaner-{i}") for i in range(4)]
    won = await asyncio.gather(*(lock.acquire() for lock in locks))
    assert sum(won) == 1
    winner = locks[won.index(True)].identity
    assert (await read_lease(kube))["spec"]["holderIdentity"] == winner
    assert {lock.holder for lock in locks} == {winner}
    kube.close()


async def test_writes_carry_the_resource_version_read(
        emulator: tuple[kmock.KubernetesEmulator, str]) -> None:
    k8s, url = emulator
    kube = kube_for(url)
    # A lease as a real API server returns it: with a resourceVersion, expired.
    await kube.call_json(kube.coordination().create_namespaced_lease, NS, {
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "srs-cleanup", "namespace": NS, "resourceVersion": "4711"},
        "spec": {"holderIdentity": "old-pod", "leaseDurationSeconds": 15,
                 "renewTime": "2026-01-01T00:00:00.000000Z", "leaseTransitions": 2}})
    assert await LeaseLock(kube, "srs-cleanup", NS, "cleaner-a").acquire()
    patches = [r for r in k8s if r.method == "PATCH"]
    assert patches, "no PATCH was sent"
    assert json.loads(patches[-1].text)["metadata"] == {"resourceVersion": "4711"}
    assert patches[-1].headers["Content-Type"] == "application/merge-patch+json"
    lease = parse_lease(await read_lease(kube))
    assert (lease.holder, lease.transitions) == ("cleaner-a", 3)
    kube.close()


async def test_keep_notices_a_lost_lease(emulator: tuple[kmock.KubernetesEmulator, str]) -> None:
    _, url = emulator
    kube = kube_for(url)
    a = LeaseLock(kube, "srs-cleanup", NS, "cleaner-a", duration=0.6)
    assert await a.acquire()
    lost = asyncio.Event()
    keeper = asyncio.create_task(a.keep(lost))
    await asyncio.sleep(0.5)  # a few renewals
    assert not lost.is_set()
    await kube.call_json(kube.coordination().patch_namespaced_lease, "srs-cleanup", NS,
                         {"spec": {"holderIdentity": "intruder"}},
                         _content_type="application/merge-patch+json")
    await asyncio.wait_for(lost.wait(), timeout=5)
    await keeper
    assert a.holder == "intruder"
    kube.close()


# ---------------------------------------------------------------------------
# Two cleaner processes on one volume
# ---------------------------------------------------------------------------


class SlowSrs:
    """An SRS API whose stream list answers only when the test says so: a cleaner that
    asked it holds the lease and waits there, so another can be started meanwhile."""

    def __init__(self) -> None:
        self.asked = asyncio.Event()
        self.answer = asyncio.Event()
        self.requests = 0

    async def streams(self, request: web.Request) -> web.Response:
        self.requests += 1
        self.asked.set()
        await self.answer.wait()
        return web.json_response({"code": 0, "server": "vid-test", "streams": []})


@pytest.fixture
async def slow_srs() -> AsyncIterator[tuple[SlowSrs, str]]:
    srs = SlowSrs()
    app = web.Application()
    app.router.add_get("/api/v1/streams/", srs.streams)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield srs, f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        srs.answer.set()
        await runner.cleanup()


async def start_cleaner(pod: str, root: Path, srs_url: str,
                        config: Path) -> asyncio.subprocess.Process:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SRS_AGENT_", "KUBERNETES_"))}
    env["KUBECONFIG"] = str(config)
    return await asyncio.create_subprocess_exec(
        AGENT, "cleanup", "--once", "--leader-elect", "--pod-name", pod, "--roots", str(root),
        "--srs-api", srs_url, "--srs-timeout", "30s", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)


async def finish(proc: asyncio.subprocess.Process) -> tuple[int, str, dict[str, Any]]:
    out, err = await asyncio.wait_for(proc.communicate(), timeout=30)
    report = next(json.loads(line)["report"] for line in err.decode().splitlines()
                  if '"report"' in line)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), report


async def test_two_cleaners_on_one_volume_take_turns(
        tmp_path: Path, emulator: tuple[kmock.KubernetesEmulator, str],
        slow_srs: tuple[SlowSrs, str]) -> None:
    _, url = emulator
    srs, srs_url = slow_srs
    config = kubeconfig(tmp_path / "kubeconfig", url, NS, user="tester", token=None)
    root = tmp_path / "html"
    for i in range(20):
        path = root / "live" / f"s1-{i}.ts"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"G" * 10)
        os.utime(path, (time.time() - 9 * 86400,) * 2)

    a = await start_cleaner("cleaner-a", root, srs_url, config)
    await asyncio.wait_for(srs.asked.wait(), timeout=20)  # a holds the lease, waits on SRS
    b = await start_cleaner("cleaner-b", root, srs_url, config)
    rc_b, out_b, report_b = await finish(b)
    assert rc_b == 0
    assert out_b.strip() == f"cleanup skipped: lease {NS}/srs-cleanup is held by cleaner-a"
    assert report_b["files_deleted"] == 0
    assert srs.requests == 1  # b never got as far as SRS
    assert len(list((root / "live").iterdir())) == 20  # nothing touched while a holds it

    srs.answer.set()
    rc_a, _, report_a = await finish(a)
    assert rc_a == 0
    assert report_a["files_deleted"] == 20
    kube = kube_for(url)
    spec = (await read_lease(kube))["spec"]
    assert spec["holderIdentity"] == ""  # released at the end of the run

    c = await start_cleaner("cleaner-c", root, srs_url, config)
    rc_c, _, report_c = await finish(c)
    assert rc_c == 0 and "skipped" not in report_c
    spec = (await read_lease(kube))["spec"]
    assert (spec["holderIdentity"], spec["leaseTransitions"]) == ("", 1)
    kube.close()


async def test_no_kubernetes_config_is_a_config_error(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SRS_AGENT_", "KUBERNETES_"))}
    env["KUBECONFIG"] = str(tmp_path / "missing")
    env["HOME"] = str(tmp_path)
    proc = await asyncio.create_subprocess_exec(
        AGENT, "cleanup", "--once", "--leader-elect", "--roots", str(tmp_path), env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(proc.communicate(), timeout=30)
    assert proc.returncode == 2
    assert "no in-cluster service account" in err.decode()


async def test_sigterm_while_waiting_on_srs_ends_the_run_at_once(
        tmp_path: Path, slow_srs: tuple[SlowSrs, str]) -> None:
    srs, srs_url = slow_srs
    old = tmp_path / "live" / "s1-1.ts"
    old.parent.mkdir()
    old.write_bytes(b"G")
    os.utime(old, (time.time() - 9 * 86400,) * 2)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SRS_AGENT_")}
    proc = await asyncio.create_subprocess_exec(
        AGENT, "cleanup", "--once", "--roots", str(tmp_path), "--srs-api", srs_url,
        "--srs-timeout", "60s", env=env, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    await asyncio.wait_for(srs.asked.wait(), timeout=20)
    proc.send_signal(signal.SIGTERM)
    rc, out, report = await finish(proc)  # within finish()'s 30 s, not the 60 s timeout
    assert rc == 1
    assert report["errors"] == {"interrupted": 1}
    assert old.exists()
    assert "interrupted=1" in out


async def test_a_leader_killed_with_sigkill_blocks_others_until_its_lease_expires(
        tmp_path: Path, emulator: tuple[kmock.KubernetesEmulator, str],
        slow_srs: tuple[SlowSrs, str]) -> None:
    _, url = emulator
    srs, srs_url = slow_srs
    config = kubeconfig(tmp_path / "kubeconfig", url, NS, user="tester", token=None)
    root = tmp_path / "html"
    for i in range(5):
        path = root / "live" / f"s1-{i}.ts"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"G" * 10)
        os.utime(path, (time.time() - 9 * 86400,) * 2)

    a = await start_cleaner("cleaner-a", root, srs_url, config)
    await asyncio.wait_for(srs.asked.wait(), timeout=20)  # a holds the lease
    a.send_signal(signal.SIGKILL)  # no release: the lease stays a's until it expires
    await asyncio.wait_for(a.communicate(), timeout=10)
    srs.answer.set()

    b = await start_cleaner("cleaner-b", root, srs_url, config)
    rc_b, out_b, report_b = await finish(b)
    assert report_b["files_deleted"] == 0
    assert rc_b == 0
    assert out_b.strip() == f"cleanup skipped: lease {NS}/srs-cleanup is held by cleaner-a"
    assert len(list((root / "live").iterdir())) == 5

    # The lease duration passes without a renewal (set back rather than waited for).
    kube = kube_for(url)
    spec = (await read_lease(kube))["spec"]
    assert spec["holderIdentity"] == "cleaner-a"
    await kube.call_json(kube.coordination().patch_namespaced_lease, "srs-cleanup", NS, {
        "spec": {"renewTime": "2026-01-01T00:00:00.000000Z"}})
    c = await start_cleaner("cleaner-c", root, srs_url, config)
    rc_c, _, report_c = await finish(c)
    assert rc_c == 0 and "skipped" not in report_c
    assert report_c["files_deleted"] == 5
    spec = (await read_lease(kube))["spec"]
    assert (spec["holderIdentity"], spec["leaseTransitions"]) == ("", 1)
    kube.close()
