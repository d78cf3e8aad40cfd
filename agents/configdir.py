"""A config directory in the kubelet's ConfigMap layout: write it, read where it points.

The kubelet publishes a ConfigMap volume atomically: the files go into a new hidden
`..<UTC timestamp>.<random>` directory, a `..data_tmp` symlink to it is renamed over
`..data` (the commit point: rename(2) is atomic), and each key is a top-level symlink
`<key> -> ..data/<key>`. SRS's own inotify reload and our watcher both key on the
`..data` rename. In API mode the agent writes this same layout into a shared emptyDir,
so SRS, the watcher and any other reader cannot tell it from a ConfigMap volume; only
the delay differs.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from agents.errors import ConfigError

DATA = "..data"
DATA_TMP = "..data_tmp"
FILE_MODE = 0o644  # a ConfigMap volume's defaultMode
_KEY_RE = re.compile(r"[-._a-zA-Z0-9]+")  # a ConfigMap key (validation.IsConfigMapKey)


def check_keys(keys: Iterable[str], where: str) -> None:
    """ConfigError unless every key is a valid ConfigMap key usable as a file name."""
    for key in keys:
        if len(key) > 253 or not _KEY_RE.fullmatch(key) or key in {".", ".."} or \
                key.startswith(".."):
            raise ConfigError(
                f"{where}: key {key!r} cannot be a file name in the config directory "
                "(keys are [-._a-zA-Z0-9]+, at most 253 characters, not starting with '..')"
            )


def data_target(config_dir: str) -> str | None:
    """Name of the timestamped directory `..data` points at; None without the layout."""
    try:
        return os.readlink(os.path.join(config_dir, DATA))
    except (FileNotFoundError, NotADirectoryError, OSError):
        return None


def is_hidden(name: str) -> bool:
    """Names the writer reserves (`..data`, `..data_tmp`, `..<ts>`): not user files."""
    return name.startswith("..")


def in_hidden_dir(path: str, config_dir: str) -> bool:
    """Whether `path` lies inside `config_dir/..<something>` (published through `..data`)."""
    rel = os.path.relpath(os.path.abspath(path), os.path.abspath(config_dir))
    first = rel.split(os.sep, 1)[0]
    return first != ".." and is_hidden(first)


def change_time(config_dir: str, files: Iterable[str]) -> float | None:
    """When the config on disk last changed (epoch seconds), or None if nothing is there.

    With the kubelet layout that is the `..data` swap (the link's own ctime: rename
    sets it); otherwise the newest ctime among `files` (ctime, unlike mtime, cannot be
    set back by `cp -p` or `touch -d`).
    """
    try:
        return os.lstat(os.path.join(config_dir, DATA)).st_ctime
    except OSError:
        pass
    newest: float | None = None
    for path in files:
        try:
            ctime = os.stat(path).st_ctime
        except OSError:
            continue
        newest = ctime if newest is None else max(newest, ctime)
    return newest


@dataclass(frozen=True)
class Publication:
    """A version swapped in by `AtomicDir.publish`, the previous one still on disk."""

    new: str  # the new ..<ts> directory
    old: str | None  # the previous one, if any
    stale: frozenset[str]  # visible names the new version no longer has
    linked: frozenset[str]  # visible links this publication created


class AtomicDir:
    """Writes a payload into `target_dir` the way the kubelet's AtomicWriter does.

    One writer per directory; calls must not overlap (the API source serializes them).
    """

    def __init__(self, target_dir: str, now: Callable[[], float] = time.time) -> None:
        if not os.path.isdir(target_dir):
            raise ConfigError(f"--config-dir {target_dir!r} is not a directory")
        self.target_dir = target_dir
        self._now = now

    def write(self, payload: Mapping[str, bytes], mode: int = FILE_MODE) -> str | None:
        """Publish `payload` (file name -> bytes); the new `..<ts>` name, or None if the
        directory already holds exactly this payload (nothing is written then)."""
        publication = self.publish(payload, mode)
        if publication is None:
            return None
        self.finish(publication)
        return publication.new

    def publish(self, payload: Mapping[str, bytes], mode: int = FILE_MODE) -> Publication | None:
        """Write a new version and swap `..data` to it, keeping the previous version on
        disk until `finish` (or `undo`, which brings it back); None if nothing changed."""
        check_keys(payload, f"--config-dir {self.target_dir}")
        old = data_target(self.target_dir)
        old_path = os.path.join(self.target_dir, old) if old else None
        stale: set[str] = set()
        if old_path is not None:
            stale = self._names_in(old_path) - set(payload)
            if not stale and self._same_content(old_path, payload):
                self._link_visible(payload)
                return None
        new_name, new_path = self._make_ts_dir()
        try:
            for name, content in payload.items():
                path = os.path.join(new_path, name)
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
                with os.fdopen(fd, "wb") as fh:
                    fh.write(content)
                os.chmod(path, mode)
            self._swap(new_name)  # the commit point
        except OSError:
            shutil.rmtree(new_path, ignore_errors=True)
            raise
        linked = self._link_visible(payload)
        return Publication(new=new_name, old=old, stale=frozenset(stale),
                           linked=frozenset(linked))

    def finish(self, publication: Publication) -> None:
        """Drop what the previous version had and this one has not, then the previous
        version itself."""
        for name in publication.stale:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(self.target_dir, name))
        if publication.old:
            shutil.rmtree(os.path.join(self.target_dir, publication.old), ignore_errors=True)

    def undo(self, publication: Publication) -> None:
        """Put the directory back as it was before `publish`."""
        if publication.old:
            self._swap(publication.old)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(self.target_dir, DATA))
        for name in publication.linked:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(self.target_dir, name))
        shutil.rmtree(os.path.join(self.target_dir, publication.new), ignore_errors=True)

    def _swap(self, ts_name: str) -> None:
        tmp_link = os.path.join(self.target_dir, DATA_TMP)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_link)  # left over by a writer killed mid-swap
        os.symlink(ts_name, tmp_link)
        os.rename(tmp_link, os.path.join(self.target_dir, DATA))

    def _names_in(self, directory: str) -> set[str]:
        try:
            return set(os.listdir(directory))
        except FileNotFoundError:
            return set()

    def _same_content(self, directory: str, payload: Mapping[str, bytes]) -> bool:
        for name, content in payload.items():
            try:
                with open(os.path.join(directory, name), "rb") as fh:
                    if fh.read() != content:
                        return False
            except FileNotFoundError:
                return False
        return True

    def _make_ts_dir(self) -> tuple[str, str]:
        stamp = time.strftime("..%Y_%m_%d_%H_%M_%S.", time.gmtime(self._now()))
        while True:
            name = stamp + str(secrets.randbits(32))
            path = os.path.join(self.target_dir, name)
            try:
                os.mkdir(path, 0o755)
            except FileExistsError:
                continue
            os.chmod(path, 0o755)
            return name, path

    def _link_visible(self, payload: Mapping[str, bytes]) -> list[str]:
        created = []
        for name in payload:
            link = os.path.join(self.target_dir, name)
            if not os.path.lexists(link):
                os.symlink(os.path.join(DATA, name), link)
                created.append(name)
        return created
