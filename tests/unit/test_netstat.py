"""/proc/net/tcp and tcp6 parsing and counting, on text recorded from a Linux 6.18 x86_64
host with: an IPv4 listener on 127.0.0.1:57659 with one client, a dual-stack listener on
[::]:39435 with one ::1 client and one 127.0.0.1 client, and an unrelated listener."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.srs.netstat import (
    ConnectionCounts,
    ProcNetError,
    TcpEntry,
    TcpState,
    count_established,
    listening,
    parse_proc_net_tcp,
    read_connections,
)

TCP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:07E8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1683 1 00000000ad50c667 100 0 0 10 0
   1: 0100007F:E13B 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 14491 1 000000007ab64d1e 100 0 0 10 0
   2: 0100007F:8068 0100007F:E13B 01 00000000:00000000 00:00000000 00000000     0        0 14492 2 000000009bb15d09 20 0 0 10 -1
   3: 0100007F:C02C 0100007F:9A0B 01 00000000:00000000 00:00000000 00000000     0        0 14497 2 0000000074277921 20 0 0 10 -1
   4: 0100007F:E13B 0100007F:8068 01 00000000:00000000 00:00000000 00000000     0        0 14493 1 00000000e4da1ce5 20 0 0 10 -1
"""  # noqa: E501

TCP6 = """\
  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:9A0B 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 14494 1 0000000098ad2990 100 0 0 10 0
   1: 00000000000000000000000001000000:9A0B 00000000000000000000000001000000:AC90 01 00000000:00000000 00:00000000 00000000     0        0 14496 1 000000002f2b179e 20 0 0 10 -1
   2: 00000000000000000000000001000000:AC90 00000000000000000000000001000000:9A0B 01 00000000:00000000 00:00000000 00000000     0        0 14495 2 0000000056587994 20 0 0 10 -1
   3: 0000000000000000FFFF00000100007F:9A0B 0000000000000000FFFF00000100007F:C02C 01 00000000:00000000 00:00000000 00000000     0        0 14498 1 00000000952acf48 20 0 0 10 -1
"""  # noqa: E501

V4_PORT, V6_PORT = 57659, 39435


def test_parse_ipv4() -> None:
    entries = parse_proc_net_tcp(TCP, byteorder="little")
    assert entries == [
        TcpEntry("0.0.0.0", 2024, "0.0.0.0", 0, TcpState.LISTEN),
        TcpEntry("127.0.0.1", V4_PORT, "0.0.0.0", 0, TcpState.LISTEN),
        TcpEntry("127.0.0.1", 32872, "127.0.0.1", V4_PORT, TcpState.ESTABLISHED),
        TcpEntry("127.0.0.1", 49196, "127.0.0.1", V6_PORT, TcpState.ESTABLISHED),
        TcpEntry("127.0.0.1", V4_PORT, "127.0.0.1", 32872, TcpState.ESTABLISHED),
    ]


def test_parse_ipv6_and_mapped_ipv4() -> None:
    entries = parse_proc_net_tcp(TCP6, byteorder="little")
    assert entries == [
        TcpEntry("::", V6_PORT, "::", 0, TcpState.LISTEN),
        TcpEntry("::1", V6_PORT, "::1", 44176, TcpState.ESTABLISHED),
        TcpEntry("::1", 44176, "::1", V6_PORT, TcpState.ESTABLISHED),
        TcpEntry("::ffff:127.0.0.1", V6_PORT, "::ffff:127.0.0.1", 49196, TcpState.ESTABLISHED),
    ]


def test_big_endian_host_text() -> None:
    """A big-endian kernel prints each 32-bit word most significant byte first."""
    line = (
        "   0: 7F000001:0050 0A000002:C350 01 00000000:00000000 00:00000000 00000000     0 "
        "0 1 1 0000000000000000 20 0 0 10 -1\n"
    )
    [entry] = parse_proc_net_tcp(line, byteorder="big")
    assert entry == TcpEntry("127.0.0.1", 80, "10.0.0.2", 50000, TcpState.ESTABLISHED)


