"""A small HTTP/1.1 server on asyncio streams, for the ops endpoints.

Why not aiohttp.web: its modules cost 2.2 MB of RSS in every SRS pod's sidecar (the
sidecar's budget is 40 MB), for three read-only GETs. This serves exactly that, with
the limits a port that Prometheus and the kubelet reach over the network needs:

- the request head (request line and headers) is at most `max_head` bytes (431
  beyond), and must arrive within `head_timeout` of the connection opening;
- an idle keep-alive connection is closed after `keepalive_timeout`; a response the
  client does not read within `write_timeout` is dropped with the connection (reset);
- at most `max_connections` are open at once; at the cap a new connection takes the
  place of the longest-idle keep-alive one (so idle clients cannot lock the kubelet's
  probes out), and is closed unanswered only when none is idle;
- no request bodies: a request announcing one is answered and the connection closed,
  so no body bytes are ever taken for the next request;
- anything but HTTP/1.0 and 1.1, well-formed headers and (for 1.1, as RFC 9112 asks)
  a Host header is refused with 400 or 505; so is a target that is not a path (RFC
  9112 would have the absolute form accepted too: no client sends it to a pod's port).

Parsing is pure (`parse_head`), apart from the connection loop.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from agents.runtime.logs import fields

log = logging.getLogger("srs_agent.ops")

MAX_HEAD = 8192
HEAD_TIMEOUT = 10.0
KEEPALIVE_TIMEOUT = 75.0  # what aiohttp.web, which served these endpoints before, keeps
WRITE_TIMEOUT = 30.0
MAX_CONNECTIONS = 64

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_VERSION = re.compile(r"HTTP/(\d)\.(\d)")
_REASONS = {
    200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
    408: "Request Timeout", 431: "Request Header Fields Too Large",
    500: "Internal Server Error", 505: "HTTP Version Not Supported",
}


class BadRequest(Exception):
    """A request head this server refuses; `status` is the answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Request:
    """A parsed request head; the server never reads a body."""

    method: str
    path: str  # the target without its query
    query: str
    version: tuple[int, int]
    headers: dict[str, str]  # lower-cased names

    @property
    def keep_alive(self) -> bool:
        tokens = {t.strip().lower() for t in self.headers.get("connection", "").split(",")}
        if self.version >= (1, 1):
            return "close" not in tokens
        return "keep-alive" in tokens

    @property
    def has_body(self) -> bool:
        length = self.headers.get("content-length", "0").strip()
        return "transfer-encoding" in self.headers or length != "0"


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def text(cls, status: int, text: str) -> Response:
        return cls(status, text.encode())


def parse_head(head: bytes) -> Request:
    """Parse a request head ending in CRLF CRLF; BadRequest says what is wrong."""
    try:
        text = head.decode("ascii")
    except UnicodeDecodeError:
        raise BadRequest(400, "request head is not ASCII") from None
    lines = text.split("\r\n")
    while lines and not lines[-1]:
        lines.pop()
    if not lines:
        raise BadRequest(400, "empty request")
    parts = lines[0].split(" ")
    if len(parts) != 3:
        raise BadRequest(400, "request line is not METHOD TARGET VERSION")
    method, target, version_text = parts
    if not _TOKEN.fullmatch(method):
        raise BadRequest(400, "method is not a token")
    version = _VERSION.fullmatch(version_text)
    if version is None:
        raise BadRequest(400, "not an HTTP version")
    major, minor = int(version[1]), int(version[2])
    if major != 1:
        raise BadRequest(505, "only HTTP/1.0 and HTTP/1.1 are served")
    if not target.startswith("/"):
        raise BadRequest(400, "target is not a path")
    path, _, query = target.partition("?")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon or not _TOKEN.fullmatch(name):  # also refuses obs-fold and "Name :"
            raise BadRequest(400, "malformed header line")
        key = name.lower()
        value = value.strip(" \t")
        if key in headers:
            if key in ("content-length", "host", "transfer-encoding"):
                raise BadRequest(400, f"{name} given twice")
            value = f"{headers[key]}, {value}"
        headers[key] = value
    if (major, minor) >= (1, 1) and "host" not in headers:
        raise BadRequest(400, "HTTP/1.1 request without Host")
    length = headers.get("content-length")
    if length is not None and not length.isdigit():
        raise BadRequest(400, "Content-Length is not a number")
    return Request(method, path, query, (major, minor), headers)


