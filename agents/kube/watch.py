"""List, then watch, one kind of object through the Kubernetes API; hand changes to asyncio.

The official client blocks, so a daemon thread lists the objects (page by page), then
watches from the list's resourceVersion, and passes what it reads to the event loop with
`call_soon_threadsafe`: a `Listed` with every object, then one `Changed` per watch event.
A watch the server ends (its timeout) is resumed from the last resourceVersion seen; on
410 Gone the thread lists again, and the new `Listed` replaces what was known, so
objects deleted meanwhile disappear. Any other fault: back off (0.2 s doubling to 10 s)
and resume; it never gives up. Stopping shuts the watch's socket down, so the thread
ends at once. `Store` keeps the objects on the loop's side.

RBAC: list and watch on the kind. With `field_selector="metadata.name=NAME"` a Role may
limit both to that name (resourceNames).

`ThreadedWatch` is the thread-to-asyncio part alone (the thread, its stop, the socket
shut down under it, the backoff pause, the parsing of the watch stream); the reload
agent's `ConfigMapSource` follows its ConfigMap with it too, by GET then WATCH.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from agents.runtime.backoff import Backoff
from agents.runtime.logs import fields

log = logging.getLogger("srs_agent.kube.watch")

WATCH_SECONDS = 300  # asked of the server per watch; the watch is then resumed
CONNECT_TIMEOUT = 10.0
PAGE_SIZE = 500

Object = dict[str, Any]
T = TypeVar("T")


@dataclass(frozen=True)
class Listed:
    """Every object there is, as of one list: replaces what was known."""

    items: list[Object]


@dataclass(frozen=True)
class Changed:
    """One watch event: `kind` is ADDED, MODIFIED or DELETED."""

    kind: str
    obj: Object


WatchEvent = Listed | Changed


def name_of(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name") or "")


class Store:
    """The objects of one watch by name, on the event loop's side.

    `accept` filters again what the server should already have filtered (selectors),
    so a server that ignores a selector cannot feed in objects of no interest.
    """

    def __init__(self, what: str, accept: Callable[[Object], bool] | None = None) -> None:
        self.what = what
        self.accept = accept or (lambda obj: True)
        self.objects: dict[str, Object] = {}
        self.synced = False

    def apply(self, event: WatchEvent) -> bool:
        """Take one event in; True when what the store holds changed (or it synced)."""
        if isinstance(event, Listed):
            fresh = {name_of(o): o for o in event.items if name_of(o) and self.accept(o)}
            changed = fresh != self.objects or not self.synced
            self.objects, self.synced = fresh, True
            return changed
        name = name_of(event.obj)
        if not name:
            return False
        if event.kind == "DELETED" or not self.accept(event.obj):
            return self.objects.pop(name, None) is not None
        if self.objects.get(name) == event.obj:
            return False
        self.objects[name] = event.obj
        return True

    def get(self, name: str) -> Object | None:
        return self.objects.get(name)

    def values(self) -> list[Object]:
        return list(self.objects.values())


class GoneError(Exception):
    """410 Gone: the resourceVersion is too old (or a list's continue token expired)."""


class ThreadedWatch(Generic[T]):
    """A daemon thread that follows the API and hands what it reads to the event loop.

    Subclasses write `_follow(deliver)`, the blocking loop run in the thread; it ends
    when `_stopping` is set, and reads each watch stream inside `_streaming(resp)`, so
    that `close()` can shut the stream's socket down under a blocked read.
    """

    _log = log  # where `_pause` logs; a subclass names its own logger

    def __init__(self, thread_name: str, receive: Callable[[T], None]) -> None:
        self._thread_name = thread_name
        self._receive = receive
        self._stopping = threading.Event()
        self._resp: Any = None
        self._resp_lock = threading.Lock()

    async def run(self, stop: asyncio.Event) -> None:
        """Follow until `stop` is set; a crash of the thread is raised here."""
        loop = asyncio.get_running_loop()
        ended: asyncio.Future[None] = loop.create_future()

        def deliver(item: T) -> None:
            loop.call_soon_threadsafe(self._receive, item)

        def body() -> None:
            try:
                self._follow(deliver)
            except BaseException as exc:  # noqa: BLE001 - re-raised by run() on the loop
                loop.call_soon_threadsafe(_settle, ended, exc)
            else:
                loop.call_soon_threadsafe(_settle, ended, None)

        thread = threading.Thread(target=body, name=self._thread_name, daemon=True)
        thread.start()
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

    # -- the thread --------------------------------------------------------------

    def _follow(self, deliver: Callable[[T], None]) -> None:
        raise NotImplementedError

    @contextlib.contextmanager
    def _streaming(self, resp: Any) -> Iterator[Any]:
        """Hold `resp` where `close()` finds it while the thread reads it; release it after."""
        with self._resp_lock:
            self._resp = resp
        try:
            yield resp
        finally:
            with self._resp_lock:
                self._resp = None
            resp.release_conn()

    def _pause(self, backoff: Backoff, reason: str, **place: str) -> None:
        delay = backoff.next()
        self._log.warning("Kubernetes API fault; retrying", extra=fields(
            **place, reason=reason, retry_in=round(delay, 2)))
        self._stopping.wait(delay)


def watch_events(resp: Any, backoff: Backoff) -> Iterator[tuple[float, str, Object]]:
    """(time.monotonic() when read, type, object) of each event of a watch stream.

    Raises GoneError for an ERROR event with code 410, ValueError for any other ERROR
    event or a line that is not JSON; resets `backoff` at each good event.
    """
    for line in _lines(resp):
        received_at = time.monotonic()
        event = json.loads(line)
        kind = event.get("type")
        obj = event.get("object") or {}
        if kind == "ERROR":
            if obj.get("code") == 410:
                raise GoneError()
            raise ValueError(f"watch error: {obj.get('code')} {obj.get('message')}")
        backoff.reset()
        yield received_at, kind, obj


def resource_version_of(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


class Watch(ThreadedWatch[WatchEvent]):
    """Follows one kind in one namespace; calls `on_event` on the event loop.

    `list_fn` is the client's list call for the kind, e.g.
    `CoreV1Api(api_client).list_namespaced_config_map`; it is called with
    `_preload_content=False`, so no model classes are built.
    """

    def __init__(
        self,
        what: str,
        list_fn: Callable[..., Any],
        namespace: str,
        on_event: Callable[[WatchEvent], None],
        *,
        label_selector: str = "",
        field_selector: str = "",
        watch_seconds: int = WATCH_SECONDS,
    ) -> None:
        super().__init__(f"watch-{what}", on_event)
        self.what = what
        self.list_fn = list_fn
        self.namespace = namespace
        self.selectors: dict[str, str] = {}
        if label_selector:
            self.selectors["label_selector"] = label_selector
        if field_selector:
            self.selectors["field_selector"] = field_selector
        self.watch_seconds = watch_seconds

    # -- the thread --------------------------------------------------------------

    def _follow(self, deliver: Callable[[WatchEvent], None]) -> None:
        from kubernetes.client.exceptions import ApiException  # noqa: PLC0415
        from urllib3.exceptions import HTTPError  # noqa: PLC0415

        backoff = Backoff(first=0.2, cap=10.0)
        where = f"{self.what} in namespace {self.namespace}"
        resource_version: str | None = None
        while not self._stopping.is_set():
            try:
                if resource_version is None:
                    items, resource_version = self._list()
                    deliver(Listed(items))
                    log.info("listed", extra=fields(
                        watch=where, objects=len(items), resource_version=resource_version))
                started = time.monotonic()
                resource_version, events = self._watch(resource_version, deliver, backoff)
                if not events and time.monotonic() - started < 1.0:
                    # A watch the server ends at once, with nothing in it: do not spin.
                    self._pause(backoff, "watch ended at once", watch=where)
            except GoneError:
                log.info("watch expired (410 Gone); listing again", extra=fields(watch=where))
                resource_version = None
            except ApiException as exc:
                if exc.status == 410:
                    log.info("watch expired (410 Gone); listing again",
                             extra=fields(watch=where))
                    resource_version = None
                    continue
                self._pause(backoff, f"HTTP {exc.status} {exc.reason}", watch=where)
            except (HTTPError, OSError, ValueError) as exc:
                if self._stopping.is_set():
                    return
                self._pause(backoff, f"{type(exc).__name__}: {exc}", watch=where)

    def _list(self) -> tuple[list[Object], str]:
        """Every object, page by page; (objects, resourceVersion of the list)."""
        items: list[Object] = []
        token = ""
        while True:
            extra = {"_continue": token} if token else {}
            resp = self.list_fn(
                self.namespace, limit=PAGE_SIZE, _preload_content=False,
                _request_timeout=(CONNECT_TIMEOUT, 60.0), **self.selectors, **extra,
            )
            page = json.loads(resp.data)
            items.extend(page.get("items") or [])
            meta = page.get("metadata") or {}
            token = str(meta.get("continue") or "")
            if not token:
                return items, str(meta.get("resourceVersion") or "")

    def _watch(
        self, resource_version: str, deliver: Callable[[WatchEvent], None], backoff: Backoff,
    ) -> tuple[str, int]:
        """One watch until the server ends it; (resourceVersion to resume from, events)."""
        resp = self.list_fn(
            self.namespace, watch=True, resource_version=resource_version or None,
            allow_watch_bookmarks=True, timeout_seconds=self.watch_seconds,
            _preload_content=False,
            _request_timeout=(CONNECT_TIMEOUT, self.watch_seconds + 30.0),
            **self.selectors,
        )
        events = 0
        with self._streaming(resp):
            if self._stopping.is_set():
                return resource_version, events
            for _, kind, obj in watch_events(resp, backoff):
                events += 1
                rv = resource_version_of(obj)
                if rv:
                    resource_version = rv
                if kind in ("ADDED", "MODIFIED", "DELETED"):
                    deliver(Changed(kind, obj))
            return resource_version, events


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


def _shutdown(resp: Any) -> None:
    shutdown = getattr(resp, "shutdown", None)
    if shutdown is not None:
        shutdown()  # urllib3 >= 2.3: unblocks a read in another thread
    else:
        resp.close()


def _settle(future: asyncio.Future[None], exc: BaseException | None) -> None:
    if future.done():
        return
    if exc is None:
        future.set_result(None)
    else:
        future.set_exception(exc)
