"""Just enough HTTP/1.1 to answer like SRS's own HTTP stack, byte for byte.

SRS writes its headers in the order they were set (`SrsHttpHeader::keys_`), starts every
reply with `Connection: Close` yet keeps reading requests while the client keeps the
connection alive, and adds `Server: SRS/6.0.155(Hang)` last. A general-purpose server
would add `Date` or reorder headers; this one writes exactly what it is given.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import unquote

SERVER_SIGNATURE = "SRS/6.0.155(Hang)"
MAX_HEADER_BYTES = 64 * 1024

STATUS_TEXT = {
    200: "OK",
    301: "Moved Permanently",
    302: "Found",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    500: "Internal Server Error",
}


@dataclass
class Request:
    method: str
    target: str
    version: str
    headers: dict[str, str]
    body: bytes = b""
    peer_ip: str = ""
    peer_port: int = 0

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    @property
    def raw_query(self) -> str:
        return self.target.split("?", 1)[1] if "?" in self.target else ""

    def query(self, key: str) -> str:
        """`query_get`: the last value of `key`, or empty."""
        value = ""
        for part in self.raw_query.split("&"):
            k, _, v = part.partition("=")
            if k == key:
                value = unquote(v)
        return value

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")

    @property
    def host(self) -> str:
        """The Host header without its port, as SRS's `SrsHttpMessage::host()`."""
        host = self.header("host")
        if host.startswith("["):
            return host[1 : host.find("]")] if "]" in host else host
        return host.split(":", 1)[0]

    @property
    def keep_alive(self) -> bool:
        connection = self.header("connection").lower()
        if self.version == "HTTP/1.0":
            return connection == "keep-alive"
        return connection != "close"


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    # A streaming body (HTTP-FLV): sent with chunked encoding until it ends.
    stream: AsyncIterator[bytes] | None = None

    def header(self, name: str) -> str:
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return ""

    def set(self, name: str, value: str) -> None:
        """`SrsHttpHeader::set`: replace in place, or append at the end."""
        for i, (k, _) in enumerate(self.headers):
            if k == name:
                self.headers[i] = (name, value)
                return
        self.headers.append((name, value))


class BadRequest(Exception):
    """The peer sent something that is not an HTTP request."""


async def read_request(reader: asyncio.StreamReader) -> Request | None:
    """Read one request; None when the peer closed the connection between requests."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as e:
        if not e.partial.strip():
            return None
        raise BadRequest("connection closed inside the request head") from None
    except asyncio.LimitOverrunError:
        raise BadRequest("request head too large") from None
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        raise BadRequest(f"bad request line {lines[0]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise BadRequest(f"bad header line {line!r}")
        headers[name.strip().lower()] = value.strip()
    body = b""
    length = headers.get("content-length", "")
    if length.isdigit() and int(length) > 0:
        body = await reader.readexactly(int(length))
    return Request(parts[0].upper(), parts[1], parts[2], headers, body)


def render_head(status: int, headers: list[tuple[str, str]]) -> bytes:
    lines = [f"HTTP/1.1 {status} {STATUS_TEXT.get(status, 'Unknown')}"]
    lines += [f"{k}: {v}" for k, v in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def finish_headers(response: Response) -> None:
    """What `SrsHttpMessageWriter::send_header` adds: Server, chunked, Keep-Alive."""
    if not response.header("Server"):
        response.set("Server", SERVER_SIGNATURE)
    if response.stream is not None and not response.header("Content-Length"):
        response.set("Transfer-Encoding", "chunked")
    if not response.header("Connection"):
        response.set("Connection", "Keep-Alive")


async def write_response(writer: asyncio.StreamWriter, response: Response) -> int:
    """Send a response; returns the number of bytes written."""
    finish_headers(response)
    head = render_head(response.status, response.headers)
    writer.write(head + response.body)
    sent = len(head) + len(response.body)
    await writer.drain()
    if response.stream is not None:
        async for chunk in response.stream:
            if not chunk:
                continue
            data = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
            writer.write(data)
            sent += len(data)
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        sent += 5
        await writer.drain()
    return sent


def text_error(status: int, text: str | None = None) -> Response:
    """`srs_go_http_error`: a plain-text error reply."""
    body = (text if text is not None else STATUS_TEXT.get(status, "Unknown")).encode()
    return Response(
        status,
        [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))],
        body,
    )
