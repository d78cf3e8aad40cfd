"""The one module that imports the official `kubernetes` client.

It blocks, so every call goes through `Kube.call_json`, which runs it in a thread and
turns the client's exceptions into ours. Commands import this module only when they
talk to the API (cleanup only with --leader-elect), so the others stay small.

`Kube.request` makes a request on the client's configured pool directly (auth, TLS
and token refresh included) and blocks: the reload agent's ConfigMap watch and pod
Events use it from their own threads, without the generated API classes (CoreV1Api
alone costs ~20 MB of memory, more than the rest of that agent).
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlencode

import kubernetes
import urllib3

from agents.errors import ConfigError, PermanentError, RetryableError

SERVICE_ACCOUNT_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
CONNECT_TIMEOUT = 10.0  # of `Kube.request`
READ_TIMEOUT = 30.0


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

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


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

    def request(
        self, method: str, path: str, *, query: Mapping[str, str] | None = None,
        body: Any = None, read_timeout: float = READ_TIMEOUT,
    ) -> Any:
        """The urllib3 response, not yet read (blocks). A status >= 400 raises what
        `call_json` raises for it (KubeError or a subclass, KubeForbidden); connection
        faults raise urllib3's HTTPError or OSError."""
        url = str(self.api_client.configuration.host).rstrip("/") + path
        if query:
            url += "?" + urlencode(query)
        headers = {"Accept": "application/json", **self.api_client.default_headers}
        for auth in self.api_client.configuration.auth_settings().values():  # token, refreshed
            if auth.get("in") == "header" and auth.get("value"):
                headers[auth["key"]] = auth["value"]
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        resp = self.api_client.rest_client.pool_manager.request(
            method, url, body=data, headers=headers, preload_content=False, retries=False,
            timeout=urllib3.Timeout(connect=CONNECT_TIMEOUT, read=read_timeout),
        )
        if resp.status >= 400:
            text = resp.read()
            resp.release_conn()
            raise _error(resp.status, str(resp.reason or ""), text)
        return resp

    def request_json(self, method: str, path: str, body: Any = None) -> Any:
        """`request`, its reply read and parsed (blocks); ValueError if it is not JSON."""
        resp = self.request(method, path, body=body)
        try:
            return json.loads(resp.read())
        finally:
            resp.release_conn()

    def close(self) -> None:
        self.api_client.close()


def _translate(exc: Any, what: str) -> Exception:
    status = int(exc.status) if exc.status else None
    return _error(status, str(exc.reason or ""), exc.body, f"Kubernetes API {what}: ")


def _error(
    status: int | None, reason: str, body: Any, prefix: str = "",
) -> KubeError | KubeForbidden:
    """The error for an API server's error status; its message names the status and the
    message the server's Status object carries."""
    message = f"{prefix}HTTP {status} {reason}".rstrip()
    try:
        doc = json.loads(body) if body else {}
        if isinstance(doc, dict) and doc.get("message"):
            message += f": {doc['message']}"
    except ValueError:
        pass
    if status == 409:
        return KubeConflict(message, status)
    if status == 404:
        return KubeNotFound(message, status)
    if status in (401, 403):
        return KubeForbidden(message, status)
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
