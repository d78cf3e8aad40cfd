"""The ops server's HTTP layer over real sockets on 127.0.0.1: keep-alive, pipelining,
HEAD, and the limits a network-facing port needs (head size, slow and idle clients,
bodies, the connection cap), each provoked for real."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import inspect
import socket
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from agents.runtime.httpserver import HttpServer, Request, Response

pytestmark = pytest.mark.integration

Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]

BIG = 16 << 20  # far more than the kernel's socket buffers hold on loopback


async def echo(request: Request) -> Response:
    if request.path == "/boom":
        raise RuntimeError("a bug in a handler")
    if request.path == "/big":
        return Response(200, bytes(BIG))
    return Response.text(200, f"{request.method} {request.path} {request.query}\n")


@pytest.fixture
async def server(request: pytest.FixtureRequest) -> AsyncIterator[tuple[HttpServer, int]]:
    options: dict[str, Any] = getattr(request, "param", {})
    http = HttpServer(echo, **options)
    port = await http.start("127.0.0.1", 0)
    yield http, port
    await http.stop()


async def connect(port: int) -> Conn:
    return await asyncio.open_connection("127.0.0.1", port)


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)).decode()
    status_line, *lines = head.strip().split("\r\n")
    headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}
    body = await reader.readexactly(int(headers["content-length"]))
    return int(status_line.split()[1]), headers, body


async def closed(reader: asyncio.StreamReader) -> bool:
    """True once the server has closed the connection (EOF or reset within 5 s)."""
    try:
        return await asyncio.wait_for(reader.read(), 5) == b""
    except ConnectionResetError:  # closed with our request unread: the kernel resets
        return True


async def test_keep_alive_and_pipelined_requests_are_answered_in_order(
        server: tuple[HttpServer, int]) -> None:
    reader, writer = await connect(server[1])
    writer.write(b"GET /a?x=1 HTTP/1.1\r\nHost: t\r\n\r\nGET /b HTTP/1.1\r\nHost: t\r\n\r\n")
    first, second = await read_response(reader), await read_response(reader)
    assert first[0] == 200 and first[2] == b"GET /a x=1\n"
    assert first[1]["connection"] == "keep-alive"
    assert second[2] == b"GET /b \n"
    writer.write(b"GET /c HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    status, headers, body = await read_response(reader)
    assert (status, headers["connection"], body) == (200, "close", b"GET /c \n")
    assert await closed(reader)
    writer.close()


async def test_head_has_the_length_but_no_body(server: tuple[HttpServer, int]) -> None:
    reader, writer = await connect(server[1])
    writer.write(b"HEAD /x HTTP/1.1\r\nHost: t\r\n\r\nGET /y HTTP/1.1\r\nHost: t\r\n\r\n")
    head = (await reader.readuntil(b"\r\n\r\n")).decode()
    assert "Content-Length: 9\r\n" in head  # the length of "HEAD /x \n"
    status, _, body = await read_response(reader)  # the next bytes are the next response
    assert (status, body) == (200, b"GET /y \n")
    writer.close()


async def test_a_request_with_a_body_is_answered_then_the_connection_closed(
        server: tuple[HttpServer, int]) -> None:
    reader, writer = await connect(server[1])
    # If the body were left in the stream it would be read as the next request.
    writer.write(b"POST /p HTTP/1.1\r\nHost: t\r\nContent-Length: 24\r\n\r\n"
                 b"GET /smuggled HTTP/1.1\r\n")
    status, headers, body = await read_response(reader)
    assert (status, headers["connection"], body) == (200, "close", b"POST /p \n")
    assert await closed(reader)
    writer.close()


@pytest.mark.parametrize(("server", "sent", "status", "says"), [
    pytest.param({}, b"GET /metrics HTTP/1.1\r\n\r\n", 400, b"without Host", id="400-no-host"),
    pytest.param({"max_head": 1024},
                 b"GET / HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 2048 + b"\r\n\r\n",
                 431, b"too large", id="431-head-over-the-limit"),
    pytest.param({"head_timeout": 0.2},
                 b"GET /metrics HTTP/1.1\r\nHost: t\r\n",  # and never the blank line
                 408, b"too slow", id="408-head-never-finished"),
], indirect=["server"])
async def test_a_refused_request_gets_its_status_and_a_close(
        server: tuple[HttpServer, int], sent: bytes, status: int, says: bytes) -> None:
    reader, writer = await connect(server[1])
    writer.write(sent)
    got, headers, body = await read_response(reader)
    assert (got, headers["connection"]) == (status, "close")
    assert says in body
    assert await closed(reader)
    writer.close()


@pytest.mark.parametrize("server", [{"keepalive_timeout": 0.2}], indirect=True)
async def test_an_idle_keep_alive_connection_is_closed_quietly(
        server: tuple[HttpServer, int]) -> None:
    reader, writer = await connect(server[1])
    writer.write(b"GET /a HTTP/1.1\r\nHost: t\r\n\r\n")
    assert (await read_response(reader))[0] == 200
    assert await closed(reader)  # no 408 on an idle connection: just EOF
    writer.close()


@pytest.mark.parametrize("server", [{"max_connections": 2}], indirect=True)
async def test_over_the_cap_with_every_connection_busy_a_new_one_is_closed_unanswered(
        server: tuple[HttpServer, int]) -> None:
    held = [await connect(server[1]) for _ in range(2)]
    for _, writer in held:  # busy: each in the middle of its first request's head
        writer.write(b"GET /held HTTP/1.1\r\nHost: t\r\n")
    await asyncio.sleep(0.1)  # both are being read
    reader, writer = await connect(server[1])
    writer.write(b"GET /third HTTP/1.1\r\nHost: t\r\n\r\n")
    assert await closed(reader)
    writer.close()
    held[0][1].close()
    await asyncio.sleep(0.1)  # the server sees the close and frees the slot
    reader, writer = await connect(server[1])
    writer.write(b"GET /again HTTP/1.1\r\nHost: t\r\n\r\n")
    assert (await read_response(reader))[2] == b"GET /again \n"
    writer.close()
    held[1][1].write(b"\r\n")  # the busy one was kept all along, and is answered
    assert (await read_response(held[1][0]))[2] == b"GET /held \n"
    held[1][1].close()


@pytest.mark.parametrize("server", [{"max_connections": 2}], indirect=True)
async def test_at_the_cap_a_new_connection_takes_the_longest_idle_ones_place(
        server: tuple[HttpServer, int]) -> None:
    held = [await connect(server[1]) for _ in range(2)]
    for reader, writer in held:  # both served, then idle on keep-alive, oldest first
        writer.write(b"GET /held HTTP/1.1\r\nHost: t\r\n\r\n")
        assert (await read_response(reader))[0] == 200
    reader, writer = await connect(server[1])  # a probe, say
    writer.write(b"GET /probe HTTP/1.1\r\nHost: t\r\n\r\n")
    assert (await read_response(reader))[2] == b"GET /probe \n"
    assert await closed(held[0][0])  # the longest idle made room
    held[1][1].write(b"GET /still HTTP/1.1\r\nHost: t\r\n\r\n")  # the other stays
    assert (await read_response(held[1][0]))[2] == b"GET /still \n"
    for _, w in (*held, (reader, writer)):
        w.close()


@pytest.mark.parametrize("server", [{"write_timeout": 0.1}], indirect=True)
async def test_a_response_the_client_does_not_read_is_dropped_with_the_connection(
        server: tuple[HttpServer, int]) -> None:
    # Closed gracefully instead, the transport would keep the unsent rest (and the socket)
    # for as long as the client stays connected, outside the connection cap.
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", server[1]))
    reader, writer = await asyncio.open_connection(sock=sock)
    writer.write(b"GET /big HTTP/1.1\r\nHost: t\r\n\r\n")
    await asyncio.sleep(0.3)  # not reading: the server's write times out
    received = 0
    with contextlib.suppress(ConnectionResetError):
        while chunk := await asyncio.wait_for(reader.read(1 << 16), 5):
            received += len(chunk)
    assert received < BIG
    writer.close()


class Unreachable(HttpServer):
    """Fails every connection as a socket to a vanished peer does (EHOSTUNREACH)."""

    async def _exchange(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *,
                        first: bool) -> bool:
        raise OSError(errno.EHOSTUNREACH, "No route to host")


async def test_a_socket_error_ends_the_connection_quietly(
        caplog: pytest.LogCaptureFixture) -> None:
    http = Unreachable(echo)
    port = await http.start("127.0.0.1", 0)
    try:
        reader, writer = await connect(port)
        writer.write(b"GET /a HTTP/1.1\r\nHost: t\r\n\r\n")
        assert await closed(reader)
        writer.close()
        await asyncio.sleep(0)  # where asyncio would log the task's exception
    finally:
        await http.stop()
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


async def test_a_failing_handler_gets_500_and_the_server_goes_on(
        server: tuple[HttpServer, int], caplog: pytest.LogCaptureFixture) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{server[1]}/boom") as resp:
            assert resp.status == 500
        async with http.get(f"http://127.0.0.1:{server[1]}/after") as resp:
            assert (resp.status, await resp.text()) == (200, "GET /after \n")
    assert "ops request failed" in caplog.text


async def test_stop_closes_open_connections_quietly(
        server: tuple[HttpServer, int], caplog: pytest.LogCaptureFixture) -> None:
    http, port = server
    reader, writer = await connect(port)
    writer.write(b"GET /a HTTP/1.1\r\nHost: t\r\n\r\n")
    assert (await read_response(reader))[0] == 200
    await asyncio.wait_for(http.stop(), 5)  # an idle keep-alive client does not hold it up
    assert await closed(reader)
    writer.close()
    with pytest.raises(OSError):
        await connect(port)
    await asyncio.sleep(0)  # where asyncio would log a cancelled connection task
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


def connection_task_not_yet_run() -> bool:
    coros = [t.get_coro() for t in asyncio.all_tasks()]
    return any(inspect.iscoroutine(c) and c.__qualname__ == "HttpServer._connection"
               and inspect.getcoroutinestate(c) == inspect.CORO_CREATED for c in coros)


async def test_a_connection_accepted_just_before_stop_is_closed_too(
        server: tuple[HttpServer, int]) -> None:
    http, port = server
    sock = socket.create_connection(("127.0.0.1", port))  # without yielding to the server
    for _ in range(100):
        if connection_task_not_yet_run():  # accepted, its task made, not yet started
            break
        await asyncio.sleep(0)
    else:
        pytest.fail("the server never accepted the connection")
    await http.stop()  # directly: wait_for would yield, and the task start, first
    sock.setblocking(False)
    reader, writer = await asyncio.open_connection(sock=sock)
    assert await closed(reader)  # not served after stop, nor held for the head timeout
    writer.close()