def test_counts_inbound_connections_only() -> None:
    """The client ends (local port ephemeral, remote port = the server's) do not count;
    the IPv4 client of the dual-stack listener shows up in tcp6, once."""
    entries = parse_proc_net_tcp(TCP, "little") + parse_proc_net_tcp(TCP6, "little")
    assert count_established(entries, [V4_PORT, V6_PORT, 1935]) == {
        V4_PORT: 1, V6_PORT: 2, 1935: 0,
    }
    assert listening(entries, [V4_PORT, V6_PORT, 2024, 1935]) == {
        V4_PORT: 1, V6_PORT: 1, 2024: 1, 1935: 0,
    }


def test_outbound_to_an_origin_is_not_counted() -> None:
    """An edge's own connection to its origin's 1935 is outbound: not a client of ours."""
    entries = [
        TcpEntry("10.0.0.5", 41000, "10.0.0.9", 1935, TcpState.ESTABLISHED),
        TcpEntry("10.0.0.5", 1935, "10.0.0.7", 52000, TcpState.ESTABLISHED),
        TcpEntry("10.0.0.5", 1935, "10.0.0.8", 52001, TcpState.TIME_WAIT),
        TcpEntry("10.0.0.5", 1935, "10.0.0.8", 52002, TcpState.CLOSE_WAIT),
    ]
    assert count_established(entries, [1935]) == {1935: 1}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("   0: 0100007F 00000000:0000 0A\n", "line 1 is not in /proc/net/tcp format"),
        ("   0: 0100007F:E13B\n", "line 1"),
        (TCP + "   5: 01007F:E13B 00000000:0000 0A\n", "line 7 .*bad address"),
        ("   0: 0100007F:E13B 00000000:0000 ZZ\n", "line 1"),
    ],
)
def test_malformed_lines(text: str, message: str) -> None:
    with pytest.raises(ProcNetError, match=message):
        parse_proc_net_tcp(text, "little")


def test_empty_table() -> None:
    assert parse_proc_net_tcp(TCP.splitlines()[0] + "\n") == []
    assert parse_proc_net_tcp("") == []


def write_net(root: Path, tcp: str | None, tcp6: str | None) -> str:
    (root / "net").mkdir(parents=True)
    if tcp is not None:
        (root / "net" / "tcp").write_text(tcp)
    if tcp6 is not None:
        (root / "net" / "tcp6").write_text(tcp6)
    return str(root)


def test_read_connections_from_a_proc_tree(tmp_path: Path) -> None:
    root = write_net(tmp_path / "proc", TCP, TCP6)
    counts = read_connections([V4_PORT, V6_PORT], proc_root=root)
    # the recorded text is little-endian, as this (x86_64/arm64) host is
    assert counts == ConnectionCounts({V4_PORT: 1, V6_PORT: 2}, {V4_PORT: 1, V6_PORT: 1},
                                      {V4_PORT: 0, V6_PORT: 0})
    assert counts.total_established == 3
    assert counts.any_listening


def test_read_connections_without_tcp6(tmp_path: Path) -> None:
    counts = read_connections([V4_PORT], proc_root=write_net(tmp_path / "proc", TCP, None))
    assert counts.established == {V4_PORT: 1}


def test_read_connections_without_tcp(tmp_path: Path) -> None:
    with pytest.raises(ProcNetError, match=r"net/tcp: it does not exist"):
        read_connections([1935], proc_root=write_net(tmp_path / "proc", None, None))


def test_read_connections_names_the_bad_file(tmp_path: Path) -> None:
    root = write_net(tmp_path / "proc", TCP, "   0: nonsense\n")
    with pytest.raises(ProcNetError, match=r"net/tcp6: line 1"):
        read_connections([1935], proc_root=root)


def test_close_wait_is_still_held_by_srs() -> None:
    """The client closed, SRS has not: SRS's graceful quit still waits for it."""
    counts = ConnectionCounts({1935: 1, 8080: 0}, {1935: 0, 8080: 0}, {1935: 0, 8080: 2})
    assert counts.total_established == 1
    assert counts.held == {1935: 1, 8080: 2}
    assert counts.total_held == 3


def test_no_listener_left() -> None:
    counts = ConnectionCounts({1935: 2}, {1935: 0, 1985: 0})
    assert not counts.any_listening
    assert counts.total_established == 2
