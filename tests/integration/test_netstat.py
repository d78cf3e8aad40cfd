"""read_connections on this machine's real /proc/net/tcp*, with real loopback servers
and real client connections (IPv4, IPv6 ::1, and IPv4 clients of a dual-stack listener)."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack

import pytest

from agents.srs.netstat import ConnectionCounts, read_connections

pytestmark = pytest.mark.integration

N = 5


def ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


needs_ipv6 = pytest.mark.skipif(
    not ipv6_loopback(),
    reason="IPV6 LOOPBACK (::1) IS NOT AVAILABLE ON THIS MACHINE: the tcp6 path is only "
    "covered by the recorded-text unit tests here",
)


@pytest.fixture
def sockets() -> Iterator[ExitStack]:
    with ExitStack() as stack:
        yield stack


def listen(stack: ExitStack, family: socket.AddressFamily, host: str) -> socket.socket:
    server = stack.enter_context(socket.socket(family, socket.SOCK_STREAM))
    if family == socket.AF_INET6:
        server.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    server.bind((host, 0))
    server.listen(16)
    return server


def connect(stack: ExitStack, server: socket.socket, host: str, n: int) -> list[socket.socket]:
    """n real connections, accepted by the server; returns the server-side sockets."""
    port = server.getsockname()[1]
    accepted = []
    for _ in range(n):
        stack.enter_context(socket.create_connection((host, port), timeout=5))
        conn, _ = server.accept()
        accepted.append(stack.enter_context(conn))
    return accepted


def eventually(
    read: Callable[[], ConnectionCounts], check: Callable[[ConnectionCounts], bool]
) -> ConnectionCounts:
    """Kernel state after a close settles quickly but not synchronously; poll for it."""
    deadline = time.monotonic() + 10
    counts = read()
    while not check(counts) and time.monotonic() < deadline:
        time.sleep(0.02)
        counts = read()
    return counts


def test_ipv4_connections_and_listener(sockets: ExitStack) -> None:
    server = listen(sockets, socket.AF_INET, "127.0.0.1")
    port = server.getsockname()[1]
    assert read_connections([port]) == ConnectionCounts({port: 0}, {port: 1}, {port: 0})

    accepted = connect(sockets, server, "127.0.0.1", N)
    counts = read_connections([port])
    assert counts.established == {port: N}
    assert counts.listening == {port: 1}

    # SRS's graceful quit: the listener closes first, the connections stay
    server.close()
    counts = read_connections([port])
    assert counts.listening == {port: 0}
    assert not counts.any_listening
    assert counts.established == {port: N}

    # clients leave one by one; a server socket closed by us is gone from ESTABLISHED
    accepted[0].close()
    accepted[1].close()
    counts = eventually(lambda: read_connections([port]), lambda c: c.established[port] == N - 2)
    assert counts.established == {port: N - 2}


def test_client_side_is_not_counted(sockets: ExitStack) -> None:
    """Our outbound connections (remote port = the watched port) do not count."""
    server = listen(sockets, socket.AF_INET, "127.0.0.1")
    port = server.getsockname()[1]
    connect(sockets, server, "127.0.0.1", 3)
    other = listen(sockets, socket.AF_INET, "127.0.0.1")
    assert read_connections([other.getsockname()[1]]).established == {
        other.getsockname()[1]: 0
    }
    assert read_connections([port]).established == {port: 3}


@needs_ipv6
def test_ipv6_loopback(sockets: ExitStack) -> None:
    server = listen(sockets, socket.AF_INET6, "::1")
    port = server.getsockname()[1]
    connect(sockets, server, "::1", N)
    counts = read_connections([port])
    assert counts == ConnectionCounts({port: N}, {port: 1}, {port: 0})


@needs_ipv6
def test_dual_stack_listener_counts_both_families(sockets: ExitStack) -> None:
    """SRS listening on [::] sees IPv4 clients as ::ffff:a.b.c.d, listed in tcp6."""
    server = listen(sockets, socket.AF_INET6, "::")
    port = server.getsockname()[1]
    connect(sockets, server, "127.0.0.1", 2)
    connect(sockets, server, "::1", 3)
    assert read_connections([port]) == ConnectionCounts({port: 5}, {port: 1}, {port: 0})


def test_several_ports(sockets: ExitStack) -> None:
    rtmp = listen(sockets, socket.AF_INET, "127.0.0.1")
    http = listen(sockets, socket.AF_INET, "127.0.0.1")
    connect(sockets, rtmp, "127.0.0.1", 2)
    connect(sockets, http, "127.0.0.1", 4)
    ports = [rtmp.getsockname()[1], http.getsockname()[1]]
    counts = read_connections(ports)
    assert counts.established == dict(zip(ports, [2, 4], strict=True))
    assert counts.total_established == 6