def render_head(response: Response, *, keep_alive: bool) -> bytes:
    """The status line and headers; the body is written after it as it is (no copy)."""
    reason = _REASONS.get(response.status, "")
    lines = [f"HTTP/1.1 {response.status} {reason}",
             f"Content-Type: {response.content_type}",
             f"Content-Length: {len(response.body)}",
             f"Connection: {'keep-alive' if keep_alive else 'close'}"]
    lines.extend(f"{name}: {value}" for name, value in response.headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


Handler = Callable[[Request], Awaitable[Response]]


class HttpServer:
    """Serves `handler` on one address; `start` binds, `stop` closes every connection."""

    def __init__(self, handler: Handler, *, max_head: int = MAX_HEAD,
                 head_timeout: float = HEAD_TIMEOUT,
                 keepalive_timeout: float = KEEPALIVE_TIMEOUT,
                 write_timeout: float = WRITE_TIMEOUT,
                 max_connections: int = MAX_CONNECTIONS) -> None:
        self.handler = handler
        self.max_head = max_head
        self.head_timeout = head_timeout
        self.keepalive_timeout = keepalive_timeout
        self.write_timeout = write_timeout
        self.max_connections = max_connections
        self._server: asyncio.Server | None = None
        self._connections: dict[asyncio.StreamWriter, asyncio.Task[None]] = {}
        # Connections waiting for their next request, longest-idle first.
        self._idle: dict[asyncio.StreamWriter, None] = {}
        self._stopping = False

    async def start(self, host: str, port: int) -> int:
        """Listen; returns the bound port (the real one when asked for 0). OSError if not."""
        self._stopping = False
        self._server = await asyncio.start_server(
            self._connection, host, port, limit=self.max_head, reuse_address=True)
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is None:
            return
        # A connection accepted already but whose task has not run yet is not in
        # _connections to be cancelled: it sees this and closes itself.
        self._stopping = True
        self._server.close()
        tasks = list(self._connections.values())
        for task in tasks:
            task.cancel()  # an idle keep-alive wait or a scrape in progress
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None

    async def _connection(self, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is None or self._stopping or not self._make_room():
            writer.transport.abort()
            return
        self._connections[writer] = task
        # drain() then waits until every byte is with the kernel, not just below 64 KiB,
        # so nothing is left in the transport's buffer when the connection is closed.
        writer.transport.set_write_buffer_limits(high=0)
        try:
            first = True
            while await self._exchange(reader, writer, first=first):
                first = False
            writer.close()
        except OSError:
            # The client went away or would not read (ConnectionError, TimeoutError, and
            # the likes of EHOSTUNREACH from a vanished peer): nothing to answer.
            pass
        except asyncio.CancelledError:
            # Only stop() cancels; the task is ours and ends here, so it ends quietly
            # (asyncio would log a cancelled connection task as an error).
            pass
        finally:
            self._connections.pop(writer, None)
            if not writer.transport.is_closing():  # (closing: closed above, or lost)
                # Not close(): that keeps what the client did not read, socket and all,
                # for as long as the client keeps the connection open, outside the cap.
                writer.transport.abort()

    def _make_room(self) -> bool:
        """True if a new connection may be served, after closing the longest-idle one
        if the cap is reached; False if every open connection is busy."""
        if len(self._connections) < self.max_connections:
            return True
        if not self._idle:
            return False
        oldest = next(iter(self._idle))
        del self._idle[oldest]
        oldest.transport.abort()  # its wait for a head ends at once
        del self._connections[oldest]
        return True

    async def _exchange(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *,
                        first: bool) -> bool:
        """Read one request and answer it; True if the connection stays open."""
        timeout = self.head_timeout if first else self.keepalive_timeout
        if not first:
            self._idle[writer] = None
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
        except asyncio.IncompleteReadError:
            return False  # closed between requests (or mid-head): nothing to answer
        except asyncio.LimitOverrunError:
            return await self._refuse(writer, 431, "request head too large")
        except TimeoutError:
            if first:  # a first request that never came whole (idle keep-alive: just close)
                await self._refuse(writer, 408, "request head too slow")
            return False
        finally:
            self._idle.pop(writer, None)
        try:
            request = parse_head(head)
        except BadRequest as exc:
            return await self._refuse(writer, exc.status, str(exc))
        try:
            response = await self.handler(request)
        except Exception:  # a bug in a handler: answer, log, keep serving
            log.exception("ops request failed", extra=fields(path=request.path))
            response = Response.text(500, "internal error\n")
        keep_alive = request.keep_alive and not request.has_body
        await self._send(writer, response, keep_alive=keep_alive,
                         head_only=request.method == "HEAD")
        return keep_alive

    async def _refuse(self, writer: asyncio.StreamWriter, status: int, why: str) -> bool:
        """Answer `status` and have the connection closed (returns False for that)."""
        await self._send(writer, Response.text(status, f"{why}\n"), keep_alive=False,
                         head_only=False)
        return False

    async def _send(self, writer: asyncio.StreamWriter, response: Response, *,
                    keep_alive: bool, head_only: bool) -> None:
        writer.write(render_head(response, keep_alive=keep_alive))
        if not head_only:
            writer.write(response.body)
        await asyncio.wait_for(writer.drain(), self.write_timeout)
