"""Count TCP connections on SRS's ports from /proc/net/tcp and /proc/net/tcp6.

During a graceful quit SRS closes every listener, its HTTP API included, then waits
for its connections to end; the pod's shared network namespace is where that
progress can still be seen. Every container of a pod shares one network namespace,
so the agent's own /proc/net/tcp lists SRS's sockets.
"""

from __future__ import annotations

import enum
import os
import socket
import struct
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from agents.errors import PermanentError

ByteOrder = Literal["little", "big"]


class TcpState(enum.IntEnum):
    """include/net/tcp_states.h."""

    ESTABLISHED = 0x01
    SYN_SENT = 0x02
    SYN_RECV = 0x03
    FIN_WAIT1 = 0x04
    FIN_WAIT2 = 0x05
    TIME_WAIT = 0x06
    CLOSE = 0x07
    CLOSE_WAIT = 0x08
    LAST_ACK = 0x09
    LISTEN = 0x0A
    CLOSING = 0x0B
    NEW_SYN_RECV = 0x0C


@dataclass(frozen=True)
class TcpEntry:
    local_ip: str
    local_port: int
    remote_ip: str
    remote_port: int
    state: int  # a TcpState value


class ProcNetError(PermanentError):
    """/proc/net/tcp could not be read or does not look like the kernel's format."""


@dataclass(frozen=True)
class ConnectionCounts:
    established: Mapping[int, int]  # port -> inbound ESTABLISHED connections
    listening: Mapping[int, int]  # port -> LISTEN sockets (several with SO_REUSEPORT)
    close_wait: Mapping[int, int] = field(default_factory=dict)  # port -> inbound CLOSE_WAIT

    @property
    def total_established(self) -> int:
        return sum(self.established.values())

    @property
    def held(self) -> dict[int, int]:
        """Per port, the connections SRS still holds: ESTABLISHED, and CLOSE_WAIT (the
        client has closed, SRS has not closed its socket yet). SRS's graceful quit waits
        for exactly these: each is a connection object whose socket is still open."""
        return {port: count + self.close_wait.get(port, 0)
                for port, count in self.established.items()}

    @property
    def total_held(self) -> int:
        return sum(self.held.values())

    @property
    def any_listening(self) -> bool:
        return any(self.listening.values())


_WORDS = {
    ("little", 8): struct.Struct("<I"),
    ("little", 32): struct.Struct("<4I"),
    ("big", 8): struct.Struct(">I"),
    ("big", 32): struct.Struct(">4I"),
}


def _address(text: str, byteorder: ByteOrder) -> tuple[str, int]:
    """'0100007F:0050' -> ('127.0.0.1', 80).

    The kernel prints the address as 32-bit words in host byte order (%08X of each
    __be32), so each word is packed back in that order to recover the network bytes.
    """
    host, _, port = text.partition(":")
    words = _WORDS.get((byteorder, len(host)))
    if words is None or not port:
        raise ValueError(f"bad address {text!r}")
    packed = words.pack(*(int(host[i : i + 8], 16) for i in range(0, len(host), 8)))
    family = socket.AF_INET if len(packed) == 4 else socket.AF_INET6
    # inet_ntop spells an IPv4 client of a dual-stack listener ::ffff:a.b.c.d
    return socket.inet_ntop(family, packed), int(port, 16)


def parse_proc_net_tcp(text: str, byteorder: ByteOrder | None = None) -> list[TcpEntry]:
    """Entries of /proc/net/tcp or /proc/net/tcp6 text (the header line is skipped).

    `byteorder` is the byte order of the machine that wrote the text (default: ours).
    """
    order: ByteOrder = byteorder or ("little" if sys.byteorder == "little" else "big")
    entries = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields or fields[0] == "sl":
            continue
        try:
            local_ip, local_port = _address(fields[1], order)
            remote_ip, remote_port = _address(fields[2], order)
            state = int(fields[3], 16)
        except (IndexError, ValueError) as exc:
            raise ProcNetError(f"line {lineno} is not in /proc/net/tcp format: {exc}") from None
        entries.append(TcpEntry(local_ip, local_port, remote_ip, remote_port, state))
    return entries


def count_established(entries: Iterable[TcpEntry], ports: Iterable[int]) -> dict[int, int]:
    """ESTABLISHED connections whose LOCAL port is one of `ports`, per port.

    These are the connections clients made to SRS. Connections SRS makes itself (an
    edge pulling from its origin on remote port 1935, HTTP callbacks) have an ephemeral
    local port and are not counted; nor are hls-play sessions, which hold no socket
    between requests.
    """
    return _count(entries, ports, TcpState.ESTABLISHED)


def listening(entries: Iterable[TcpEntry], ports: Iterable[int]) -> dict[int, int]:
    """LISTEN sockets per port in `ports`: 0 everywhere once SRS has closed its listeners."""
    return _count(entries, ports, TcpState.LISTEN)


def _count(entries: Iterable[TcpEntry], ports: Iterable[int], state: TcpState) -> dict[int, int]:
    counts = dict.fromkeys(ports, 0)
    for entry in entries:
        if entry.state == state and entry.local_port in counts:
            counts[entry.local_port] += 1
    return counts


def read_connections(ports: Iterable[int], proc_root: str = "/proc") -> ConnectionCounts:
    """Counts for `ports` from <proc_root>/net/tcp and net/tcp6 (tcp6 may be absent)."""
    wanted = tuple(ports)
    entries: list[TcpEntry] = []
    for name, required in (("tcp", True), ("tcp6", False)):
        path = os.path.join(proc_root, "net", name)
        try:
            with open(path, encoding="ascii") as fh:
                text = fh.read()
        except FileNotFoundError:
            if required:
                raise ProcNetError(f"cannot read {path}: it does not exist") from None
            continue  # IPv6 disabled in this network namespace
        except (OSError, UnicodeDecodeError) as exc:
            raise ProcNetError(f"cannot read {path}: {exc}") from None
        try:
            entries.extend(parse_proc_net_tcp(text))
        except ProcNetError as exc:
            raise ProcNetError(f"{path}: {exc}") from None
    return ConnectionCounts(
        established=count_established(entries, wanted),
        listening=listening(entries, wanted),
        close_wait=_count(entries, wanted, TcpState.CLOSE_WAIT),
    )
