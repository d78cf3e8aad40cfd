"""The ops server over real HTTP on 127.0.0.1: metrics from each registry, health, readiness."""

from __future__ import annotations

import asyncio
import socket
import sys

import aiohttp
import pytest
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.parser import text_string_to_metric_families

from agents.errors import ConfigError
from agents.runtime.ops import Health, OpsServer

pytestmark = pytest.mark.integration


async def test_metrics_healthz_readyz() -> None:
    reg_a, reg_b = CollectorRegistry(), CollectorRegistry()
    Counter("srs_agent_test_a", "a", registry=reg_a).inc(3)
    Counter("srs_agent_test_b", "b", registry=reg_b).inc()
    scrapes: list[int] = []

    async def before_scrape() -> None:
        scrapes.append(1)

    health = Health()
    loop_task: asyncio.Task[object] = asyncio.ensure_future(asyncio.Event().wait())
    health.watch("loop", loop_task)
    health.expect("first-sync")
    server = OpsServer(("127.0.0.1", 0), [reg_a, reg_b], health, [before_scrape])
    await server.start()
    base = f"http://127.0.0.1:{server.port}"
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(base + "/metrics") as resp:
                assert resp.status == 200
                assert resp.headers["Content-Type"].startswith("text/plain")
                families = {f.name: f for f in text_string_to_metric_families(await resp.text())}
            assert families["srs_agent_test_a"].samples[0].value == 3
            assert families["srs_agent_test_b"].samples[0].value == 1
            assert scrapes == [1]

            async with http.get(base + "/readyz") as resp:
                assert resp.status == 503
                assert (await resp.json())["checks"]["first-sync"] == "not ready: starting"
            health.set_ready("first-sync", True)
            async with http.get(base + "/readyz") as resp:
                assert resp.status == 200

            async with http.get(base + "/healthz") as resp:
                assert resp.status == 200
            loop_task.cancel()
            await asyncio.gather(loop_task, return_exceptions=True)
            async with http.get(base + "/healthz") as resp:
                assert resp.status == 503
                assert (await resp.json())["checks"]["loop"] == "cancelled"

            # nothing on the ops server changes state
            async with http.post(base + "/metrics") as resp:
                assert resp.status == 405
    finally:
        await server.stop()


async def test_listen_address_in_use_is_a_config_error_naming_listen() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        server = OpsServer(("127.0.0.1", port), [CollectorRegistry()], Health())
        with pytest.raises(ConfigError) as err:
            await server.start()
    text = str(err.value)
    assert text.startswith(f"--listen 127.0.0.1:{port}: cannot listen: ")
    assert "in use" in text and "\n" not in text
    await server.stop()  # nothing left to clean up, and no error


async def test_listen_host_that_does_not_resolve_is_a_config_error() -> None:
    server = OpsServer(("no-such-host.invalid", 9973), [CollectorRegistry()], Health())
    with pytest.raises(ConfigError, match=r"^--listen no-such-host\.invalid:9973: cannot listen"):
        await server.start()


async def test_exporter_with_a_busy_listen_port_exits_2_with_one_error_line() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "agents", "exporter", "--listen", f"127.0.0.1:{port}",
            "--srs-api", "http://127.0.0.1:1", "--log-format", "text",
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2
    last = err.decode().strip().splitlines()[-1]
    assert last.startswith(f"srs-agent exporter: --listen 127.0.0.1:{port}: cannot listen: ")
    assert "Traceback" not in err.decode()
