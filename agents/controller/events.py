"""Events on the ConfigMaps the controller changes or refuses to change.

`kubectl describe configmap srs-edge-config` then shows what happened to it: the origin
list written, or why it was left alone. The Event is named as client-go's recorder names
its own (`<object>.<hex nanoseconds>`). Emitting never raises: an Event that cannot be
created is logged and dropped. The same reason and message on the same ConfigMap is sent
again only after REPEAT_AFTER seconds.

RBAC: create on events.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from agents.kube.client import Kube, KubeError, KubeForbidden
from agents.runtime.logs import fields

log = logging.getLogger("srs_agent.controller.events")

COMPONENT = "srs-agent-controller"
MESSAGE_LIMIT = 1024  # the API server rejects longer Event messages
REPEAT_AFTER = 600.0

NORMAL = "Normal"
WARNING = "Warning"


def event_body(obj: Mapping[str, Any], *, reason: str, message: str, event_type: str,
               instance: str, now: datetime) -> dict[str, Any]:
    """A core/v1 Event about `obj` (a ConfigMap, as JSON)."""
    meta = obj.get("metadata") or {}
    name, namespace = str(meta.get("name") or ""), str(meta.get("namespace") or "")
    if len(message) > MESSAGE_LIMIT:
        message = message[: MESSAGE_LIMIT - 3] + "..."
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    involved = {"apiVersion": "v1", "kind": "ConfigMap", "name": name, "namespace": namespace}
    for key in ("uid", "resourceVersion"):
        if meta.get(key):
            involved[key] = str(meta[key])
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{name}.{time.time_ns():x}", "namespace": namespace},
        "involvedObject": involved,
        "reason": reason,
        "message": message,
        "type": event_type,
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
        "reportingInstance": instance,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }


class ConfigMapEvents:
    def __init__(self, kube: Kube, instance: str,
                 clock: Callable[[], float] = time.monotonic) -> None:
        import kubernetes  # noqa: PLC0415 - the client loads with the controller only

        self.kube = kube
        self.instance = instance
        self.clock = clock
        self._core = kubernetes.client.CoreV1Api(kube.api_client)
        self._last: dict[tuple[str, str, str], float] = {}

    async def emit(self, obj: Mapping[str, Any], reason: str, message: str,
                   event_type: str = WARNING) -> None:
        meta = obj.get("metadata") or {}
        name, namespace = str(meta.get("name") or ""), str(meta.get("namespace") or "")
        key = (name, reason, message)
        now = self.clock()
        last = self._last.get(key)
        if last is not None and now - last < REPEAT_AFTER:
            return
        self._last[key] = now
        if len(self._last) > 1000:
            self._last = {k: t for k, t in self._last.items() if now - t < REPEAT_AFTER}
        body = event_body(obj, reason=reason, message=message, event_type=event_type,
                          instance=self.instance, now=datetime.now(UTC))
        try:
            await self.kube.call_json(self._core.create_namespaced_event,
                                      namespace or self.kube.namespace, body)
        except (KubeError, KubeForbidden) as exc:
            log.warning("cannot create Event on ConfigMap", extra=fields(
                configmap=name, reason=reason, error=str(exc),
                hint="RBAC needs create on events"))
