"""The controller's loop: from what the watches hold to ConfigMaps in step, one pass at a time.

A pass runs when a watch changed something, when a down origin's hold ends, or when a
failed write is due again. It finds the ConfigMaps to keep (targets), decides each
origin set's list (origins.py), edits each ConfigMap's text (edit.py) and, if that
changes it and this replica leads, writes it (reconcile.py). A ConfigMap whose inputs
(its text, its target, its list) are the ones of the last pass is skipped: passes caused
by unrelated objects (other Services' EndpointSlices) cost no parse and no write.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

from agents.controller import edit as edits
from agents.controller.events import NORMAL, WARNING, ConfigMapEvents
from agents.controller.origins import (
    Debouncer,
    Decision,
    Observation,
    OriginSet,
    selector_origins,
    statefulset_origins,
)
from agents.controller.reconcile import (
    MISSING,
    REFUSED,
    UNCHANGED,
    UPDATED,
    ConfigMapWriter,
    WriteResult,
    key_text,
)
from agents.controller.targets import Defaults, Target, TargetError, target_of
from agents.kube.client import KubeConflict, KubeError, KubeForbidden
from agents.kube.watch import Store
from agents.runtime.backoff import Backoff
from agents.runtime.logs import fields

log = logging.getLogger("srs_agent.controller")

RESULTS = (UPDATED, UNCHANGED, REFUSED, MISSING, "no_origins", "conflict", "error")

UPDATED_REASON = "OriginsUpdated"
NO_ORIGINS_REASON = "NoReadyOrigins"
UNKNOWN_REASON = "OriginSetNotFound"


class ControllerMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.reconciles = Counter(
            "srs_controller_reconciles",
            "ConfigMap reconciles by result: updated (written), unchanged, invalid (left "
            "alone: it does not read, would not pass SRS's checks, or has nothing to edit), "
            "missing (no such ConfigMap), no_origins (no origin to list: left as it is), "
            "conflict (409, done again on a fresh read), error (API fault, retried).",
            ["result"], registry=registry)
        for result in RESULTS:
            self.reconciles.labels(result=result)
        self.origins = Gauge(
            "srs_controller_origins",
            "Origins the controller lists for each origin set (0 while none can be listed).",
            ["origin_set"], registry=registry)
        self.leader = Gauge(
            "srs_controller_leader", "1 while this replica holds the Lease and writes.",
            registry=registry)


@dataclass
class Stores:
    statefulsets: Store
    services: Store
    endpointslices: Store
    configmaps: list[Store]  # one per named ConfigMap, or one of every labelled one

    def all(self) -> list[Store]:
        return [self.statefulsets, self.services, self.endpointslices, *self.configmaps]

    def configmap(self, name: str) -> dict[str, Any] | None:
        for store in self.configmaps:
            found = store.get(name)
            if found is not None:
                return found
        return None

    def every_configmap(self) -> list[dict[str, Any]]:
        return [cm for store in self.configmaps for cm in store.values()]


@dataclass(frozen=True)
class Job:
    """One ConfigMap in one pass: what is known of it and what it should list."""

    name: str
    configmap: dict[str, Any] | None
    target: Target | None
    problem: str = ""  # TargetError: its metadata does not say how to keep it
    decision: Decision | None = None
    unknown: str = ""  # the origin set cannot be read (StatefulSet not found)


class Controller:
    def __init__(
        self,
        stores: Stores,
        defaults: Defaults,
        named: Mapping[str, str],
        *,
        writer: ConfigMapWriter,
        events: ConfigMapEvents,
        metrics: ControllerMetrics,
        hold: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stores = stores
        self.defaults = defaults
        self.named = dict(named)  # ConfigMap name -> role; empty: found by label
        self.writer = writer
        self.events = events
        self.metrics = metrics
        self.hold = hold
        self.clock = clock
        self.leading = False
        self.dirty = asyncio.Event()
        self.passes = 0
        self._debouncers: dict[OriginSet, Debouncer] = {}
        self._settled: dict[str, tuple[Any, ...]] = {}
        self._wake_at: float | None = None
        self._retry_at: float | None = None
        self._backoff = Backoff(first=0.5, cap=30.0)

    # -- inputs --------------------------------------------------------------------

    def changed(self) -> None:
        """A watch changed a store: run a pass soon."""
        self.dirty.set()

    def set_leading(self, leading: bool) -> None:
        self.leading = leading
        self.metrics.leader.set(1 if leading else 0)
        self._settled.clear()  # a new leader checks every ConfigMap again
        self.dirty.set()

    @property
    def synced(self) -> bool:
        return all(store.synced for store in self.stores.all())

    # -- the loop ------------------------------------------------------------------

    async def run(self, stop: asyncio.Event, on_pass: Callable[[], None] | None = None) -> None:
        stopper = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                wake = min((t for t in (self._wake_at, self._retry_at) if t is not None),
                           default=None)
                timeout = None if wake is None else max(0.0, wake - self.clock())
                waiter = asyncio.ensure_future(self.dirty.wait())
                try:
                    await asyncio.wait([waiter, stopper], timeout=timeout,
                                       return_when=asyncio.FIRST_COMPLETED)
                finally:
                    waiter.cancel()
                if stop.is_set():
                    return
                self.dirty.clear()
                if not self.synced:
                    continue
                await self.reconcile()
                if on_pass is not None:
                    on_pass()
        finally:
            stopper.cancel()

    # -- one pass ------------------------------------------------------------------

    def _observe(self, origins: OriginSet) -> Observation:
        if origins.kind == "statefulset":
            return statefulset_origins(self.stores.statefulsets.get(origins.name),
                                       self.stores.endpointslices.values())
        assert origins.selector is not None
        return selector_origins(origins.selector, self.stores.services.values(),
                                self.stores.endpointslices.values())

    def plan(self, now: float) -> list[Job]:
        """Every ConfigMap to keep, with the list each should hold now."""
        found: list[tuple[str, dict[str, Any] | None, str | None]]
        if self.named:
            found = [(name, self.stores.configmap(name), role)
                     for name, role in self.named.items()]
        else:
            found = [(str(cm["metadata"]["name"]), cm, None)
                     for cm in self.stores.every_configmap()]
        jobs: list[Job] = []
        kept: list[tuple[str, dict[str, Any], Target]] = []
        for name, cm, role in sorted(found, key=lambda item: item[0]):
            if cm is None:
                jobs.append(Job(name, None, None))
                continue
            try:
                kept.append((name, cm, target_of(cm, self.defaults, role)))
            except TargetError as exc:
                jobs.append(Job(name, cm, None, problem=str(exc)))
        decided: dict[OriginSet, tuple[Decision | None, str]] = {}
        for name, cm, target in kept:
            if target.origins not in decided:
                observation = self._observe(target.origins)
                if observation.problem:
                    decided[target.origins] = (None, observation.problem)
                else:
                    if target.origins not in self._debouncers:
                        # Seen anew (a start, a new leader's first look): what the
                        # ConfigMaps list counts as listed, so a down origin is held.
                        before = [host for _, other, t in kept if t.origins == target.origins
                                  for host in edits.listed_hosts(key_text(other, t.key), t)]
                        self._debouncers[target.origins] = Debouncer(self.hold, before)
                    debouncer = self._debouncers[target.origins]
                    decided[target.origins] = (debouncer.update(observation.origins, now), "")
            decision, unknown = decided[target.origins]
            jobs.append(Job(name, cm, target, decision=decision, unknown=unknown))
        jobs.sort(key=lambda job: job.name)
        for gone in set(self._debouncers) - set(decided):
            del self._debouncers[gone]
            self.metrics.origins.remove(str(gone))
        self._wake_at = None
        for origins, (decision, _) in decided.items():
            listed = 0 if decision is None or decision.starved else len(decision.hosts)
            self.metrics.origins.labels(origin_set=str(origins)).set(listed)
            if decision is not None and decision.wake_at is not None:
                self._wake_at = min(self._wake_at or decision.wake_at, decision.wake_at)
        return jobs

    async def reconcile(self) -> None:
        now = self.clock()
        jobs = self.plan(now)
        self.passes += 1
        if not self.leading:
            return
        names = {job.name for job in jobs}
        for name in set(self._settled) - names:
            del self._settled[name]
        outcomes = await asyncio.gather(*(self._sync(job) for job in jobs))
        if any(not ok for ok in outcomes):
            self._retry_at = self.clock() + self._backoff.next()
        else:
            self._retry_at = None
            self._backoff.reset()

    def _settle(self, job: Job, key: tuple[Any, ...], result: str) -> bool:
        """Count `result` once per new state of the job's inputs; False if already done."""
        if self._settled.get(job.name) == key:
            return False
        self._settled[job.name] = key
        self.metrics.reconciles.labels(result=result).inc()
        return True

    async def _sync(self, job: Job) -> bool:
        """Bring one ConfigMap in step; False when it should be tried again later."""
        cm, target, decision = job.configmap, job.target, job.decision
        if cm is None:
            if self._settle(job, ("missing",), MISSING):
                log.warning("ConfigMap not found; waiting for it", extra=fields(
                    configmap=job.name))
            return True
        if target is None:
            if self._settle(job, ("target", job.problem, cm.get("metadata")), REFUSED):
                log.warning("ConfigMap left alone", extra=fields(
                    configmap=job.name, problem=job.problem))
                await self.events.emit(cm, edits.NOT_EDITABLE, job.problem)
            return True
        if decision is None:
            message = f"{target.origins}: {job.unknown}; {target.directive} left as it is"
            if self._settle(job, ("unknown", target, job.unknown), "no_origins"):
                log.warning("origins unknown", extra=fields(configmap=job.name,
                                                            origin_set=str(target.origins),
                                                            problem=job.unknown))
                await self.events.emit(cm, UNKNOWN_REASON, message)
            return True
        if decision.starved:
            message = (f"no origin of {target.origins} is ready; {target.directive} left as "
                       "it is")
            if self._settle(job, ("starved", target), "no_origins"):
                log.warning("no ready origins; the list stays", extra=fields(
                    configmap=job.name, origin_set=str(target.origins)))
                await self.events.emit(cm, NO_ORIGINS_REASON, message)
            return True
        hosts = decision.hosts
        where = f"{job.name}/{target.key}"
        cached = key_text(cm, target.key)
        key = ("edit", target, hosts, cached)
        if self._settled.get(job.name) == key:
            return True
        planned = edits.edit_config(cached, target, hosts, where)
        if planned.problem:
            self._settle(job, key, REFUSED)
            log.warning("ConfigMap left alone", extra=fields(
                configmap=job.name, problem=planned.problem))
            await self.events.emit(cm, planned.reason, planned.problem)
            return True
        if planned.text is None:
            self._settle(job, key, UNCHANGED)
            return True
        try:
            result = await self.writer.update(
                job.name, target.key, lambda text: edits.edit_config(text, target, hosts, where))
        except (KubeError, KubeForbidden) as exc:
            conflict = isinstance(exc, KubeConflict)
            self.metrics.reconciles.labels(result="conflict" if conflict else "error").inc()
            log.warning("ConfigMap not written; will retry", extra=fields(
                configmap=job.name, error=str(exc)))
            return False
        if result.conflicts:
            self.metrics.reconciles.labels(result="conflict").inc(result.conflicts)
        await self._report(job, target, hosts, result)
        return True

    async def _report(self, job: Job, target: Target, hosts: tuple[str, ...],
                      result: WriteResult) -> None:
        written = key_text(result.configmap, target.key) if result.configmap else None
        self._settled[job.name] = ("edit", target, hosts, written)
        self.metrics.reconciles.labels(result=result.outcome).inc()
        if result.outcome == UPDATED and result.configmap is not None:
            log.info("ConfigMap updated", extra=fields(
                configmap=job.name, directive=target.directive, hosts=" ".join(hosts),
                origin_set=str(target.origins), conflicts=result.conflicts))
            await self.events.emit(
                result.configmap, UPDATED_REASON,
                f"{target.directive} set to {len(hosts)} origins of {target.origins}: "
                f"{' '.join(hosts)}", NORMAL)
        elif result.outcome == REFUSED and result.configmap is not None:
            log.warning("ConfigMap left alone", extra=fields(
                configmap=job.name, problem=result.edit.problem))
            await self.events.emit(result.configmap, result.edit.reason, result.edit.problem,
                                   WARNING)
        elif result.outcome == MISSING:
            log.warning("ConfigMap not found; waiting for it", extra=fields(
                configmap=job.name))
