"""Shared by the exporter's integration tests: an exporter behind a real ops server on
127.0.0.1, and a scrape parsed back with prometheus-client's own parser."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from agents.exporter import Exporter, build_exporter
from agents.runtime.ops import Health, OpsServer
from agents.settings import ExporterSettings

OTHER = "__other__"


@contextlib.asynccontextmanager
async def serving(settings: ExporterSettings) -> AsyncIterator[tuple[Exporter, str]]:
    """The exporter as `srs-agent exporter` runs it; yields it and the ops server's URL."""
    registry = CollectorRegistry()
    health = Health()
    async with build_exporter(settings, registry, health) as exporter:
        server = OpsServer(("127.0.0.1", 0), [registry], health, [exporter.before_scrape])
        await server.start()
        try:
            yield exporter, f"http://127.0.0.1:{server.port}"
        finally:
            await server.stop()


class Scrape:
    """One /metrics reply, parsed: samples by sample name (SRS's gauge srs_clients and
    counter srs_clients_total share a family name in the parser, not a sample name)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.samples: dict[str, list[Any]] = {}
        self.types: dict[str, str] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                self.samples.setdefault(sample.name, []).append(sample)
                self.types[sample.name] = family.type

    def value(self, name: str, **labels: str) -> float:
        found = [s.value for s in self.samples.get(name, [])
                 if all(s.labels.get(k) == v for k, v in labels.items())]
        assert len(found) == 1, f"{name}{labels}: {len(found)} samples"
        return float(found[0])

    def by(self, name: str, *label_names: str) -> dict[tuple[str, ...], float]:
        return {tuple(s.labels[n] for n in label_names): s.value
                for s in self.samples.get(name, [])}

    def has(self, name: str) -> bool:
        return bool(self.samples.get(name))

    def srs_series(self) -> list[str]:
        """Every series name from SRS (not the exporter's own up/duration/errors)."""
        own = {"srs_up", "srs_scrape_duration_seconds", "srs_exporter_errors_total"}
        return sorted(name for name in self.samples if name not in own)


async def scrape(base: str) -> Scrape:
    async with aiohttp.ClientSession() as http, http.get(base + "/metrics") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain")
        return Scrape(await resp.text())
