"""`srs-agent controller`: keeps the origin lists of SRS 4 to 6 origin clusters in step.

Edges list every origin (`vhost.cluster.origin`) and origins list their coworkers
(`vhost.cluster.coworkers`); this keeps both in step with the origins that are ready,
so scaling the origins needs no config edit. The SRS pods' sidecars then validate and
reload the new config. SRS 7 replaced the origin cluster with its proxy, which needs no
list: this is for SRS 4, 5 and 6.

It watches StatefulSets, Services and EndpointSlices (for the origins) and the
ConfigMaps it keeps, in the namespace. With --leader-elect (default) a replica writes only
while it holds the Lease --lease-name; the others keep their watches warm and take over
within seconds. On SIGTERM it releases the Lease and exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry

from agents.controller.origins import SelectorError, parse_selector
from agents.controller.targets import EDGE, ORIGIN, ROLE_LABEL, ROLES, Defaults
from agents.errors import ConfigError
from agents.runtime import lifecycle
from agents.runtime.logs import fields
from agents.settings import ControllerSettings

if TYPE_CHECKING:
    from agents.controller.sync import Controller
    from agents.kube.client import Kube
    from agents.kube.lease import LeaseLock

log = logging.getLogger("srs_agent.controller")

RETRY_PERIOD = 2.0  # how often a standby replica tries the Lease (client-go's retryPeriod)
RELEASE_TIMEOUT = 5.0


def plan(settings: ControllerSettings) -> tuple[Defaults, dict[str, str]]:
    """The flags checked together: (defaults for every ConfigMap, named ConfigMaps -> role)."""
    if settings.origin_statefulset and settings.origin_selector:
        raise ConfigError("--origin-statefulset and --origin-selector: give one of them "
                          "(a StatefulSet, or per-origin Services by label)")
    if settings.origin_selector:
        try:
            parse_selector(settings.origin_selector)
        except SelectorError as exc:
            raise ConfigError(f"--origin-selector: {exc}") from None
    if settings.edge_configmap and settings.edge_configmap == settings.origin_configmap:
        raise ConfigError("--edge-configmap and --origin-configmap name the same ConfigMap "
                          f"{settings.edge_configmap!r}")
    if not settings.config_key.strip():
        raise ConfigError("--config-key: expected the key holding srs.conf, e.g. srs.conf")
    if settings.leader_elect and settings.lease_duration < 3:
        raise ConfigError(f"--lease-duration: invalid value {settings.lease_duration:g}s: "
                          "expected 3s or more (the Lease is renewed every third of it)")
    named = {}
    if settings.edge_configmap:
        named[settings.edge_configmap] = EDGE
    if settings.origin_configmap:
        named[settings.origin_configmap] = ORIGIN
    defaults = Defaults(
        origin_statefulset=settings.origin_statefulset,
        origin_selector=settings.origin_selector,
        config_key=settings.config_key.strip(),
        rtmp_port=settings.rtmp_port,
        api_port=settings.api_port,
    )
    return defaults, named


def command(settings: ControllerSettings) -> int:
    defaults, named = plan(settings)
    from agents.kube.client import load  # noqa: PLC0415 - the client only where it is used

    kube = load(settings.namespace)
    try:
        return lifecycle.run(lambda stop: main(settings, defaults, named, kube, stop))
    finally:
        kube.close()


def _named(name: str) -> Callable[[dict[str, Any]], bool]:
    return lambda obj: obj["metadata"]["name"] == name


def _role_of(obj: dict[str, Any]) -> bool:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return labels.get(ROLE_LABEL) in ROLES


async def main(settings: ControllerSettings, defaults: Defaults, named: dict[str, str],
               kube: Kube, stop: asyncio.Event) -> int:
    import kubernetes  # noqa: PLC0415

    from agents.controller.events import ConfigMapEvents  # noqa: PLC0415
    from agents.controller.reconcile import ConfigMapWriter  # noqa: PLC0415
    from agents.controller.sync import Controller, ControllerMetrics, Stores  # noqa: PLC0415
    from agents.kube.client import pod_identity  # noqa: PLC0415
    from agents.kube.watch import Store, Watch, WatchEvent  # noqa: PLC0415
    from agents.runtime.ops import Health, OpsServer  # noqa: PLC0415

    namespace = kube.namespace
    identity = pod_identity(settings.pod_name)
    core = kubernetes.client.CoreV1Api(kube.api_client)
    apps = kubernetes.client.AppsV1Api(kube.api_client)
    discovery = kubernetes.client.DiscoveryV1Api(kube.api_client)

    if named:
        configmaps = [Store(f"configmap {name}", _named(name)) for name in named]
    else:
        configmaps = [Store("configmaps", _role_of)]
    stores = Stores(Store("statefulsets"), Store("services"), Store("endpointslices"),
                    configmaps)
    registry = CollectorRegistry()
    metrics = ControllerMetrics(registry)
    controller = Controller(
        stores, defaults, named, writer=ConfigMapWriter(kube, namespace),
        events=ConfigMapEvents(kube, identity), metrics=metrics, hold=settings.debounce)

    def feed(store: Store) -> Callable[[WatchEvent], None]:
        def on_event(event: WatchEvent) -> None:
            if store.apply(event):
                controller.changed()
        return on_event

    watches = [
        Watch("statefulsets", apps.list_namespaced_stateful_set, namespace,
              feed(stores.statefulsets)),
        Watch("services", core.list_namespaced_service, namespace, feed(stores.services)),
        Watch("endpointslices", discovery.list_namespaced_endpoint_slice, namespace,
              feed(stores.endpointslices)),
    ]
    if named:
        # One watch per name, so a Role can limit list/watch to these names.
        watches += [Watch(store.what, core.list_namespaced_config_map, namespace,
                          feed(store), field_selector=f"metadata.name={name}")
                    for name, store in zip(named, configmaps, strict=True)]
    else:
        watches.append(Watch("configmaps", core.list_namespaced_config_map, namespace,
                             feed(configmaps[0]), label_selector=ROLE_LABEL))

    health = Health()
    health.expect("sync")
    ops = OpsServer(settings.listen, [registry], health)

    def on_pass() -> None:
        health.set_ready("sync", True)

    lock = None
    if settings.leader_elect:
        from agents.kube.lease import LeaseLock  # noqa: PLC0415

        lock = LeaseLock(kube, settings.lease_name, namespace, identity,
                         duration=settings.lease_duration)
    log.info("controller starting", extra=fields(
        namespace=namespace, identity=identity,
        configmaps=",".join(f"{n} ({r})" for n, r in named.items()) or f"label {ROLE_LABEL}",
        origins=defaults.origin_statefulset or defaults.origin_selector or "from annotations",
        leader_elect=settings.leader_elect, debounce=settings.debounce))
    await ops.start()
    halt = asyncio.Event()  # stop, or a task ended: everything winds down
    tasks = [asyncio.create_task(w.run(halt), name=f"watch-{w.what}") for w in watches]
    tasks.append(asyncio.create_task(controller.run(halt, on_pass), name="reconcile"))
    elector = asyncio.create_task(elect(lock, controller, halt), name="leader-election")
    for task in [*tasks, elector]:
        health.watch(task.get_name(), task)
    stopper = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait([*tasks, elector, stopper], return_when=asyncio.FIRST_COMPLETED)
    finally:
        halt.set()
        stopper.cancel()
        try:
            await asyncio.wait_for(asyncio.shield(elector), RELEASE_TIMEOUT)
        except TimeoutError:
            log.warning("lease not released in time; it will expire")
            elector.cancel()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, elector, return_exceptions=True)
        await ops.stop()
    for task in [*tasks, elector]:
        if task.done() and not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]
    if not stop.is_set():
        log.error("a controller task ended on its own; exiting")
        return 1
    return 0


async def elect(lock: LeaseLock | None, controller: Controller, stop: asyncio.Event) -> None:
    """Lead while holding the Lease (always, without one); release it when `stop` is set."""
    if lock is None:
        controller.set_leading(True)
        await stop.wait()
        return
    where = f"{lock.namespace}/{lock.name}"
    while not stop.is_set():
        try:
            acquired = await lock.acquire()
        except lock.errors as exc:
            log.warning("cannot read the Lease; retrying", extra=fields(
                lease=where, error=str(exc)))
            acquired = False
        if not acquired:
            await _sleep(stop, RETRY_PERIOD)
            continue
        log.info("leading: this replica writes the ConfigMaps", extra=fields(
            lease=where, holder=lock.identity))
        lost = asyncio.Event()
        keeper = asyncio.create_task(lock.keep(lost))
        controller.set_leading(True)
        try:
            await _first(stop, lost)
        finally:
            controller.set_leading(False)
            keeper.cancel()
            await asyncio.gather(keeper, return_exceptions=True)
        if stop.is_set():
            try:
                await lock.release()
            except lock.errors as exc:
                log.warning("lease not released, it will expire", extra=fields(
                    lease=where, error=str(exc)))
            return
        log.warning("lost the Lease: standing by", extra=fields(lease=where))


async def _first(*events: asyncio.Event) -> None:
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
