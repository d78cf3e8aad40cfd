"""One cleanup run over every root: live streams, lease, scan, watermark, report, metrics.

The blocking file work runs in a thread (`clean_roots`); the async side asks SRS which
streams are publishing, holds the Lease, turns the stop event into an abort, and
records the outcome. A run's report is one JSON log line; its figures also feed the
metrics of DESIGN §3.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from prometheus_client import CollectorRegistry, Gauge
from prometheus_client import Counter as PromCounter

from agents.cleanup.policy import LiveStreams, Policy
from agents.cleanup.scan import (
    Budget,
    ErrorLog,
    OldestFiles,
    Remover,
    RootError,
    Tally,
    Walker,
    drive,
)
from agents.cleanup.watermark import CAPACITY, Oldest, WatermarkResult, disk_usage, enforce
from agents.errors import AgentError
from agents.runtime.logs import fields

if TYPE_CHECKING:
    from agents.kube.lease import LeaseLock

log = logging.getLogger("srs_agent.cleanup")

# Run-level error reasons (file-level ones come from scan.error_reason).
SRS_API = "srs_api_unreachable"
LEASE = "lease"
LEASE_LOST = "lease_lost"
MAX_DELETIONS = "max_deletions"
WATERMARK = "watermark_not_met"
INTERRUPTED = "interrupted"


@dataclass(frozen=True)
class JobConfig:
    roots: tuple[str, ...]
    policy: Policy
    dry_run: bool = False
    max_deletions: int = 100000
    max_usage: float = 0.0
    concurrency: int = 4
    srs_api: str = ""
    srs_timeout: float = 2.0


@dataclass
class RunReport:
    """What one run did. `errors` holds every failure by reason; empty means success."""

    started: float
    dry_run: bool
    roots: tuple[str, ...]
    duration: float = 0.0
    tally: Tally = field(default_factory=Tally)
    live_streams: int | None = None
    watermark: list[WatermarkResult] = field(default_factory=list)
    skipped: str = ""  # why nothing was done (another cleaner holds the lease)
    run_errors: Counter[str] = field(default_factory=Counter)

    @property
    def errors(self) -> Counter[str]:
        return self.tally.errors + self.run_errors

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        t = self.tally
        doc: dict[str, Any] = {
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.started)),
            "duration_seconds": round(self.duration, 3),
            "dry_run": self.dry_run,
            "roots": list(self.roots),
            "ok": self.ok,
            "files_deleted": t.files_deleted,
            "bytes_freed": t.bytes_freed,
            "dirs_removed": t.dirs_removed,
            "entries_scanned": t.entries,
            "vanished": t.vanished,
            "kept": dict(sorted(t.kept.items())),
            "errors": dict(sorted(self.errors.items())),
        }
        if self.live_streams is not None:
            doc["live_streams"] = self.live_streams
        if self.watermark:
            doc["watermark"] = [w.to_dict() for w in self.watermark]
        if self.skipped:
            doc["skipped"] = self.skipped
        return doc

    def summary(self) -> str:
        """One line for humans (the CronJob's log)."""
        if self.skipped:
            return f"cleanup skipped: {self.skipped}"
        t = self.tally
        verb = "would delete" if self.dry_run else "deleted"
        errors = self.errors
        text = (f"cleanup {'ok' if self.ok else 'FAILED'}: {verb} {t.files_deleted} files "
                f"({_human_bytes(t.bytes_freed)}) and {t.dirs_removed} empty directories "
                f"in {self.duration:.1f}s; {sum(errors.values())} errors")
        if errors:
            text += " (" + ", ".join(f"{k}={v}" for k, v in sorted(errors.items())) + ")"
        return text


def _human_bytes(count: int) -> str:
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{count} B"


class CleanupMetrics:
    """The cleanup metrics of DESIGN §3, in the agent's own registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.files_deleted = PromCounter(
            "srs_cleanup_files_deleted", "Files deleted by cleanup.", registry=registry)
        self.bytes_freed = PromCounter(
            "srs_cleanup_bytes_freed", "Bytes (file sizes) of the files cleanup deleted.",
            registry=registry)
        self.errors = PromCounter(
            "srs_cleanup_errors", "Cleanup failures by reason.", ["reason"], registry=registry)
        self.last_success = Gauge(
            "srs_cleanup_last_success_timestamp_seconds",
            "Unix time of the end of the last cleanup run without errors.", registry=registry)
        self.run_duration = Gauge(
            "srs_cleanup_run_duration_seconds", "Duration of the last cleanup run.",
            registry=registry)

    def last_success_value(self) -> float | None:
        """The last success time recorded by this process, None before any."""
        value = self.registry.get_sample_value("srs_cleanup_last_success_timestamp_seconds")
        return value or None

    def record(self, report: RunReport) -> None:
        if not report.dry_run:
            self.files_deleted.inc(report.tally.files_deleted)
            self.bytes_freed.inc(report.tally.bytes_freed)
        for reason, count in report.errors.items():
            self.errors.labels(reason=reason).inc(count)
        self.run_duration.set(report.duration)
        if report.ok and not report.skipped and not report.dry_run:
            self.last_success.set(report.started + report.duration)


# ---------------------------------------------------------------------------
# The blocking part
# ---------------------------------------------------------------------------


def clean_root(root: str, config: JobConfig, policy: Policy, *, now: float,
               abort: threading.Event, budget: Budget, errors: ErrorLog,
               report: RunReport) -> None:
    """Age-based pass over one root, then the watermark if set. Runs in a thread."""
    lock = threading.Lock()
    scan_tally, remove_tally = Tally(), Tally()
    walker = Walker(root, policy, abort=abort, tally=scan_tally, errors=errors, lock=lock)
    try:
        root_node = walker.open_root()
    except RootError as exc:
        log.error("cleanup cannot clean a root", extra=fields(root=root, error=str(exc)))
        report.run_errors[exc.reason] += 1
        return
    cutoff = policy.cutoff(now)
    young = OldestFiles(CAPACITY) if config.max_usage else None
    root_fd = os.dup(root_node.fd)  # kept for the watermark after the pass closes the root
    try:
        remover = Remover(root, policy, cutoff, dry_run=config.dry_run, budget=budget,
                          abort=abort, tally=remove_tally, errors=errors, lock=lock,
                          young=young)
        drive(walker, root_node, remover, config.concurrency)
        report.tally.merge(scan_tally)
        report.tally.merge(remove_tally)
        if young is not None and not abort.is_set():
            report.watermark.append(_watermark(
                root, root_fd, walker.dev, config=config, policy=policy, first=young,
                abort=abort, budget=budget, errors=errors, report=report))
    finally:
        os.close(root_fd)


def _watermark(root: str, root_fd: int, dev: int, *, config: JobConfig, policy: Policy,
               first: OldestFiles, abort: threading.Event, budget: Budget, errors: ErrorLog,
               report: RunReport) -> WatermarkResult:
    tally = Tally()

    def rescan() -> OldestFiles:
        found = OldestFiles(CAPACITY)
        scan_tally, collect_tally = Tally(), Tally()
        lock = threading.Lock()
        walker = Walker(root, policy, abort=abort, tally=scan_tally, errors=errors, lock=lock)
        try:
            node = walker.open_root()
        except RootError as exc:  # gone or unreadable since the first pass: say so
            tally.errors[exc.reason] += 1
            return found
        # Nothing is old for a cutoff at -inf: every candidate lands in `found`.
        collector = Remover(root, policy, float("-inf"), dry_run=True, budget=Budget(0),
                            abort=abort, tally=collect_tally, errors=errors, lock=lock,
                            young=found)
        drive(walker, node, collector, config.concurrency)
        tally.errors.update(scan_tally.errors + collect_tally.errors)
        return found

    oldest = Oldest(root, root_fd, dev, dry_run=config.dry_run, budget=budget, abort=abort,
                    tally=tally, errors=errors)
    result = enforce(root, config.max_usage, first=first, rescan=rescan, oldest=oldest,
                     usage=lambda: disk_usage(root_fd))
    report.tally.merge(tally)
    if not result.met and not abort.is_set():
        report.run_errors[WATERMARK] += 1
    return result


def clean_roots(config: JobConfig, policy: Policy, now: float, abort: threading.Event,
                report: RunReport) -> bool:
    """Clean every root in turn; False if the run was cut short by `abort`."""
    budget = Budget(config.max_deletions)
    errors = ErrorLog()
    for root in config.roots:
        if abort.is_set():
            break
        clean_root(root, config, policy, now=now, abort=abort, budget=budget, errors=errors,
                   report=report)
    if budget.exhausted:
        report.run_errors[MAX_DELETIONS] += 1
        log.warning("cleanup stopped at the --max-deletions cap", extra=fields(
            max_deletions=config.max_deletions))
    return not abort.is_set()


# ---------------------------------------------------------------------------
# The async side
# ---------------------------------------------------------------------------


class Stopped(Exception):
    """The stop event came before the awaited thing finished."""


T = TypeVar("T")


async def unless_stopped(aw: Coroutine[Any, Any, T], stop: asyncio.Event) -> T:
    """Await `aw`, or cancel it and raise Stopped as soon as `stop` is set."""
    task = asyncio.ensure_future(aw)
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait([task, stopper], return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
        if not task.done():
            task.cancel()
        await asyncio.gather(task, stopper, return_exceptions=True)
    if task.cancelled():
        raise Stopped
    return task.result()


async def publishing_streams(srs_api: str, timeout: float) -> LiveStreams:
    """(app, stream) of every stream with an active publisher, all pages read."""
    # aiohttp is loaded only when --srs-api is set (0.15 s of a CronJob's start-up).
    from agents.srs.api import SrsApi  # noqa: PLC0415

    async with SrsApi(srs_api, timeout=timeout) as api:
        streams = await api.streams()
    return LiveStreams(frozenset((s.app, s.name) for s in streams if s.publish_active))


class CleanupJob:
    """Runs cleanup passes; one instance per process, used by --once and --schedule."""

    def __init__(self, config: JobConfig, metrics: CleanupMetrics,
                 lease: LeaseLock | None = None) -> None:
        self.config = config
        self.metrics = metrics
        self.lease = lease

    async def run(self, stop: asyncio.Event) -> RunReport:
        started = time.time()
        clock = time.monotonic()
        report = RunReport(started, self.config.dry_run, self.config.roots)
        try:
            if self.lease is None:
                await self._run(stop, report, None)
            else:
                await self._run_leased(stop, report, self.lease)
        finally:
            report.duration = time.monotonic() - clock
            self.metrics.record(report)
            log.info(report.summary(), extra=fields(report=report.to_dict()))
        return report

    async def _run_leased(self, stop: asyncio.Event, report: RunReport,
                          lease: LeaseLock) -> None:
        try:
            acquired = await unless_stopped(lease.acquire(), stop)
        except Stopped:
            report.run_errors[INTERRUPTED] += 1
            return
        except lease.errors as exc:
            log.error("cleanup cannot take its lease, nothing deleted", extra=fields(
                lease=lease.name, error=str(exc)))
            report.run_errors[LEASE] += 1
            return
        if not acquired:
            report.skipped = f"lease {lease.namespace}/{lease.name} is held by " \
                             f"{lease.holder or 'another cleaner'}"
            return
        lost = asyncio.Event()
        keeper = asyncio.create_task(lease.keep(lost))
        completed = False
        try:
            completed = await self._run(stop, report, lost)
        finally:
            keeper.cancel()
            await asyncio.gather(keeper, return_exceptions=True)
            if lost.is_set():
                if not completed:
                    report.run_errors[LEASE_LOST] += 1
            else:
                try:
                    await lease.release()
                except lease.errors as exc:
                    log.warning("lease not released, it will expire", extra=fields(
                        lease=lease.name, error=str(exc)))

    async def _run(self, stop: asyncio.Event, report: RunReport,
                   lost: asyncio.Event | None) -> bool:
        """The run proper; False if it did not get through every root."""
        policy = self.config.policy
        if self.config.srs_api:
            try:
                live = await unless_stopped(
                    publishing_streams(self.config.srs_api, self.config.srs_timeout), stop)
            except Stopped:
                report.run_errors[INTERRUPTED] += 1
                return False
            except AgentError as exc:
                # Without the list, no file can be shown not to be live: delete nothing.
                log.error("SRS API unreachable, nothing deleted this run", extra=fields(
                    srs_api=self.config.srs_api, error=str(exc)))
                report.run_errors[SRS_API] += 1
                return False
            report.live_streams = len(live.pairs)
            policy = policy.with_live(live)
        abort = threading.Event()

        async def watch(event: asyncio.Event) -> None:
            await event.wait()
            abort.set()

        watchers = [asyncio.create_task(watch(stop))]
        if lost is not None:
            watchers.append(asyncio.create_task(watch(lost)))
        try:
            completed = await asyncio.to_thread(
                clean_roots, self.config, policy, report.started, abort, report)
        finally:
            for task in watchers:
                task.cancel()
            await asyncio.gather(*watchers, return_exceptions=True)
        if not completed and stop.is_set():
            report.run_errors[INTERRUPTED] += 1
        return completed
