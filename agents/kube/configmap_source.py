"""API mode: follow one ConfigMap through the Kubernetes API, hand each version to asyncio.

The official client blocks, so a daemon thread reads the ConfigMap, then watches it
from that resourceVersion (a blocking read: nothing polls), and passes every version to
the event loop with `call_soon_threadsafe`. On 410 Gone it reads again; on any other
fault it backs off (0.2 s doubling to 10 s) and resumes; it never gives up. Stopping
shuts the watch's socket down, so the thread ends at once.

The client supplies what is hard to get right (in-cluster or kubeconfig credentials,
TLS, token refresh: `agents.kube.client.load`) and its connection pool; the two
requests are made on that pool directly (`KubeHttp`): the generated CoreV1Api class
alone costs ~20 MB of memory, more than the rest of the agent.

RBAC: get and watch on that one ConfigMap (resourceNames: the watch names it with a
metadata.name field selector), create on events.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from agents.errors import ConfigError, RetryableError
from agents.reload_gate import Backoff
from agents.runtime.logs import fields

log = logging.getLogger("srs_agent.kube.configmap")

WATCH_SECONDS = 600  # the API server ends each watch after this; we then resume it
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 30.0

ClientFactory = Callable[[], tuple[Any, str]]  # -> (kubernetes ApiClient, namespace)


class KubeApiError(RetryableError):
    """The API server answered with an error status."""

    def __init__(self, status: int, reason: str, body: bytes) -> None:
        self.status = status
        message = ""
        with contextlib.suppress(ValueError, AttributeError):
            message = str(json.loads(body).get("message") or "")
        super().__init__(f"HTTP {status} {reason}" + (f": {message}" if message else ""))


class KubeHttp:
    """JSON requests on a kubernetes ApiClient's configured pool (auth, TLS included)."""

    def __init__(self, api_client: Any) -> None:
        self.api_client = api_client
        self.configuration = api_client.configuration

    def request(
        self, method: str, path: str, *, query: Mapping[str, str] | None = None,
        body: Any = None, read_timeout: float = READ_TIMEOUT,
    ) -> Any:
        """The urllib3 response, not yet read; KubeApiError for a status >= 400."""
        import urllib3  # noqa: PLC0415

        url = str(self.configuration.host).rstrip("/") + path
        if query:
            url += "?" + urlencode(query)
        headers = {"Accept": "application/json", **self.api_client.default_headers}
        for auth in self.configuration.auth_settings().values():  # token, refreshed
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
            raise KubeApiError(resp.status, str(resp.reason or ""), text)
        return resp

    def json(self, method: str, path: str, body: Any = None) -> Any:
        resp = self.request(method, path, body=body)
        try:
            return json.loads(resp.read())
        finally:
            resp.release_conn()


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


def _lines(resp: Any) -> Iterator[bytes]:
    """Lines of a watch stream as they arrive (chunk by chunk, never waiting for more)."""
    buffer = b""
    for chunk in resp.stream(amt=None, decode_content=True):
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            if line.strip():
                yield line
    if buffer.strip():
        yield buffer  # the last event of a stream that ends without a newline


def default_factory(namespace: str) -> ClientFactory:
    def load() -> tuple[Any, str]:
        from agents.kube import client  # noqa: PLC0415 - only API mode pays for the client

        kube = client.load(namespace)
        return kube.api_client, kube.namespace

    return load


