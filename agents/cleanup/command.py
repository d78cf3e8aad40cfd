"""`srs-agent cleanup`: `--once` for a CronJob, or `--schedule CRON` as a long-running daemon.

--once runs one pass, prints a summary line, pushes metrics to --pushgateway if set,
and exits 0 when nothing failed, 1 otherwise (a skipped run, another cleaner holding
the lease, is not a failure). --schedule serves /metrics, /healthz and /readyz on
--listen and runs at each time of the cron expression in --timezone, logging the
next run time.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import zoneinfo
from dataclasses import dataclass
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, pushadd_to_gateway

from agents.cleanup import schedule
from agents.cleanup.job import CleanupJob, CleanupMetrics, JobConfig, RunReport
from agents.cleanup.policy import Policy
from agents.errors import ConfigError
from agents.runtime import lifecycle
from agents.runtime.logs import fields
from agents.settings import CleanupSettings

if TYPE_CHECKING:
    from agents.kube.lease import LeaseLock

log = logging.getLogger("srs_agent.cleanup")

PUSH_JOB = "srs_cleanup"
PUSH_TIMEOUT = 10.0
MAX_SLEEP = 60.0  # re-read the wall clock at least this often while waiting for a run


@dataclass(frozen=True)
class Plan:
    config: JobConfig
    cron: schedule.Cron | None
    tz: zoneinfo.ZoneInfo | None


def plan(settings: CleanupSettings) -> Plan:
    """Check the settings together, before anything runs; ConfigError names the flag."""
    if settings.once == bool(settings.schedule):
        raise ConfigError(
            "--once and --schedule: give exactly one of them (--once for a CronJob, "
            "--schedule CRON for a long-running Deployment)")
    cron = tz = None
    if settings.schedule:
        cron, tz = schedule.parse_settings(settings.schedule, settings.timezone)
        try:
            schedule.next_run(cron, dt.datetime.now(dt.UTC), tz)
        except schedule.CronError as exc:
            raise ConfigError(f"--schedule: {exc}") from None
    if settings.pushgateway and not settings.once:
        raise ConfigError("--pushgateway: only with --once (the --schedule mode serves "
                          "/metrics on --listen)")
    if not settings.roots:
        raise ConfigError("--roots: give at least one directory to clean")
    policy = Policy(settings.patterns, settings.protect, settings.older_than)
    config = JobConfig(
        roots=settings.roots,
        policy=policy,
        dry_run=settings.dry_run,
        max_deletions=settings.max_deletions,
        max_usage=settings.max_usage,
        concurrency=settings.concurrency,
        srs_api=settings.srs_api,
        srs_timeout=settings.srs_timeout,
    )
    return Plan(config, cron, tz)


def make_lease(settings: CleanupSettings) -> LeaseLock:
    # The Kubernetes client is loaded only with --leader-elect (DESIGN: import it only
    # where the API is used).
    from agents.kube.client import load, pod_identity  # noqa: PLC0415
    from agents.kube.lease import LeaseLock  # noqa: PLC0415

    kube = load(settings.namespace)
    return LeaseLock(kube, settings.lease_name, kube.namespace, pod_identity(settings.pod_name))


def command(settings: CleanupSettings) -> int:
    the_plan = plan(settings)
    lease = make_lease(settings) if settings.leader_elect else None
    if settings.older_than == 0 and not settings.srs_api:
        log.warning("--older-than 0 without --srs-api deletes the files of live streams too")
    try:
        return lifecycle.run(lambda stop: main(settings, the_plan, lease, stop))
    finally:
        if lease is not None:
            lease.kube.close()


async def main(settings: CleanupSettings, the_plan: Plan, lease: LeaseLock | None,
               stop: asyncio.Event) -> int:
    registry = CollectorRegistry()
    metrics = CleanupMetrics(registry)
    job = CleanupJob(the_plan.config, metrics, lease)
    config = the_plan.config
    log.info("cleanup configured", extra=fields(
        mode="once" if the_plan.cron is None else "schedule", roots=list(config.roots),
        patterns=list(config.policy.patterns), protect=list(config.policy.protect),
        older_than_seconds=config.policy.older_than, dry_run=config.dry_run,
        max_deletions=config.max_deletions, max_usage_percent=config.max_usage or None,
        concurrency=config.concurrency, srs_api=config.srs_api or None,
        lease=f"{lease.namespace}/{lease.name}" if lease else None))
    if the_plan.cron is None or the_plan.tz is None:
        return await once(settings, job, metrics, stop)
    return await daemon(settings, job, registry, cron=the_plan.cron, tz=the_plan.tz, stop=stop)


async def once(settings: CleanupSettings, job: CleanupJob, metrics: CleanupMetrics,
               stop: asyncio.Event) -> int:
    report = await job.run(stop)
    print(report.summary(), flush=True)
    code = 0 if report.ok else 1
    if settings.pushgateway and report.skipped:
        log.info("nothing pushed to the Pushgateway: the run was skipped (the lease holder "
                 "pushes its own)")
    elif settings.pushgateway:
        # POST replaces only the metrics sent: a run that did not succeed leaves out
        # last_success, so the Pushgateway keeps the time of the last one that did.
        if metrics.last_success_value() is None:
            metrics.registry.unregister(metrics.last_success)
        grouping = {"lease": settings.lease_name}
        try:
            await asyncio.to_thread(pushadd_to_gateway, settings.pushgateway, job=PUSH_JOB,
                                    registry=metrics.registry, grouping_key=grouping,
                                    timeout=PUSH_TIMEOUT)
        except OSError as exc:  # urllib's URLError and HTTPError are OSErrors
            log.error("metrics not pushed to the Pushgateway", extra=fields(
                pushgateway=settings.pushgateway, error=str(exc)))
            return 1
        log.info("metrics pushed to the Pushgateway", extra=fields(
            pushgateway=settings.pushgateway, job=PUSH_JOB, **grouping))
    return code


async def daemon(settings: CleanupSettings, job: CleanupJob, registry: CollectorRegistry, *,
                 cron: schedule.Cron, tz: zoneinfo.ZoneInfo, stop: asyncio.Event) -> int:
    # aiohttp (behind the ops server) costs a CronJob's --once start-up 0.15 s: load it
    # only for the long-running mode.
    from agents.runtime.ops import Health, OpsServer  # noqa: PLC0415

    health = Health()
    ops = OpsServer(settings.listen, [registry], health)
    await ops.start()
    try:
        loop = asyncio.create_task(run_on_schedule(job, cron, tz, stop))
        health.watch("schedule", loop)
        health.set_ready("schedule", True)
        await loop
    finally:
        await ops.stop()
    return 0


async def run_on_schedule(job: CleanupJob, cron: schedule.Cron, tz: zoneinfo.ZoneInfo,
                          stop: asyncio.Event) -> list[RunReport]:
    """Run at every time of `cron` until `stop`; a run in progress is aborted, not cut off."""
    reports: list[RunReport] = []
    while not stop.is_set():
        due = schedule.next_run(cron, dt.datetime.now(dt.UTC), tz)
        log.info("next cleanup run at %s", due.astimezone(tz).isoformat(), extra=fields(
            next_run=due.astimezone(tz).isoformat(), next_run_utc=due.isoformat(),
            schedule=cron.text, timezone=str(tz)))
        if not await sleep_until(due, stop):
            break
        reports.append(await job.run(stop))
        del reports[:-1]  # only the last one is kept, for tests and debugging
    return reports


async def sleep_until(due: dt.datetime, stop: asyncio.Event) -> bool:
    """Wait for the wall-clock time `due`; False if `stop` came first.

    Waits in slices, so a clock step (NTP, a suspended VM) is noticed within a minute.
    """
    while True:
        remaining = (due - dt.datetime.now(dt.UTC)).total_seconds()
        if remaining <= 0:
            return True
        try:
            await asyncio.wait_for(stop.wait(), timeout=min(remaining, MAX_SLEEP))
            return False
        except TimeoutError:
            continue
