"""cleanup's settings checked together before anything runs; the run report and metrics."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from agents.cleanup.command import plan
from agents.cleanup.job import CleanupMetrics, RunReport
from agents.cleanup.scan import Tally
from agents.errors import ConfigError
from agents.settings import CleanupSettings, build


def settings(**flags: str) -> CleanupSettings:
    return build(CleanupSettings, flags, {})


@pytest.mark.parametrize("flags", [{}, {"once": "true", "schedule": "15 1 * * *"}])
def test_exactly_one_of_once_and_schedule(flags: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match="--once and --schedule: give exactly one"):
        plan(settings(**flags))


def test_schedule_and_timezone_are_checked_up_front() -> None:
    with pytest.raises(ConfigError, match=r"--schedule: invalid value '15 25 \* \* \*'"):
        plan(settings(schedule="15 25 * * *"))
    with pytest.raises(ConfigError, match=r"--schedule: .* never runs"):
        plan(settings(schedule="0 0 30 2 *"))
    with pytest.raises(ConfigError, match="--timezone"):
        plan(settings(schedule="15 1 * * *", timezone="Asia/Beijing"))
    ok = plan(settings(schedule="15 1 * * *", timezone="Asia/Shanghai"))
    assert ok.cron is not None and str(ok.tz) == "Asia/Shanghai"


def test_other_combinations() -> None:
    with pytest.raises(ConfigError, match="--pushgateway: only with --once"):
        plan(settings(schedule="@daily", pushgateway="http://127.0.0.1:9091"))
    with pytest.raises(ConfigError, match="--roots"):
        plan(settings(once="true", roots=""))
    with pytest.raises(ConfigError, match="--patterns"):
        plan(settings(once="true", patterns="live/*.ts"))
    once = plan(settings(once="true", patterns="*.ts,*.m3u8", older_than="2h"))
    assert once.cron is None
    assert once.config.policy.patterns == ("*.ts", "*.m3u8")
    assert once.config.policy.older_than == 7200


def test_report_and_metrics() -> None:
    tally = Tally(entries=10, files_deleted=4, bytes_freed=4096, dirs_removed=1,
                  kept=Counter({"young": 2}), errors=Counter({"permission": 1}))
    report = RunReport(started=1_800_000_000.0, dry_run=False, roots=("/html",),
                       duration=1.5, tally=tally)
    report.run_errors["max_deletions"] += 1
    assert not report.ok
    doc = json.loads(json.dumps(report.to_dict()))
    assert doc["files_deleted"] == 4 and doc["bytes_freed"] == 4096
    assert doc["errors"] == {"max_deletions": 1, "permission": 1}
    assert report.summary() == (
        "cleanup FAILED: deleted 4 files (4.0 KiB) and 1 empty directories in 1.5s; "
        "2 errors (max_deletions=1, permission=1)")

    registry = CollectorRegistry()
    metrics = CleanupMetrics(registry)
    metrics.record(report)
    good = RunReport(started=1_800_000_100.0, dry_run=False, roots=("/html",), duration=0.5,
                     tally=Tally(files_deleted=1, bytes_freed=10))
    metrics.record(good)
    dry = RunReport(started=1_800_000_200.0, dry_run=True, roots=("/html",), duration=0.25,
                    tally=Tally(files_deleted=100, bytes_freed=1000))
    metrics.record(dry)
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for f in text_string_to_metric_families(generate_latest(registry).decode())
               for s in f.samples}
    assert samples[("srs_cleanup_files_deleted_total", ())] == 5  # the dry run deletes nothing
    assert samples[("srs_cleanup_bytes_freed_total", ())] == 4106
    assert samples[("srs_cleanup_errors_total", (("reason", "permission"),))] == 1
    assert samples[("srs_cleanup_errors_total", (("reason", "max_deletions"),))] == 1
    assert samples[("srs_cleanup_run_duration_seconds", ())] == 0.25
    # The failed run and the dry run leave it at the good run's end.
    assert samples[("srs_cleanup_last_success_timestamp_seconds", ())] == 1_800_000_100.5
    assert metrics.last_success_value() == 1_800_000_100.5
    assert CleanupMetrics(CollectorRegistry()).last_success_value() is None