class ConfigMapSource:
    """Watches ConfigMap `name`; calls `on_version` on the event loop for each version."""

    def __init__(
        self,
        name: str,
        namespace: str,
        on_version: Callable[[ConfigMapVersion], None],
        client_factory: ClientFactory | None = None,
    ) -> None:
        self.name = name
        self.namespace = namespace
        self._on_version = on_version
        self._factory = client_factory or default_factory(namespace)
        self._stopping = threading.Event()
        self._resp: Any = None
        self._resp_lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def where(self) -> str:
        return f"ConfigMap {self.namespace}/{self.name}"

    async def run(self, stop: asyncio.Event) -> None:
        """Follow the ConfigMap until `stop` is set; a crash of the thread is raised here."""
        loop = asyncio.get_running_loop()
        ended: asyncio.Future[None] = loop.create_future()

        def deliver(version: ConfigMapVersion) -> None:
            loop.call_soon_threadsafe(self._on_version, version)

        def body() -> None:
            try:
                self._follow(deliver)
            except BaseException as exc:  # noqa: BLE001 - re-raised by run() on the loop
                loop.call_soon_threadsafe(_set_exception, ended, exc)
            else:
                loop.call_soon_threadsafe(_set_result, ended)

        self._thread = threading.Thread(target=body, name=f"watch-configmap-{self.name}",
                                        daemon=True)
        self._thread.start()
        stopper: asyncio.Future[Any] = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait([ended, stopper], return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopper.cancel()
            self.close()
        if ended.done():
            ended.result()

    def close(self) -> None:
        """Make the thread end now: flag it, and shut the watch socket down under it."""
        self._stopping.set()
        with self._resp_lock:
            resp = self._resp
        if resp is not None:
            _shutdown(resp)

    def read_once(self) -> ConfigMapVersion:
        """One read of the ConfigMap (for `--once`); ConfigError if it cannot be read."""
        from urllib3.exceptions import HTTPError  # noqa: PLC0415

        http = self._connect()
        try:
            obj = http.json("GET", self._object_path())
        except KubeApiError as exc:
            what = "does not exist" if exc.status == 404 else f"cannot be read: {exc}"
            raise ConfigError(f"--source configmap/{self.name}: {self.where} {what}") from None
        except (HTTPError, OSError, ValueError) as exc:
            raise ConfigError(
                f"--source configmap/{self.name}: {self.where} cannot be read: {exc}"
            ) from None
        return ConfigMapVersion(self.name, decode_data(obj),
                                str((obj.get("metadata") or {}).get("resourceVersion", "")),
                                time.monotonic())

    # -- the thread --------------------------------------------------------------

    def _connect(self) -> KubeHttp:
        """The API client; the namespace becomes the one the client config says if unset."""
        api_client, namespace = self._factory()
        self.namespace = self.namespace or namespace
        return KubeHttp(api_client)

    def _collection_path(self) -> str:
        return f"/api/v1/namespaces/{quote(self.namespace, safe='')}/configmaps"

    def _object_path(self) -> str:
        return f"{self._collection_path()}/{quote(self.name, safe='')}"

    def _follow(self, deliver: Callable[[ConfigMapVersion], None]) -> None:
        from urllib3.exceptions import HTTPError  # noqa: PLC0415

        backoff = Backoff(first=0.2, cap=10.0)
        http = self._connect()
        resource_version: str | None = None
        while not self._stopping.is_set():
            try:
                if resource_version is None:
                    resource_version = self._fetch(http, deliver)
                    log.info("read ConfigMap", extra=fields(
                        configmap=self.where, resource_version=resource_version))
                query = {"fieldSelector": f"metadata.name={self.name}", "watch": "true",
                         "allowWatchBookmarks": "true", "timeoutSeconds": str(WATCH_SECONDS)}
                if resource_version:
                    query["resourceVersion"] = resource_version
                resp = http.request("GET", self._collection_path(), query=query,
                                    read_timeout=WATCH_SECONDS + 60.0)
                with self._resp_lock:
                    self._resp = resp
                if self._stopping.is_set():
                    return
                try:
                    resource_version = self._stream(resp, resource_version, deliver, backoff)
                finally:
                    with self._resp_lock:
                        self._resp = None
                    resp.release_conn()
            except KubeApiError as exc:
                if exc.status == 410:
                    log.info("watch expired (410 Gone); reading the ConfigMap again",
                             extra=fields(configmap=self.where))
                    resource_version = None
                    continue
                self._pause(backoff, str(exc))
            except (HTTPError, OSError, ValueError) as exc:
                if self._stopping.is_set():
                    return
                self._pause(backoff, f"{type(exc).__name__}: {exc}")

    def _fetch(self, http: KubeHttp, deliver: Callable[[ConfigMapVersion], None]) -> str:
        """GET the ConfigMap (RBAC: get, no list needed) and hand it over; the
        resourceVersion to watch from ("" if it does not exist: watch from now)."""
        try:
            obj = http.json("GET", self._object_path())
        except KubeApiError as exc:
            if exc.status != 404:
                raise
            deliver(ConfigMapVersion(self.name, None, "", time.monotonic()))
            return ""
        rv = str((obj.get("metadata") or {}).get("resourceVersion") or "")
        deliver(ConfigMapVersion(self.name, decode_data(obj), rv, time.monotonic()))
        return rv

    def _stream(
        self, resp: Any, resource_version: str | None,
        deliver: Callable[[ConfigMapVersion], None], backoff: Backoff,
    ) -> str | None:
        """Read watch events until the stream ends; the resourceVersion to resume from,
        or None to read again (410 Gone)."""
        for line in _lines(resp):
            now = time.monotonic()
            event = json.loads(line)
            kind = event.get("type")
            obj = event.get("object") or {}
            if kind == "ERROR":
                if obj.get("code") == 410:
                    log.info("watch expired (410 Gone); reading the ConfigMap again",
                             extra=fields(configmap=self.where))
                    return None
                raise ValueError(f"watch error: {obj.get('code')} {obj.get('message')}")
            backoff.reset()
            meta = obj.get("metadata") or {}
            rv = str(meta.get("resourceVersion") or "")
            if rv:
                resource_version = rv
            if kind == "BOOKMARK" or meta.get("name") != self.name:
                continue
            if kind in ("ADDED", "MODIFIED"):
                deliver(ConfigMapVersion(self.name, decode_data(obj), rv, now))
            elif kind == "DELETED":
                deliver(ConfigMapVersion(self.name, None, rv, now))
        return resource_version

    def _pause(self, backoff: Backoff, reason: str) -> None:
        delay = backoff.next()
        log.warning("Kubernetes API fault; retrying", extra=fields(
            configmap=self.where, reason=reason, retry_in=round(delay, 2)))
        self._stopping.wait(delay)


def _shutdown(resp: Any) -> None:
    shutdown = getattr(resp, "shutdown", None)
    if shutdown is not None:
        shutdown()  # urllib3 >= 2.3: unblocks a read in another thread
    else:
        resp.close()


def _set_result(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _set_exception(future: asyncio.Future[None], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)
