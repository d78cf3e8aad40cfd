"""A coordination.k8s.io/v1 Lease as a lock: acquire, renew, release.

The record follows client-go's leader election (holderIdentity, leaseDurationSeconds,
acquireTime, renewTime, leaseTransitions), so `kubectl get lease` reads the same.
A lease is free when it has no holder or its holder has not renewed it within
leaseDurationSeconds by our clock (keep node clocks in sync: NTP skew must stay well
under the duration). Every write carries the resourceVersion that was read, so two
candidates racing for the same lease cannot both win: the API server answers the
loser 409 Conflict. Writes are JSON merge patches.

Why not file locks: the guide's NFS volume is mounted `nolock`, so flock/fcntl locks
are local to each node and would let two cleaners in at once.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agents.kube.client import Kube, KubeConflict, KubeError, KubeForbidden, KubeNotFound
from agents.runtime.logs import fields

log = logging.getLogger("srs_agent.lease")

DEFAULT_DURATION = 15.0  # client-go's default leaseDuration
MERGE_PATCH = "application/merge-patch+json"

Clock = Callable[[], dt.datetime]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def micro_time(moment: dt.datetime) -> str:
    """RFC 3339 with exactly six fractional digits, as the API server's MicroTime wants."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: Any) -> dt.datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


@dataclass(frozen=True)
class LeaseRecord:
    holder: str
    duration: float
    renew_time: dt.datetime | None
    acquire_time: dt.datetime | None
    transitions: int
    resource_version: str | None


def parse_lease(doc: Any) -> LeaseRecord:
    """A Lease object (plain JSON) -> its record; missing fields read as empty."""
    doc = doc if isinstance(doc, dict) else {}
    spec = doc.get("spec") or {}
    meta = doc.get("metadata") or {}
    duration = spec.get("leaseDurationSeconds")
    transitions = spec.get("leaseTransitions")
    return LeaseRecord(
        holder=str(spec.get("holderIdentity") or ""),
        duration=float(duration) if isinstance(duration, int | float) else 0.0,
        renew_time=parse_time(spec.get("renewTime")),
        acquire_time=parse_time(spec.get("acquireTime")),
        transitions=transitions if isinstance(transitions, int) else 0,
        resource_version=meta.get("resourceVersion") or None,
    )


def state(record: LeaseRecord, identity: str, now: dt.datetime) -> str:
    """'ours', 'free' (no holder, or expired) or 'held' (by another, live)."""
    if not record.holder:
        return "free"
    if record.holder == identity:
        return "ours"
    if record.renew_time is None:
        return "free"
    if now >= record.renew_time + dt.timedelta(seconds=record.duration):
        return "free"
    return "held"


