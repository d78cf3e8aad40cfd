"""API mode: follow one ConfigMap through the Kubernetes API, hand each version to asyncio.

The official client blocks, so a daemon thread (`ThreadedWatch`) reads the ConfigMap,
then watches it from that resourceVersion (a blocking read: nothing polls), and passes
every version to the event loop with `call_soon_threadsafe`. On 410 Gone it reads
again; on any other fault it backs off (0.2 s doubling to 10 s) and resumes; it never
gives up. Stopping shuts the watch's socket down, so the thread ends at once.

The client supplies what is hard to get right (in-cluster or kubeconfig credentials,
TLS, token refresh: `agents.kube.client.load`) and its connection pool; the two
requests are made on that pool directly (`Kube.request`): the generated CoreV1Api
class alone costs ~20 MB of memory, more than the rest of the agent.

RBAC: get and watch on that one ConfigMap (resourceNames: the watch names it with a
metadata.name field selector), create on events.
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from agents.errors import ConfigError
from agents.kube.watch import GoneError, ThreadedWatch, resource_version_of, watch_events
from agents.runtime.backoff import Backoff
from agents.runtime.logs import fields

if TYPE_CHECKING:
    from agents.kube.client import Kube

log = logging.getLogger("srs_agent.kube.configmap")

WATCH_SECONDS = 600  # the API server ends each watch after this; we then resume it

ClientFactory = Callable[[], "Kube"]  # loads the client: credentials, namespace


@dataclass(frozen=True)
class ConfigMapVersion:
    """One version of the ConfigMap; `data` None when it was deleted."""

    name: str
    data: dict[str, bytes] | None
    resource_version: str
    received_at: float  # time.monotonic() when the API's answer was read


def decode_data(obj: dict[str, Any]) -> dict[str, bytes]:
    """A ConfigMap's `data` (text) and `binaryData` (base64) as file contents."""
    files = {key: str(value).encode() for key, value in (obj.get("data") or {}).items()}
    for key, value in (obj.get("binaryData") or {}).items():
        files[key] = base64.b64decode(value)
    return files


def default_factory(namespace: str) -> ClientFactory:
    def load() -> Kube:
        from agents.kube import client  # noqa: PLC0415 - only API mode pays for the client

        return client.load(namespace)

    return load


class ConfigMapSource(ThreadedWatch[ConfigMapVersion]):
    """Watches ConfigMap `name`; calls `on_version` on the event loop for each version."""

    _log = log

    def __init__(
        self,
        name: str,
        namespace: str,
        on_version: Callable[[ConfigMapVersion], None],
        client_factory: ClientFactory | None = None,
    ) -> None:
        super().__init__(f"watch-configmap-{name}", on_version)
        self.name = name
        self.namespace = namespace
        self._factory = client_factory or default_factory(namespace)

    @property
    def where(self) -> str:
        return f"ConfigMap {self.namespace}/{self.name}"

    def read_once(self) -> ConfigMapVersion:
        """One read of the ConfigMap (for `--once`); ConfigError if it cannot be read."""
        from urllib3.exceptions import HTTPError  # noqa: PLC0415

        from agents.kube.client import KubeError, KubeForbidden, KubeNotFound  # noqa: PLC0415

        kube = self._connect()
        try:
            obj = kube.request_json("GET", self._object_path())
        except KubeNotFound:
            raise ConfigError(
                f"--source configmap/{self.name}: {self.where} does not exist") from None
        except (KubeError, KubeForbidden, HTTPError, OSError, ValueError) as exc:
            raise ConfigError(
                f"--source configmap/{self.name}: {self.where} cannot be read: {exc}"
            ) from None
        return ConfigMapVersion(self.name, decode_data(obj),
                                str((obj.get("metadata") or {}).get("resourceVersion", "")),
                                time.monotonic())

    # -- the thread --------------------------------------------------------------

    def _connect(self) -> Kube:
        """The API client; the namespace becomes the one the client config says if unset."""
        kube = self._factory()
        self.namespace = self.namespace or kube.namespace
        return kube

    def _collection_path(self) -> str:
        return f"/api/v1/namespaces/{quote(self.namespace, safe='')}/configmaps"

    def _object_path(self) -> str:
        return f"{self._collection_path()}/{quote(self.name, safe='')}"

    def _follow(self, deliver: Callable[[ConfigMapVersion], None]) -> None:
        from urllib3.exceptions import HTTPError  # noqa: PLC0415

        from agents.kube.client import KubeError, KubeForbidden  # noqa: PLC0415

        backoff = Backoff(first=0.2, cap=10.0)
        kube = self._connect()
        resource_version: str | None = None
        while not self._stopping.is_set():
            try:
                if resource_version is None:
                    resource_version = self._fetch(kube, deliver)
                    log.info("read ConfigMap", extra=fields(
                        configmap=self.where, resource_version=resource_version))
                query = {"fieldSelector": f"metadata.name={self.name}", "watch": "true",
                         "allowWatchBookmarks": "true", "timeoutSeconds": str(WATCH_SECONDS)}
                if resource_version:
                    query["resourceVersion"] = resource_version
                resp = kube.request("GET", self._collection_path(), query=query,
                                    read_timeout=WATCH_SECONDS + 60.0)
                with self._streaming(resp):
                    if self._stopping.is_set():
                        return
                    resource_version = self._stream(resp, resource_version, deliver, backoff)
            except GoneError:
                self._gone()
                resource_version = None
            except (KubeError, KubeForbidden) as exc:
                if exc.status == 410:
                    self._gone()
                    resource_version = None
                    continue
                self._pause(backoff, str(exc), configmap=self.where)
            except (HTTPError, OSError, ValueError) as exc:
                if self._stopping.is_set():
                    return
                self._pause(backoff, f"{type(exc).__name__}: {exc}", configmap=self.where)

    def _gone(self) -> None:
        log.info("watch expired (410 Gone); reading the ConfigMap again",
                 extra=fields(configmap=self.where))

    def _fetch(self, kube: Kube, deliver: Callable[[ConfigMapVersion], None]) -> str:
        """GET the ConfigMap (RBAC: get, no list needed) and hand it over; the
        resourceVersion to watch from ("" if it does not exist: watch from now)."""
        from agents.kube.client import KubeNotFound  # noqa: PLC0415

        try:
            obj = kube.request_json("GET", self._object_path())
        except KubeNotFound:
            deliver(ConfigMapVersion(self.name, None, "", time.monotonic()))
            return ""
        rv = resource_version_of(obj)
        deliver(ConfigMapVersion(self.name, decode_data(obj), rv, time.monotonic()))
        return rv

    def _stream(
        self, resp: Any, resource_version: str | None,
        deliver: Callable[[ConfigMapVersion], None], backoff: Backoff,
    ) -> str | None:
        """Read watch events until the stream ends; the resourceVersion to resume from.
        GoneError on 410 Gone (read again)."""
        for received_at, kind, obj in watch_events(resp, backoff):
            meta = obj.get("metadata") or {}
            rv = resource_version_of(obj)
            if rv:
                resource_version = rv
            if kind == "BOOKMARK" or meta.get("name") != self.name:
                continue
            if kind in ("ADDED", "MODIFIED"):
                deliver(ConfigMapVersion(self.name, decode_data(obj), rv, received_at))
            elif kind == "DELETED":
                deliver(ConfigMapVersion(self.name, None, rv, received_at))
        return resource_version
