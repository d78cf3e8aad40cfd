"""The one module that imports the official `kubernetes` client.

It blocks, so every call goes through `Kube.call`, which runs it in a thread and
turns the client's exceptions into ours. Commands import this module only when they
talk to the API (cleanup only with --leader-elect), so the others stay small.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from typing import Any

import kubernetes
import urllib3

from agents.errors import ConfigError, PermanentError, RetryableError

SERVICE_ACCOUNT_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"


class KubeError(RetryableError):
    """The API server could not be reached, or answered with an error status."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class KubeConflict(KubeError):
    """409: the object changed since we read it (or already exists)."""


class KubeNotFound(KubeError):
    """404: no such object."""


class KubeForbidden(PermanentError):
    """401/403: the service account may not do this; RBAC must change."""


class Kube:
    """An API client and the namespace to work in."""

    def __init__(self, api_client: Any, namespace: str, request_timeout: float = 10.0) -> None:
        self.api_client = api_client
        self.namespace = namespace
        self.request_timeout = request_timeout

    def coordination(self) -> Any:
        return kubernetes.client.CoordinationV1Api(self.api_client)

    async def call_json(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run one blocking client call in a thread; return the reply's JSON as plain data.

        Plain JSON keeps callers free of the client's model classes, which differ
        between client versions.
        """
        kwargs.setdefault("_request_timeout", self.request_timeout)
        kwargs["_preload_content"] = False
        what = getattr(fn, "__name__", "call")
        try:
            response = await asyncio.to_thread(fn, *args, **kwargs)
        except kubernetes.client.ApiException as exc:
            raise _translate(exc, what) from None
        except urllib3.exceptions.HTTPError as exc:
            raise KubeError(f"Kubernetes API unreachable ({what}): {exc}") from None
        data = response.data
        try:
            return json.loads(data) if data else None
        except ValueError:
            raise KubeError(f"Kubernetes API {what}: reply is not JSON") from None

    def close(self) -> None:
        self.api_client.close()


def _translate(exc: Any, what: str) -> Exception:
    status = int(exc.status) if exc.status else None
    message = f"Kubernetes API {what}: HTTP {status} {exc.reason or ''}".rstrip()
    try:
        body = json.loads(exc.body) if exc.body else {}
        if isinstance(body, dict) and body.get("message"):
            message += f": {body['message']}"
    except ValueError:
        pass
    if status == 409:
        return KubeConflict(message, status)
    if status == 404:
        return KubeNotFound(message, status)
    if status in (401, 403):
        return KubeForbidden(message)
    return KubeError(message, status)


def load(namespace: str = "", request_timeout: float = 10.0) -> Kube:
    """In-cluster config (service account) first, else the kubeconfig; ConfigError if none.

    The namespace is `namespace` if given, else the service account's, else the
    kubeconfig context's, else "default".
    """
    configuration = kubernetes.client.Configuration()
    context_namespace = ""
    try:
        kubernetes.config.load_incluster_config(  # type: ignore[no-untyped-call]
            client_configuration=configuration)
    except kubernetes.config.ConfigException as in_cluster:
        try:
            kubernetes.config.load_kube_config(  # type: ignore[no-untyped-call]
                client_configuration=configuration)
            _, active = kubernetes.config.list_kube_config_contexts()  # type: ignore[no-untyped-call]
            context_namespace = str((active or {}).get("context", {}).get("namespace") or "")
        except (kubernetes.config.ConfigException, OSError) as kubeconfig:
            raise ConfigError(
                "Kubernetes API: no in-cluster service account "
                f"({in_cluster}) and no usable kubeconfig ({kubeconfig})"
            ) from None
    if not namespace:
        namespace = _service_account_namespace() or context_namespace or "default"
    api_client = kubernetes.client.ApiClient(configuration)
    return Kube(api_client, namespace, request_timeout)


def _service_account_namespace() -> str:
    try:
        with open(SERVICE_ACCOUNT_NAMESPACE, encoding="utf-8") as f:
            return f.read().strip()
    except OSError:
        return ""


def pod_identity(pod_name: str) -> str:
    """Who holds a Lease: the pod's name, else host name and pid (unique per process)."""
    if pod_name:
        return pod_name
    return f"{os.uname().nodename}_{os.getpid()}"
