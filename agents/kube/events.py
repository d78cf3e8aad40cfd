"""Kubernetes Events on the agent's own pod (core/v1), so `kubectl describe pod` shows
why a config change was not applied.

The Kubernetes client is imported at the first Event, not before: an agent whose
config never goes wrong never pays its memory. Emitting never raises: an Event that
cannot be created is logged and dropped (RBAC missing, API down); the reload goes on.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from agents.runtime.logs import fields

if TYPE_CHECKING:
    from agents.kube.client import Kube
    from agents.kube.configmap_source import ClientFactory

log = logging.getLogger("srs_agent.kube.events")

COMPONENT = "srs-agent"
MESSAGE_LIMIT = 1024  # the API server rejects longer Event messages
REPEAT_AFTER = 300.0  # the same reason+message again only after this many seconds


def event_body(
    namespace: str, pod_name: str, *, reason: str, message: str, event_type: str,
    now: datetime,
) -> dict[str, Any]:
    """A core/v1 Event about the pod, as JSON."""
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    micro = now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if len(message) > MESSAGE_LIMIT:
        message = message[: MESSAGE_LIMIT - 3] + "..."
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{pod_name}.", "namespace": namespace},
        "involvedObject": {"apiVersion": "v1", "kind": "Pod", "name": pod_name,
                           "namespace": namespace},
        "reason": reason,
        "message": message,
        "type": event_type,
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
        "reportingInstance": pod_name,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "eventTime": micro,
        "action": "Reload",
        "count": 1,
    }


SERVICE_ACCOUNT_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"


def has_api_access(token_path: str = SERVICE_ACCOUNT_TOKEN) -> bool:
    """Whether an API server is configured (in a pod with a service account token, or a
    kubeconfig), without importing the client. A pod that mounts no token (volume mode,
    `automountServiceAccountToken: false`) has none, though KUBERNETES_SERVICE_HOST is set."""
    if os.environ.get("KUBERNETES_SERVICE_HOST") and os.path.isfile(token_path):
        return True
    paths = os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
    return any(os.path.isfile(p) for p in paths.split(os.pathsep) if p)


def client_factory(namespace: str) -> ClientFactory:
    """Loads the client at the first Event (in-cluster config, else the kubeconfig)."""
    from agents.kube.configmap_source import default_factory  # noqa: PLC0415 - no client yet

    return default_factory(namespace)


class PodEvents:
    """Creates Events on one pod; `enabled` is False without a pod name or API access."""

    def __init__(self, pod_name: str, client_factory: ClientFactory | None) -> None:
        self.pod_name = pod_name
        self._factory = client_factory
        self._client: Kube | None = None
        self._lock = threading.Lock()
        self._last: dict[tuple[str, str], float] = {}

    @property
    def enabled(self) -> bool:
        return bool(self.pod_name) and self._factory is not None

    async def emit(self, reason: str, message: str, event_type: str = "Warning") -> None:
        """Create the Event in a daemon thread (the client blocks) and return at once:
        an Event is best effort, and an unreachable API server must hold up neither the
        reload nor the agent's exit."""
        if not self.enabled:
            return
        key = (reason, message)
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < REPEAT_AFTER:
            return
        self._last[key] = now
        threading.Thread(target=self._create, args=(reason, message, event_type),
                         name="pod-event", daemon=True).start()

    def _create(self, reason: str, message: str, event_type: str) -> None:
        from urllib.parse import quote  # noqa: PLC0415

        from urllib3.exceptions import HTTPError  # noqa: PLC0415

        from agents.errors import ConfigError  # noqa: PLC0415
        from agents.kube.client import KubeError, KubeForbidden  # noqa: PLC0415

        try:
            with self._lock:
                if self._client is None:
                    assert self._factory is not None
                    self._client = self._factory()
            kube = self._client
            body = event_body(kube.namespace, self.pod_name, reason=reason, message=message,
                              event_type=event_type, now=datetime.now(UTC))
            kube.request_json(
                "POST", f"/api/v1/namespaces/{quote(kube.namespace, safe='')}/events", body)
        except (KubeError, KubeForbidden) as exc:
            log.warning("cannot create Event on pod: %s", exc,
                        extra=fields(pod=self.pod_name, reason=reason,
                                     hint="RBAC needs create on events"))
        except (ConfigError, HTTPError, OSError, ValueError) as exc:
            log.warning("cannot create Event on pod: %s", exc,
                        extra=fields(pod=self.pod_name, reason=reason))
        else:
            log.info("Event created on pod", extra=fields(pod=self.pod_name, reason=reason))
