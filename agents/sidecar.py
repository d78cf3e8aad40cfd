"""`srs-agent sidecar`: reload + exporter + ops server in one process, one event loop.

This is the container the manifests add to SRS pods. It also serves the metrics of the
preStop `srs-agent drain` (a separate, short-lived process) from the drain's state file,
and on SIGTERM waits briefly for a scrape to carry the drain's outcome.
"""

from __future__ import annotations

import asyncio
import logging
import os

from prometheus_client import CollectorRegistry

from agents.drain import drain_metrics_from_state
from agents.exporter import build_exporter, keep_startup_objects_out_of_gc
from agents.reload import check_settings, run_reload
from agents.runtime import lifecycle
from agents.runtime.logs import fields
from agents.runtime.ops import Health, OpsServer
from agents.settings import SidecarSettings

log = logging.getLogger("srs_agent.sidecar")


def remove_stale_done_file(path: str) -> None:
    """A done-file left from an earlier drain would let SRS's preStop return at once."""
    if not path:
        return
    try:
        os.unlink(path)
    except FileNotFoundError:
        return
    log.warning("removed a stale drain done-file", extra=fields(file=path))


async def run_sidecar(settings: SidecarSettings, stop: asyncio.Event) -> int:
    remove_stale_done_file(settings.drain_done_file)
    reload_registry = CollectorRegistry()
    exporter_registry = CollectorRegistry()
    drain_registry = CollectorRegistry()
    health = Health()
    drain = (drain_metrics_from_state(settings.drain_state_file, drain_registry)
             if settings.drain_state_file else None)
    async with build_exporter(settings, exporter_registry, health) as exporter:
        server = OpsServer(
            settings.listen,
            [exporter_registry, reload_registry, drain_registry],
            health,
            [exporter.before_scrape],
        )
        await server.start()
        try:
            code = await run_reload(settings, stop, reload_registry, health)
            if drain is not None and not drain.outcome_scraped():
                scraped = await drain.wait_outcome_scraped(settings.final_scrape_wait)
                log.info("drain outcome %s before exit", "scraped" if scraped else
                         "not scraped", extra=fields(waited=settings.final_scrape_wait))
        finally:
            await server.stop()
    log.info("sidecar stopped")
    return code


def command(settings: SidecarSettings) -> int:
    """`srs-agent sidecar`: runs until SIGTERM, then exits 0."""
    check_settings(settings)
    keep_startup_objects_out_of_gc()  # as the exporter does: scrapes of many streams
    return lifecycle.run(lambda stop: run_sidecar(settings, stop))
