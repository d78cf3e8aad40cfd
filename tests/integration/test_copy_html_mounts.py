"""copy-html against real read-only and full file systems (tmpfs mounts; needs root).

As root, chmod does not stop writes, so a read-only target is a tmpfs remounted ro, and a
full disk is a tmpfs smaller than the tree. Where mounting is impossible the tests skip,
saying loudly that nothing was tested.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from agents.htmlcopy_plan import MARKER_NAME, encode_intent, is_intent
from tests.unit.test_htmlcopy_tree import (
    build_html_tree,
    copy_html,
    files_of,
    log_lines,
    snapshot,
    temp_files,
)

pytestmark = pytest.mark.integration


def _mount(*args: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(["mount", *args], capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        return subprocess.CompletedProcess(["mount"], 127, "", str(exc))


@contextmanager
def tmpfs(path: Path, size_bytes: int) -> Iterator[Path]:
    path.mkdir()
    done = _mount("-t", "tmpfs", "-o", f"size={size_bytes},mode=0755", "tmpfs", str(path))
    if done.returncode != 0:
        pytest.skip(f"NOT TESTED: cannot mount a tmpfs at {path} ({done.stderr.strip()}); "
                    "this test needs root with CAP_SYS_ADMIN")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


def remount(path: Path, options: str) -> None:
    done = _mount("-o", f"remount,{options}", str(path))
    assert done.returncode == 0, done.stderr


def intents(vol: Path) -> list[str]:
    return sorted(p.name for p in vol.iterdir() if is_intent(p.name))


def errors(stderr: str) -> list[str]:
    return [x["msg"] for x in log_lines(stderr) if x["level"] == "error"]


def whole_files_only(vol: Path, src: Path) -> None:
    source = files_of(src)
    for rel, data in files_of(vol).items():
        assert rel == MARKER_NAME or is_intent(rel) or data == source[rel], rel


@pytest.fixture
def v1(tmp_path: Path) -> Path:
    build_html_tree(tmp_path / "html")
    return tmp_path / "html"


def test_read_only_target(tmp_path: Path, v1: Path) -> None:
    with tmpfs(tmp_path / "vol", 64 << 20) as vol:
        remount(vol, "ro")
        result = copy_html(v1, vol)
        assert result.returncode == 1, result.stderr
        [msg] = errors(result.stderr)
        assert msg.startswith(f"cannot create the directory {vol}/")
        assert msg.endswith(": Read-only file system")
        assert list(vol.iterdir()) == []

        # Seeded while writable, it may go read-only: a rerun has nothing to write.
        remount(vol, "rw")
        assert copy_html(v1, vol).returncode == 0
        remount(vol, "ro")
        result = copy_html(v1, vol)
        assert result.returncode == 0, result.stderr

        # An upgrade does need writes: a clear error naming the file, the tree as it was.
        before = snapshot(vol)
        (v1 / "players/js/asset-3.js").write_bytes(b"// changed")
        Path(str(v1) + ".version").write_text("6.0.156")
        result = copy_html(v1, vol)
        assert result.returncode == 1, result.stderr
        assert errors(result.stderr) == [
            f"cannot write {vol}/players/js/asset-3.js: Read-only file system"]
        assert snapshot(vol) == before


def test_disk_full_mid_tree(tmp_path: Path, v1: Path) -> None:
    with tmpfs(tmp_path / "vol", 1 << 20) as vol:
        result = copy_html(v1, vol)
        assert result.returncode == 1, result.stderr
        [msg] = errors(result.stderr)
        assert msg.startswith(f"cannot write {vol}/") and msg.endswith(
            ": No space left on device")
        assert temp_files(vol) == []
        assert not (vol / MARKER_NAME).exists()
        whole_files_only(vol, v1)
        left = intents(vol)
        assert len(left) == 1  # what it renamed stays claimed until a marker records it
        # Space freed: the next run completes the tree (and leaves no intent of its own).
        remount(vol, f"size={64 << 20}")
        result = copy_html(v1, vol)
        assert result.returncode == 0, result.stderr
        assert intents(vol) == left
        assert {k: v for k, v in files_of(vol).items()
                if k != MARKER_NAME and not is_intent(k)} == files_of(v1)


def test_disk_full_when_writing_the_marker(tmp_path: Path, v1: Path) -> None:
    page = os.sysconf("SC_PAGE_SIZE")
    files = files_of(v1)
    intent = encode_intent({rel: hashlib.sha256(data).hexdigest() for rel, data in files.items()})
    pages = sum(-(-len(data) // page) for data in [*files.values(), intent])
    with tmpfs(tmp_path / "vol", (pages + 2) * page) as vol:  # the tree fits, the marker not
        result = copy_html(v1, vol)
        assert result.returncode == 1, result.stderr
        assert errors(result.stderr) == [
            f"cannot write {vol}/{MARKER_NAME}: No space left on device"]
        assert temp_files(vol) == [] and not (vol / MARKER_NAME).exists()
        [left] = intents(vol)
        assert (vol / left).read_bytes() == intent
        assert {k: v for k, v in files_of(vol).items() if k != left} == files
        remount(vol, f"size={(pages + 16) * page}")
        before = {rel: st for rel, st in snapshot(vol).items() if rel != "."}
        result = copy_html(v1, vol)
        assert result.returncode == 0, result.stderr
        after = snapshot(vol)
        assert all(after[rel] == st for rel, st in before.items())  # only the marker is new
        assert (vol / MARKER_NAME).exists()
