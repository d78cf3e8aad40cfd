"""The config watcher on real inotify: kubelet swaps, plain writes, includes elsewhere,
and a config directory that is removed, replaced or not there yet."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest

from agents.watch import Change, ChangeKind, ConfigDirWatcher
from tests.kubelet import ConfigMapVolume

pytestmark = pytest.mark.integration


class Recorder:
    """Collects changes; `barrier()` waits until every event before it was handled."""

    def __init__(self, tmp: Path) -> None:
        self.changes: list[Change] = []
        self.arrived = asyncio.Event()
        self.barrier_file = tmp / "barrier" / "barrier.conf"
        self.barrier_file.parent.mkdir()

    def __call__(self, change: Change) -> None:
        self.changes.append(change)
        self.arrived.set()

    async def wait_for(self, kind: ChangeKind, timeout: float = 5.0) -> Change:
        async with asyncio.timeout(timeout):
            while True:
                for change in self.changes:
                    if change.kind is kind:
                        return change
                self.arrived.clear()
                await self.arrived.wait()

    async def barrier(self) -> list[tuple[ChangeKind, str]]:
        """Write the barrier file (watched as an include); inotify keeps order on one fd,
        so once its event is in, all earlier ones are too. Returns what came before."""
        self.barrier_file.write_text("x")
        async with asyncio.timeout(5.0):
            while not any(c.path == str(self.barrier_file) for c in self.changes):
                self.arrived.clear()
                await self.arrived.wait()
        seen = [(c.kind, os.path.basename(c.path)) for c in self.changes
                if c.path != str(self.barrier_file)]
        self.changes.clear()
        return seen


def start(conf_dir: Path, rec: Recorder) -> ConfigDirWatcher:
    watcher = ConfigDirWatcher(str(conf_dir), "srs.conf", rec)
    watcher.start()
    watcher.watch_files([str(rec.barrier_file)])
    return watcher


async def test_each_kubelet_swap_is_one_commit(tmp_path: Path) -> None:
    conf_dir = tmp_path / "conf"
    volume = ConfigMapVolume(str(conf_dir))
    volume.update({"srs.conf": "listen 1935;\n"})
    rec = Recorder(tmp_path)
    watcher = start(conf_dir, rec)
    try:
        for n in range(3):
            volume.update({"srs.conf": f"listen 1935; # v{n}\n", "other": str(n)})
        volume.update({"srs.conf": "listen 1935; # v2\n", "other": "2"})  # unchanged: no swap
        seen = await rec.barrier()
        assert seen == [(ChangeKind.COMMIT, "..data")] * 3
    finally:
        watcher.close()


async def test_first_publish_is_a_commit_and_the_link_a_write(tmp_path: Path) -> None:
    conf_dir = tmp_path / "conf"
    conf_dir.mkdir()
    rec = Recorder(tmp_path)
    watcher = start(conf_dir, rec)
    try:
        ConfigMapVolume(str(conf_dir)).update({"srs.conf": "listen 1935;\n"})
        # The kubelet links srs.conf after the swap (step 10).
        assert await rec.barrier() == [(ChangeKind.COMMIT, "..data"),
                                       (ChangeKind.WRITE, "srs.conf")]
    finally:
        watcher.close()


async def test_plain_writes_renames_and_includes(tmp_path: Path) -> None:
    conf_dir = tmp_path / "conf"
    conf_dir.mkdir()
    (conf_dir / "srs.conf").write_text("listen 1935;\n")
    elsewhere = tmp_path / "etc"
    elsewhere.mkdir()
    rec = Recorder(tmp_path)
    watcher = start(conf_dir, rec)
    watcher.watch_files([str(elsewhere / "vhost.conf"), str(rec.barrier_file)])
    try:
        with open(conf_dir / "srs.conf", "a") as fh:  # in place: one close-after-write
            fh.write("# more\n")
        (conf_dir / "unrelated.txt").write_text("x")  # not ours: nothing
        (conf_dir / "srs.conf.tmp").write_text("listen 1935;\n")
        os.rename(conf_dir / "srs.conf.tmp", conf_dir / "srs.conf")  # editor-style save
        (elsewhere / "vhost.conf").write_text("vhost a {}\n")  # created and written
        seen = await rec.barrier()
        assert seen == [
            (ChangeKind.WRITE, "srs.conf"),
            (ChangeKind.WRITE, "srs.conf"),
            (ChangeKind.WRITE, "vhost.conf"),
            (ChangeKind.WRITE, "vhost.conf"),
        ]
        # Files published through ..data need no watch of their own.
        watcher.watch_files([str(conf_dir / "..data" / "inc.conf"), str(rec.barrier_file)])
        (elsewhere / "vhost.conf").write_text("vhost b {}\n")  # no longer included
        assert await rec.barrier() == []
    finally:
        watcher.close()


async def test_directory_removed_then_recreated(tmp_path: Path) -> None:
    conf_dir = tmp_path / "conf"
    conf_dir.mkdir()
    (conf_dir / "srs.conf").write_text("listen 1935;\n")
    rec = Recorder(tmp_path)
    watcher = start(conf_dir, rec)
    try:
        shutil.rmtree(conf_dir)
        assert await rec.barrier() == []
        assert not watcher.armed
        conf_dir.mkdir()
        await rec.wait_for(ChangeKind.REARM)
        assert watcher.armed
        (conf_dir / "srs.conf").write_text("listen 1936;\n")
        assert await rec.barrier() == [
            (ChangeKind.REARM, "conf"), (ChangeKind.WRITE, "srs.conf"),
            (ChangeKind.WRITE, "srs.conf"),
        ]
    finally:
        watcher.close()


async def test_directory_replaced_by_rename(tmp_path: Path) -> None:
    conf_dir = tmp_path / "conf"
    conf_dir.mkdir()
    (conf_dir / "srs.conf").write_text("listen 1935;\n")
    rec = Recorder(tmp_path)
    watcher = start(conf_dir, rec)
    try:
        new = tmp_path / "conf.new"
        new.mkdir()
        (new / "srs.conf").write_text("listen 1936;\n")
        os.rename(conf_dir, tmp_path / "conf.old")
        os.rename(new, conf_dir)
        await rec.wait_for(ChangeKind.REARM)
        (tmp_path / "conf.old" / "srs.conf").write_text("stale")  # the old dir: not watched
        (conf_dir / "srs.conf").write_text("listen 1937;\n")
        seen = await rec.barrier()
        assert seen[0] == (ChangeKind.REARM, "conf")
        assert set(seen[1:]) == {(ChangeKind.WRITE, "srs.conf")}
    finally:
        watcher.close()


async def test_directory_missing_at_start_then_created_deep(tmp_path: Path) -> None:
    conf_dir = tmp_path / "a" / "b" / "conf"
    rec = Recorder(tmp_path)
    watcher = start(conf_dir, rec)
    try:
        assert not watcher.armed
        (tmp_path / "a").mkdir()
        (tmp_path / "a" / "b").mkdir()
        assert await rec.barrier() == []
        ConfigMapVolume(str(conf_dir)).update({"srs.conf": "listen 1935;\n"})
        await rec.wait_for(ChangeKind.REARM)
        assert watcher.armed
    finally:
        watcher.close()
