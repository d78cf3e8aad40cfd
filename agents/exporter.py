"""`srs-agent exporter`: SRS's HTTP API as Prometheus metrics, per stream and per vhost.

SRS's built-in exporter (5.0+) has 10 global series and nothing per stream; SRS 3 and 4
have none. This agent reads SRS's API when Prometheus scrapes (at most once per
--cache-ttl; nothing polls between scrapes) and serves SRS's 10 names with SRS's meaning,
plus vhost and stream series (`agents.exporter_model`).

One read is: summaries, and streams (paged) then vhosts, concurrently; plus, for SRS's
10 global series, either SRS's own /metrics (5.0+ with its exporter on) or versions and
self_proc_stats (computed the way SRS does). The whole read is bounded by --srs-timeout.
When summaries, streams or vhosts fail, `srs_up` is 0, `srs_exporter_errors_total`
counts the reason, and no SRS series are served at all: never old figures as new ones.
The scrape itself still answers 200.

`build_exporter` is what `sidecar` composes: it registers a collector in the agent's own
registry and gives the ops server a `before_scrape` hook.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable, Coroutine, Iterator, Mapping
from types import TracebackType
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import Metric
from prometheus_client.samples import Sample

from agents.exporter_model import (
    ERROR_REASONS,
    Model,
    Reading,
    StreamFilter,
    own_families,
    parse_builtin,
)
from agents.runtime import lifecycle
from agents.runtime.logs import fields
from agents.runtime.ops import Health, OpsServer
from agents.settings import ExporterSettings
from agents.srs.api import (
    SelfProcStats,
    SrsApi,
    SrsApiError,
    SrsProtocolError,
    SrsUnavailable,
    Stream,
    Summary,
    Version,
    Vhost,
)

log = logging.getLogger("srs_agent.exporter")

EXPORTER_DISABLED = 1090  # SRS's code on /metrics when its exporter is off
REQUEST_SLACK = 1.0
"""Each request's own timeout is --srs-timeout plus this, so the read's overall deadline
always fires first and a hang is counted as `timeout`, not as a connection failure."""
PROBE_INTERVAL = 600.0
"""How often to look again for SRS's /metrics after SRS said it has none (it may be
turned on by a reload); a new SRS process is probed at once."""

_READ_ERRORS = (TimeoutError, SrsUnavailable, SrsApiError, SrsProtocolError)


def error_reason(exc: BaseException) -> str:
    """The `reason` label of srs_exporter_errors_total for a failed read."""
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, SrsUnavailable):
        return "refused"
    if isinstance(exc, SrsApiError):
        return "api_code"
    return "protocol"


class Exporter:
    """Reads SRS when scraped and serves what the last read found.

    Use as `async with Exporter(settings) as exporter:` (entering makes a first read,
    which logs whether SRS is readable, then marks `exporter` ready in `health`); register
    `exporter.collector` in a registry and give `exporter.before_scrape` to the ops server.
    """

    def __init__(
        self,
        settings: ExporterSettings,
        *,
        health: Health | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.health = health
        self.clock = clock
        self.timeout = settings.srs_timeout
        self.model = Model(
            settings.max_streams,
            StreamFilter(settings.streams_include, settings.streams_exclude),
        )
        self.api = SrsApi(settings.srs_api, timeout=settings.srs_timeout + REQUEST_SLACK)
        self.collector = ExporterCollector(self)
        self.errors: dict[str, int] = dict.fromkeys(ERROR_REASONS, 0)
        self.up = False
        self.duration = 0.0
        self.families: list[Metric] = []
        self.reads = 0
        self._read_at: float | None = None
        self._inflight: asyncio.Task[None] | None = None
        # Where SRS's 10 global series come from: "builtin" (its /metrics), "api"
        # (computed), or None: not known yet, read both and see.
        self._globals_from: str | None = None
        self._probe_at = 0.0
        self._srs_pid: int | None = None
        self._state = "unknown"  # last logged: "up" or the failure reason

    async def __aenter__(self) -> Exporter:
        await self.api.__aenter__()
        try:
            await self.refresh()
        except BaseException:
            await self.api.close()
            raise
        if self.health is not None:
            self.health.set_ready("exporter", True)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._inflight is not None:
            self._inflight.cancel()
            await asyncio.gather(self._inflight, return_exceptions=True)
        await self.api.close()

    # -- what the ops server calls ------------------------------------------------

    async def before_scrape(self) -> None:
        """Read SRS unless the last read is younger than --cache-ttl; concurrent scrapes
        share one read."""
        if self._read_at is not None and self.clock() - self._read_at < self.settings.cache_ttl:
            return
        if self._inflight is None or self._inflight.done():
            self._inflight = asyncio.create_task(self.refresh())
        # A scrape that goes away must not cancel the read other scrapes wait for.
        await asyncio.shield(self._inflight)

    def collect(self) -> Iterator[Metric]:
        yield from own_families(self.up, self.duration, self.errors)
        yield from self.families

    # -- one read -----------------------------------------------------------------

    async def refresh(self) -> None:
        """Read SRS once and replace what is served, success or not. Whatever ends a
        read early (an error SRS caused, or one nobody foresaw, which still propagates),
        the figures of an older read are never served again as current."""
        started = self.clock()
        served = False
        try:
            reading = await self.read()
        except _READ_ERRORS as exc:
            reason = error_reason(exc)
            self.errors[reason] += 1
            self._globals_from = None
            self._report(reason, exc)
        else:
            # In a thread: at 10,000 streams this is tens of ms of pure Python, which
            # would otherwise hold up the loop the sidecar's reload shares.
            self.families = await asyncio.to_thread(self.model.families, reading)
            self.up = served = True
            self._report("up", None, reading)
        finally:
            if not served:
                self.up = False
                self.families = []  # nothing from an older read is served as current
            self.reads += 1
            self._read_at = self.clock()
            self.duration = self._read_at - started

    async def read(self) -> Reading:
        """Summaries, streams and vhosts (required) and the global sources (optional),
        concurrently, within --srs-timeout; raises the first required failure."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        source = self._globals_from
        if source == "api" and self.clock() >= self._probe_at:
            source = None
        tasks: list[asyncio.Task[Any]] = []

        def spawn(coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
            task = asyncio.create_task(coro)
            tasks.append(task)
            return task

        try:
            summary_t = spawn(self.api.summaries())
            lists_t = spawn(self._lists())
            builtin_t = spawn(self.api.builtin_metrics()) if source != "api" else None
            version_t = spawn(self.api.versions()) if source != "builtin" else None
            proc_t = spawn(self.api.self_proc_stats()) if source != "builtin" else None
            required = [summary_t, lists_t]
            done, pending = await asyncio.wait(
                required, timeout=self.timeout, return_when=asyncio.FIRST_EXCEPTION
            )
            for task in required:
                if task in done and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
            if pending:
                raise TimeoutError
            optional = [t for t in (builtin_t, version_t, proc_t) if t is not None]
            if optional:
                await asyncio.wait(optional, timeout=max(0.0, deadline - loop.time()))
            summary: Summary = summary_t.result()
            streams, vhosts = lists_t.result()
            builtin = self._builtin(builtin_t, source)
            version: Version | None = None
            proc: SelfProcStats | None = None
            if builtin is None:
                version = self._optional(version_t)
                proc = self._optional(proc_t)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        self._follow_srs(summary.process.pid, probed=source is None)
        return Reading(summary=summary, streams=streams, vhosts=vhosts, builtin=builtin,
                       version=version, proc=proc)

    async def _lists(self) -> tuple[list[Stream], list[Vhost]]:
        # Vhosts after streams: SRS never forgets a vhost, so every vhost id the streams
        # name is in this list and labels get names, not ids.
        streams = await self.api.streams()
        return streams, await self.api.vhosts()

    def _builtin(
        self, task: asyncio.Task[Any] | None, source: str | None
    ) -> Mapping[str, Sample] | None:
        """SRS's /metrics parsed, or None; learns whether this SRS has it."""
        if task is None:
            return None
        if not task.done():
            self._count(TimeoutError())
            self._globals_from = None
            return None
        exc = task.exception()
        if exc is None:
            try:
                parsed = parse_builtin(task.result())
            except ValueError as bad:
                self._count(SrsProtocolError("/metrics", f"not Prometheus text: {bad}"))
                self._globals_from = None
                return None
            self._globals_from = "builtin"
            return parsed
        absent = (isinstance(exc, SrsApiError) and exc.code == EXPORTER_DISABLED) or (
            source is None and isinstance(exc, SrsProtocolError)  # SRS 3/4: no /metrics
        )
        if absent:
            if self._globals_from != "api":
                log.info("SRS serves no /metrics of its own: computing its global series "
                         "from the API", extra=fields(srs_api=self.settings.srs_api,
                                                      reason=str(exc)))
            self._globals_from = "api"
            self._probe_at = self.clock() + PROBE_INTERVAL
        else:
            self._count(exc)
            self._globals_from = None
        return None

    def _optional(self, task: asyncio.Task[Any] | None) -> Any:
        if task is None:
            return None
        if not task.done():
            self._count(TimeoutError())
            return None
        exc = task.exception()
        if exc is not None:
            self._count(exc)
            return None
        return task.result()

    def _count(self, exc: BaseException) -> None:
        if not isinstance(exc, _READ_ERRORS):
            raise exc
        reason = error_reason(exc)
        self.errors[reason] += 1
        log.debug("optional read of SRS failed", extra=fields(reason=reason, error=str(exc)))

    def _follow_srs(self, pid: int | None, probed: bool) -> None:
        """A new SRS process may be another version: look for its /metrics again,
        unless this very read just did."""
        if pid != self._srs_pid:
            if self._srs_pid is not None and not probed:
                self._globals_from = None
            self._srs_pid = pid

    def _report(self, state: str, exc: BaseException | None, reading: Reading | None = None
                ) -> None:
        """Log when SRS's state changes, not on every scrape."""
        if state == self._state:
            return
        self._state = state
        if reading is not None:
            log.info("SRS API readable", extra=fields(
                srs_api=self.settings.srs_api, version=reading.summary.process.version,
                streams=len(reading.streams), vhosts=len(reading.vhosts),
                globals_from=self._globals_from or "api"))
        else:
            log.warning("SRS API not readable: serving srs_up 0 and no SRS series",
                        extra=fields(srs_api=self.settings.srs_api, reason=state,
                                     error=str(exc) or type(exc).__name__))


class ExporterCollector:
    """The registry's view of an Exporter (what its last read found)."""

    def __init__(self, exporter: Exporter) -> None:
        self.exporter = exporter

    def collect(self) -> Iterator[Metric]:
        return self.exporter.collect()


def build_exporter(
    settings: ExporterSettings, registry: CollectorRegistry, health: Health
) -> Exporter:
    """An Exporter whose collector is registered in `registry`; enter it (`async with`)
    before serving, and give its `before_scrape` to the ops server.

    Readiness: the component `exporter` is ready once the first read at start has been
    tried. It does not follow SRS afterwards: reads happen only on scrapes, so a
    readiness derived from them would be stale between scrapes (SRS's own probe covers
    SRS; `srs_up` reports it).
    """
    exporter = Exporter(settings, health=health)
    registry.register(exporter.collector)
    health.expect("exporter")
    return exporter


def command(settings: ExporterSettings) -> int:
    """`srs-agent exporter`: serve until SIGTERM, then exit 0."""
    keep_startup_objects_out_of_gc()
    return lifecycle.run(lambda stop: run_exporter(settings, stop))


def keep_startup_objects_out_of_gc() -> None:
    """A read of 10,000 streams allocates enough to trigger full collections, which
    would walk every module object loaded at start each time; those live as long as the
    process, so move them out of the collector's reach (gc.freeze)."""
    gc.collect()
    gc.freeze()


async def run_exporter(settings: ExporterSettings, stop: asyncio.Event) -> int:
    registry = CollectorRegistry()
    health = Health()
    async with build_exporter(settings, registry, health) as exporter:
        server = OpsServer(settings.listen, [registry], health, [exporter.before_scrape])
        await server.start()
        try:
            await stop.wait()
        finally:
            await server.stop()
    log.info("exporter stopped")
    return 0
