"""The kubelet layout on real directories: the test helper (tests/kubelet.py) and the
agent's writer (agents/configdir.py) must produce the same thing."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest

from agents import configdir
from agents.errors import ConfigError
from tests.kubelet import AtomicWriter, ConfigMapVolume, InvalidPayload, configmap_payload

pytestmark = pytest.mark.integration

TS_NAME = re.compile(r"^\.\.\d{4}_\d\d_\d\d_\d\d_\d\d_\d\d\.\d+$")


def layout(directory: Path) -> dict[str, object]:
    """What a reader sees: visible links, where ..data points (by shape), file contents."""
    seen: dict[str, object] = {}
    for entry in sorted(os.listdir(directory)):
        path = directory / entry
        if entry == "..data":
            target = os.readlink(path)
            assert TS_NAME.match(target), target
            seen[entry] = "-> ..<ts>"
            for name in sorted(os.listdir(path)):
                st = os.stat(path / name)
                seen[f"..data/{name}"] = (stat.S_IMODE(st.st_mode), (path / name).read_bytes())
            seen["..<ts> mode"] = stat.S_IMODE(os.stat(directory / target).st_mode)
        elif TS_NAME.match(entry):
            seen.setdefault("ts dirs", 0)
            seen["ts dirs"] = int(str(seen["ts dirs"])) + 1
        else:
            seen[entry] = "-> " + os.readlink(path) if path.is_symlink() else "file"
    return seen


def test_kubelet_first_write_then_update_then_key_removed(tmp_path: Path) -> None:
    volume = ConfigMapVolume(str(tmp_path))
    assert volume.update({"srs.conf": "listen 1935;\n", "vhost.conf": "a"})
    first = os.readlink(tmp_path / "..data")
    assert layout(tmp_path) == {
        "..data": "-> ..<ts>",
        "..data/srs.conf": (0o644, b"listen 1935;\n"),
        "..data/vhost.conf": (0o644, b"a"),
        "..<ts> mode": 0o755,
        "ts dirs": 1,
        "srs.conf": "-> ..data/srs.conf",
        "vhost.conf": "-> ..data/vhost.conf",
    }
    # (4) same payload: nothing written, same version
    assert not volume.update({"srs.conf": "listen 1935;\n", "vhost.conf": "a"})
    assert os.readlink(tmp_path / "..data") == first
    # a key dropped: its link goes, the old version goes (11, 12)
    assert volume.update({"srs.conf": "listen 1935;\n"})
    assert os.readlink(tmp_path / "..data") != first
    assert not (tmp_path / first).exists()
    assert not os.path.lexists(tmp_path / "vhost.conf")
    assert (tmp_path / "srs.conf").read_text() == "listen 1935;\n"
    assert not os.path.lexists(tmp_path / "..data_tmp")


def test_kubelet_validates_paths(tmp_path: Path) -> None:
    writer = AtomicWriter(str(tmp_path))
    for bad in ("", "/abs", "..hidden", "a/../b", "x" * 256):
        with pytest.raises(InvalidPayload):
            writer.write(configmap_payload({bad: "x"}))


def test_agent_writer_matches_the_kubelet(tmp_path: Path) -> None:
    kubelet_dir, agent_dir = tmp_path / "kubelet", tmp_path / "agent"
    volume = ConfigMapVolume(str(kubelet_dir))
    agent_dir.mkdir()
    writer = configdir.AtomicDir(str(agent_dir))
    versions: list[dict[str, str]] = [
        {"srs.conf": "listen 1935;\n"},
        {"srs.conf": "listen 1935;\n", "extra.conf": "x"},
        {"srs.conf": "listen 1935;\n", "extra.conf": "x"},
        {"srs.conf": "listen 1936;\n"},
    ]
    for data in versions:
        written_by_kubelet = volume.update(data)
        written_by_agent = writer.write({k: v.encode() for k, v in data.items()})
        assert written_by_kubelet == (written_by_agent is not None)
        assert layout(agent_dir) == layout(kubelet_dir)
        if written_by_agent is not None:
            assert configdir.data_target(str(agent_dir)) == written_by_agent


def test_agent_writer_undo_restores_the_previous_version(tmp_path: Path) -> None:
    writer = configdir.AtomicDir(str(tmp_path))
    writer.write({"srs.conf": b"good"})
    before = layout(tmp_path)
    target = configdir.data_target(str(tmp_path))
    publication = writer.publish({"srs.conf": b"bad", "new.conf": b"n"})
    assert publication is not None
    assert (tmp_path / "srs.conf").read_bytes() == b"bad"
    writer.undo(publication)
    assert layout(tmp_path) == before
    assert configdir.data_target(str(tmp_path)) == target

    empty = tmp_path / "empty"
    empty.mkdir()
    first = configdir.AtomicDir(str(empty))
    publication = first.publish({"srs.conf": b"bad"})
    assert publication is not None
    first.undo(publication)
    assert os.listdir(empty) == []


def test_agent_writer_rejects_keys_that_are_not_file_names(tmp_path: Path) -> None:
    writer = configdir.AtomicDir(str(tmp_path))
    for bad in ("..data", "a/b", "", "..x"):
        with pytest.raises(ConfigError, match="cannot be a file name"):
            writer.write({bad: b"x"})
    assert os.listdir(tmp_path) == []


def test_change_time_follows_the_swap_or_the_files(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "srs.conf").write_text("x")
    (plain / "inc.conf").write_text("y")
    os.utime(plain / "srs.conf", (1, 1))  # mtime set back: ctime still says "now"
    changed = configdir.change_time(str(plain), [str(plain / "srs.conf")])
    assert changed is not None and changed > 1000
    assert configdir.change_time(str(plain), [str(plain / "missing")]) is None

    kube = tmp_path / "kube"
    ConfigMapVolume(str(kube)).update({"srs.conf": "x"})
    assert configdir.change_time(str(kube), []) == os.lstat(kube / "..data").st_ctime


def test_in_hidden_dir(tmp_path: Path) -> None:
    base = str(tmp_path)
    assert configdir.in_hidden_dir(f"{base}/..data/srs.conf", base)
    assert configdir.in_hidden_dir(f"{base}/..2024_01_01_00_00_00.1/srs.conf", base)
    assert not configdir.in_hidden_dir(f"{base}/srs.conf", base)
    assert not configdir.in_hidden_dir("/etc/srs/inc.conf", base)
