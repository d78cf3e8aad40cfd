"""--once --pushgateway: a CronJob run's metrics reach a Pushgateway (a real HTTP server)."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.integration

AGENT = str(Path(sys.executable).with_name("srs-agent"))


class Gateway:
    """Records what is pushed, as the Pushgateway's PUT /metrics/job/<job>/<label>/<value>."""

    def __init__(self) -> None:
        self.pushes: list[tuple[str, str, bytes]] = []
        self.status = 200
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.pushes.append((request.method, request.path, await request.read()))
        return web.Response(status=self.status)


@pytest.fixture
async def gateway() -> AsyncIterator[Gateway]:
    gw = Gateway()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", gw.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    gw.url = f"http://127.0.0.1:{port}"
    try:
        yield gw
    finally:
        await runner.cleanup()


async def cleanup(*args: str) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SRS_AGENT_")}
    proc = await asyncio.create_subprocess_exec(
        AGENT, "cleanup", "--once", *args, env=env, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(proc.communicate(), timeout=30)
    assert proc.returncode is not None
    return proc.returncode, err.decode()


async def test_metrics_are_pushed(gateway: Gateway, tmp_path: Path) -> None:
    for i in range(3):
        path = tmp_path / "live" / f"s1-{i}.ts"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"G" * 1000)
        os.utime(path, (time.time() - 9 * 86400,) * 2)
    before = time.time()
    rc, err = await cleanup("--roots", str(tmp_path), "--pushgateway", gateway.url,
                            "--lease-name", "srs-html-nas")
    assert rc == 0, err
    ((method, url_path, body),) = gateway.pushes
    assert (method, url_path) == ("POST", "/metrics/job/srs_cleanup/lease/srs-html-nas")
    samples = {s.name: s.value for f in text_string_to_metric_families(body.decode())
               for s in f.samples}
    assert samples["srs_cleanup_files_deleted_total"] == 3
    assert samples["srs_cleanup_bytes_freed_total"] == 3000
    assert samples["srs_cleanup_last_success_timestamp_seconds"] >= before
    assert "srs_cleanup_run_duration_seconds" in samples


async def test_a_failed_run_keeps_the_last_success_time_in_the_gateway(
        gateway: Gateway, tmp_path: Path) -> None:
    rc, err = await cleanup("--roots", str(tmp_path / "missing"), "--pushgateway", gateway.url)
    assert rc == 1, err
    ((method, _, body),) = gateway.pushes
    assert method == "POST"  # replaces only what is sent
    samples = {(s.name, tuple(s.labels.items())): s.value
               for f in text_string_to_metric_families(body.decode()) for s in f.samples}
    assert samples[("srs_cleanup_errors_total", (("reason", "root_missing"),))] == 1
    assert not [k for k in samples if k[0] == "srs_cleanup_last_success_timestamp_seconds"]


async def test_a_failed_push_fails_the_job(gateway: Gateway, tmp_path: Path) -> None:
    gateway.status = 500
    rc, err = await cleanup("--roots", str(tmp_path), "--pushgateway", gateway.url)
    assert rc == 1
    assert "metrics not pushed to the Pushgateway" in err