class LeaseLock:
    """One Lease used as a lock by one identity. Not thread-safe; use from one task."""

    # What acquire/renew/release raise when the API fails; callers catch these.
    errors: tuple[type[Exception], ...] = (KubeError, KubeForbidden)

    def __init__(self, kube: Kube, name: str, namespace: str, identity: str, *,
                 duration: float = DEFAULT_DURATION, clock: Clock = utcnow) -> None:
        self.kube = kube
        self.name = name
        self.namespace = namespace
        self.identity = identity
        self.duration = duration
        self.clock = clock
        self.holder = ""  # the holder last seen
        self._api = kube.coordination()

    def _spec(self, now: dt.datetime, record: LeaseRecord | None) -> dict[str, Any]:
        taking_over = record is None or record.holder != self.identity
        spec: dict[str, Any] = {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": max(1, round(self.duration)),
            "renewTime": micro_time(now),
        }
        if taking_over:
            spec["acquireTime"] = micro_time(now)
            # As client-go: every change of holder counts, a take-over after a release too.
            spec["leaseTransitions"] = record.transitions + 1 if record else 0
        return spec

    async def _read(self) -> LeaseRecord | None:
        try:
            doc = await self.kube.call_json(
                self._api.read_namespaced_lease, self.name, self.namespace)
        except KubeNotFound:
            return None
        return parse_lease(doc)

    async def _write(self, record: LeaseRecord, spec: dict[str, Any]) -> LeaseRecord | None:
        """Merge-patch the lease, guarded by the resourceVersion read; None on conflict."""
        body: dict[str, Any] = {"spec": spec}
        if record.resource_version:
            body["metadata"] = {"resourceVersion": record.resource_version}
        try:
            doc = await self.kube.call_json(
                self._api.patch_namespaced_lease, self.name, self.namespace, body,
                _content_type=MERGE_PATCH)
        except (KubeConflict, KubeNotFound):
            return None
        return parse_lease(doc)

    async def acquire(self) -> bool:
        """One attempt: True if we hold the lease now (taken, or already ours)."""
        now = self.clock()
        record = await self._read()
        if record is None:
            # Newer clients turn a create body into their model and back, printing times
            # with isoformat(), which drops the fraction at microsecond 0 and then fails
            # the API server's MicroTime parsing: never hand them microsecond 0.
            now = now if now.microsecond else now + dt.timedelta(microseconds=1)
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": self._spec(now, None),
            }
            try:
                doc = await self.kube.call_json(
                    self._api.create_namespaced_lease, self.namespace, body)
            except KubeConflict:  # another candidate created it first
                record = await self._read()
                self.holder = record.holder if record else ""
                return False
            self.holder = parse_lease(doc).holder
            return self.holder == self.identity
        verdict = state(record, self.identity, now)
        if verdict == "held":
            self.holder = record.holder
            return False
        written = await self._write(record, self._spec(now, record))
        if written is None:
            return False
        self.holder = written.holder
        if verdict == "free":
            log.info("lease acquired", extra=fields(
                lease=f"{self.namespace}/{self.name}", holder=self.identity,
                previous_holder=record.holder or None))
        return written.holder == self.identity

    async def renew(self) -> bool:
        """Extend our hold; False if the lease is no longer ours (lost)."""
        record = await self._read()
        if record is None or record.holder != self.identity:
            self.holder = record.holder if record else ""
            return False
        written = await self._write(record, self._spec(self.clock(), record))
        if written is None:
            return False
        self.holder = written.holder
        return written.holder == self.identity

    async def release(self) -> None:
        """Give the lease up at once (no waiting for expiry), if it is still ours."""
        record = await self._read()
        if record is None or record.holder != self.identity:
            return
        now = self.clock()
        spec = {"holderIdentity": "", "leaseDurationSeconds": 1, "renewTime": micro_time(now)}
        if await self._write(record, spec) is not None:
            self.holder = ""
            log.info("lease released", extra=fields(lease=f"{self.namespace}/{self.name}",
                                                    holder=self.identity))

    async def keep(self, lost: asyncio.Event) -> None:
        """Renew every third of the duration until cancelled; set `lost` if the hold ends.

        The hold ends when another holder shows up, or when no renewal has succeeded
        for two thirds of the duration (client-go's renew deadline), since others may
        take the lease once it expires.
        """
        interval = self.duration / 3
        deadline = self.duration * 2 / 3
        loop = asyncio.get_running_loop()
        last_ok = loop.time()
        while True:
            await asyncio.sleep(interval)
            try:
                if not await self.renew():
                    log.warning("lease lost", extra=fields(
                        lease=f"{self.namespace}/{self.name}", holder=self.holder or None))
                    lost.set()
                    return
                last_ok = loop.time()
            except (KubeError, KubeForbidden) as exc:
                if loop.time() - last_ok >= deadline:
                    log.warning("lease not renewed in time", extra=fields(
                        lease=f"{self.namespace}/{self.name}", error=str(exc)))
                    lost.set()
                    return
                log.info("lease renewal failed, will retry", extra=fields(
                    lease=f"{self.namespace}/{self.name}", error=str(exc)))
