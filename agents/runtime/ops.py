"""The ops HTTP server: GET /metrics, /healthz, /readyz. Nothing on it changes state.

Served by the small HTTP server in `httpserver` (not aiohttp.web: see there why).

Each agent owns a CollectorRegistry and hands it here; /metrics renders them one after
another. Agents whose metrics come from elsewhere (the exporter) register an async
`before_scrape` hook, so nothing polls between scrapes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from agents.errors import ConfigError
from agents.runtime.httpserver import HttpServer, Request, Response
from agents.runtime.logs import fields

log = logging.getLogger("srs_agent.ops")

ScrapeHook = Callable[[], Awaitable[None]]


class Health:
    """What /healthz and /readyz report.

    Liveness: every watched task is still running (a crashed loop makes the pod
    unhealthy). Readiness: every named component said it is ready (first sync done,
    SRS reachable). Nothing ticks on a timer: an idle agent costs no CPU.
    """

    def __init__(self) -> None:
        self._tasks: dict[str, asyncio.Task[object]] = {}
        self._ready: dict[str, tuple[bool, str]] = {}

    def watch(self, name: str, task: asyncio.Task[object]) -> None:
        self._tasks[name] = task

    def expect(self, name: str) -> None:
        """Declare a component that is not ready until it says so."""
        self._ready.setdefault(name, (False, "starting"))

    def set_ready(self, name: str, ready: bool, reason: str = "") -> None:
        self._ready[name] = (ready, reason)

    def liveness(self) -> tuple[bool, dict[str, str]]:
        report = {}
        for name, task in self._tasks.items():
            if not task.done():
                report[name] = "running"
            elif task.cancelled():
                report[name] = "cancelled"
            else:
                exc = task.exception()
                report[name] = f"ended: {exc!r}" if exc else "ended"
        return all(state == "running" for state in report.values()), report

    def readiness(self) -> tuple[bool, dict[str, str]]:
        report = {name: ("ready" if ok else f"not ready: {why}") for name, (ok, why) in
                  self._ready.items()}
        return all(ok for ok, _ in self._ready.values()), report


class OpsServer:
    def __init__(
        self,
        listen: tuple[str, int],
        registries: Iterable[CollectorRegistry],
        health: Health,
        before_scrape: Iterable[ScrapeHook] = (),
    ) -> None:
        self.listen = listen
        self.registries = list(registries)
        self.health = health
        self.before_scrape = list(before_scrape)
        self._http = HttpServer(self._handle)
        self._routes: dict[str, Callable[[], Awaitable[Response]]] = {
            "/metrics": self._metrics, "/healthz": self._healthz, "/readyz": self._readyz}
        self.port: int = listen[1]

    async def start(self) -> None:
        try:
            self.port = await self._http.start(*self.listen)
        except OSError as exc:  # in use, not an address of this host, unresolvable name
            await self.stop()
            address = f"{self.listen[0]}:{self.listen[1]}"
            reason = exc.strerror or str(exc)
            raise ConfigError(f"--listen {address}: cannot listen: {reason}") from None
        log.info("ops server listening", extra=fields(
            address=f"{self.listen[0]}:{self.port}", paths="/metrics /healthz /readyz"))

    async def stop(self) -> None:
        await self._http.stop()

    async def _handle(self, request: Request) -> Response:
        route = self._routes.get(request.path)
        if route is None:
            return Response.text(404, "not found: /metrics, /healthz, /readyz\n")
        if request.method not in ("GET", "HEAD"):
            return Response(405, b"only GET and HEAD\n", headers=(("Allow", "GET, HEAD"),))
        return await route()

    async def _metrics(self) -> Response:
        started = time.monotonic()
        for hook in self.before_scrape:
            await hook()
        # Rendering thousands of series takes tens of ms: off the loop, so reload and
        # /healthz are not held up by a big scrape.
        body = await asyncio.to_thread(self._render)
        log.debug("scrape served", extra=fields(seconds=round(time.monotonic() - started, 4)))
        return Response(200, body, CONTENT_TYPE_LATEST)

    def _render(self) -> bytes:
        return b"".join(generate_latest(r) for r in self.registries)

    async def _healthz(self) -> Response:
        return _json(*self.health.liveness())

    async def _readyz(self) -> Response:
        return _json(*self.health.readiness())


def _json(ok: bool, report: dict[str, str]) -> Response:
    body = json.dumps({"ok": ok, "checks": report}).encode()
    return Response(200 if ok else 503, body, "application/json; charset=utf-8")
