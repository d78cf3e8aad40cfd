"""The sidecar's view of a drain: the state file on disk, read at each scrape."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from agents.drain import drain_metrics_from_state, read_state_file, write_atomically
from agents.drain_plan import DrainState

pytestmark = pytest.mark.integration


def scrape(registry: CollectorRegistry) -> dict[str, float]:
    """name{outcome} -> value, without _created samples."""
    out = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue
            label = sample.labels.get("outcome")
            out[f"{sample.name}{{{label}}}" if label else sample.name] = sample.value
    return out


def test_sidecar_exports_what_the_drain_writes(tmp_path: Path) -> None:
    path = str(tmp_path / "drain.json")
    registry = CollectorRegistry()
    drain_metrics_from_state(path, registry)

    before = scrape(registry)  # no drain yet: zero counters, no gauges
    assert before["srs_agent_drain_outcomes_total{drained}"] == 0
    assert "srs_agent_drain_connections" not in before

    write_atomically(path, DrainState(phase="draining", duration_seconds=2.5, connections=4,
                                      connections_before_quit=6).to_json())
    during = scrape(registry)
    assert during["srs_agent_drain_connections"] == 4
    assert during["srs_agent_drain_connections_before_quit"] == 6
    assert during["srs_agent_drain_in_progress"] == 1
    assert during["srs_agent_drain_duration_seconds"] == 2.5

    write_atomically(path, DrainState(phase="done", duration_seconds=9.0, connections=0,
                                      outcome="drained", outcomes={"drained": 1}).to_json())
    after = scrape(registry)
    assert after["srs_agent_drain_outcomes_total{drained}"] == 1
    assert after["srs_agent_drain_outcomes_total{deadline}"] == 0
    assert after["srs_agent_drain_in_progress"] == 0
    assert after["srs_agent_drain_duration_seconds"] == 9.0


def test_a_damaged_state_file_is_reported_once_and_not_exported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "drain.json"
    path.write_text('{"format": 1, "connections": "many"}')
    registry = CollectorRegistry()
    drain_metrics_from_state(str(path), registry)
    with caplog.at_level(logging.WARNING, logger="srs_agent.drain"):
        first, second = scrape(registry), scrape(registry)
    assert "srs_agent_drain_connections" not in first
    assert first == second
    warnings = [r for r in caplog.records if "drain state file" in r.getMessage()]
    assert len(warnings) == 1
    assert "'connections'" in warnings[0].getMessage()


def test_the_drain_cannot_register_twice_on_one_registry(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    drain_metrics_from_state(str(tmp_path / "a.json"), registry)
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        drain_metrics_from_state(str(tmp_path / "b.json"), registry)


def test_atomic_write_leaves_no_temp_files(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "drain.json"  # the directory is created
    for n in range(3):
        write_atomically(str(target), DrainState(connections=n).to_json())
    state = read_state_file(str(target))
    assert state is not None and state.connections == 2
    assert os.listdir(target.parent) == ["drain.json"]
    assert read_state_file(str(tmp_path / "missing.json")) is None
    assert read_state_file("") is None


async def test_sidecar_can_wait_for_the_outcome_to_be_scraped(tmp_path: Path) -> None:
    path = str(tmp_path / "drain.json")
    registry = CollectorRegistry()
    collector = drain_metrics_from_state(path, registry)
    assert await collector.wait_outcome_scraped(0)  # no drain: nothing to wait for

    write_atomically(path, DrainState(phase="draining", started_at=100.0).to_json())
    assert await collector.wait_outcome_scraped(0)  # still running: not an outcome yet

    write_atomically(path, DrainState(phase="done", started_at=100.0,
                                      outcomes={"drained": 1}).to_json())
    assert not await collector.wait_outcome_scraped(0.05)  # nobody scraped it

    async def scrape_soon() -> None:
        await asyncio.sleep(0.05)
        await asyncio.to_thread(generate_latest, registry)  # a scrape from another thread

    scraper = asyncio.ensure_future(scrape_soon())
    assert await collector.wait_outcome_scraped(10)
    await scraper
    assert collector.outcome_scraped()

    # a later drain in the same pod needs a scrape of its own
    write_atomically(path, DrainState(phase="done", started_at=200.0,
                                      outcomes={"drained": 2}).to_json())
    assert not collector.outcome_scraped()
