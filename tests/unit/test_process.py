"""Finding SRS among processes: the pure match, and the scan over a /proc tree on disk."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agents.errors import ConfigError, RetryableError
from agents.settings import SrsSettings
from agents.srs.process import (
    ProcEntry,
    SrsProcessAmbiguous,
    SrsProcessNotFound,
    find_srs,
    match_processes,
    parse_cmdline,
    scan_proc,
)

DEFAULT_PATTERN = SrsSettings().srs_process


def entry(pid: int, *argv: str) -> ProcEntry:
    return ProcEntry(pid, tuple(argv))


# Command lines seen in SRS pods (official image, build tree, this project's sidecar).
POD = [
    entry(1, "/pause"),
    entry(7, "./objs/srs", "-c", "conf/docker.conf"),
    entry(30, "/usr/local/bin/python3", "/usr/local/bin/srs-agent", "sidecar"),
    entry(41, "srs-agent", "drain"),
    entry(52, "tail", "-f", "/usr/local/srs/objs/srs.log"),
    entry(60),  # a zombie or kernel thread: no cmdline
]


def test_default_pattern_finds_srs_only() -> None:
    assert [e.pid for e in match_processes(POD, DEFAULT_PATTERN)] == [7]


@pytest.mark.parametrize(
    "argv",
    [
        ("./objs/srs", "-c", "conf/srs.conf"),
        ("/usr/local/srs/objs/srs", "-c", "conf/docker.conf"),
        ("srs", "-e"),
        ("/usr/local/srs/objs/srs",),
    ],
)
def test_default_pattern_matches_srs_command_lines(argv: tuple[str, ...]) -> None:
    assert match_processes([ProcEntry(9, argv)], DEFAULT_PATTERN) == [ProcEntry(9, argv)]


def test_excluded_pids_and_empty_cmdlines_never_match() -> None:
    entries = [entry(5, "srs"), entry(6, "srs"), entry(8)]
    assert [e.pid for e in match_processes(entries, "srs", exclude_pids={5})] == [6]
    assert match_processes([entry(8)], "") == []


def test_pattern_is_searched_in_joined_argv() -> None:
    entries = [entry(3, "/bin/srs", "-c", "/etc/srs/edge.conf")]
    assert match_processes(entries, r"srs -c /etc/srs/edge\.conf$") == entries
    assert match_processes(entries, r"origin\.conf") == []


def test_bad_regex_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"--srs-process '\(srs' is not a valid regex"):
        match_processes(POD, "(srs")


@pytest.mark.parametrize(
    ("raw", "argv"),
    [
        (b"./objs/srs\0-c\0conf/srs.conf\0", ("./objs/srs", "-c", "conf/srs.conf")),
        (b"nginx: worker process", ("nginx: worker process",)),  # rewritten argv, no NULs
        (b"a\0\0b\0", ("a", "", "b")),
        (b"", ()),
        (b"caf\xe9\0", ("caf\ufffd",)),
    ],
)
def test_parse_cmdline(raw: bytes, argv: tuple[str, ...]) -> None:
    assert parse_cmdline(raw) == argv


def fake_proc(root: Path, processes: dict[str, bytes | None]) -> Path:
    """A /proc tree: <pid>/cmdline files; None makes a pid dir without cmdline
    (a process that exited between listing and reading)."""
    root.mkdir()
    (root / "self").mkdir()
    (root / "net").mkdir()
    (root / "meminfo").write_text("MemTotal: 1 kB\n")
    for pid, cmdline in processes.items():
        (root / pid).mkdir()
        if cmdline is not None:
            (root / pid / "cmdline").write_bytes(cmdline)
    return root


def test_scan_proc(tmp_path: Path) -> None:
    root = fake_proc(tmp_path / "proc", {
        "1": b"/pause\0",
        "7": b"./objs/srs\0-c\0conf/docker.conf\0",
        "12": b"",
        "99": None,
    })
    entries = sorted(scan_proc(str(root)), key=lambda e: e.pid)
    assert entries == [
        entry(1, "/pause"),
        entry(7, "./objs/srs", "-c", "conf/docker.conf"),
        entry(12),
    ]


def test_find_srs(tmp_path: Path) -> None:
    root = fake_proc(tmp_path / "proc", {
        "1": b"/pause\0",
        "7": b"./objs/srs\0-c\0conf/docker.conf\0",
        # our own process never counts, even when its argv matches
        str(os.getpid()): b"./objs/srs\0--pretend\0",
    })
    assert find_srs(DEFAULT_PATTERN, str(root)) == 7


def test_find_srs_not_found_is_retryable(tmp_path: Path) -> None:
    root = fake_proc(tmp_path / "proc", {"1": b"/pause\0", "2": b"sh\0", "3": b""})
    with pytest.raises(SrsProcessNotFound) as info:
        find_srs(DEFAULT_PATTERN, str(root))
    assert isinstance(info.value, RetryableError)
    assert "none of the 3 processes" in str(info.value)
    assert repr(DEFAULT_PATTERN) in str(info.value)
    assert "shareProcessNamespace" in str(info.value)


def test_find_srs_ambiguous_is_a_config_error(tmp_path: Path) -> None:
    root = fake_proc(tmp_path / "proc", {
        "7": b"./objs/srs\0-c\0conf/edge.conf\0",
        "8": b"./objs/srs\0-c\0conf/origin.conf\0",
    })
    with pytest.raises(SrsProcessAmbiguous) as info:
        find_srs(DEFAULT_PATTERN, str(root))
    assert isinstance(info.value, ConfigError)
    message = str(info.value)
    assert "matches 2 processes" in message
    assert "pid 7: './objs/srs -c conf/edge.conf'" in message
    assert "pid 8: './objs/srs -c conf/origin.conf'" in message
    assert find_srs(r"srs -c conf/edge\.conf", str(root)) == 7
