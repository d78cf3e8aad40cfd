"""Watch a config directory with inotify, on the event loop: no thread, no polling.

What counts as a change (decided here, acted on by the caller):
- COMMIT: `..data` renamed (or linked) into the directory. That is the kubelet's commit
  point: the new version is complete, act at once.
- WRITE: the config file or an included file written (close after write), created or
  renamed into place: plain (non-Kubernetes) edits, gathered by the caller's debounce.
- REARM: the directory was removed or replaced (`rm -rf conf; cp -r new conf`, `mv`)
  and is back; the watch is on the new directory. Until it is back, the nearest
  existing ancestor is watched for it to reappear.
- OVERFLOW: the kernel's event queue overflowed; anything may have changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import errno
import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from inotify_simple import INotify
from inotify_simple import flags as F

from agents.configdir import DATA, in_hidden_dir
from agents.runtime.logs import fields

log = logging.getLogger("srs_agent.watch")

DIR_MASK = (
    F.CREATE | F.MOVED_TO | F.CLOSE_WRITE | F.DELETE_SELF | F.MOVE_SELF | F.ONLYDIR
)
_GONE = F.DELETE_SELF | F.MOVE_SELF | F.IGNORED | F.UNMOUNT


class ChangeKind(enum.Enum):
    COMMIT = "commit"
    WRITE = "write"
    REARM = "rearm"
    OVERFLOW = "overflow"


@dataclass(frozen=True)
class Change:
    kind: ChangeKind
    path: str  # the file or directory the event named
    at: float  # time.monotonic() when the event was read


class ConfigDirWatcher:
    """inotify watches on the config directory and on the directories of included files.

    `on_change` is called from the event loop's reader callback, once per relevant
    event, in order. Start with `start()` inside a running loop; `close()` ends it.
    """

    def __init__(
        self,
        config_dir: str,
        config_file: str,
        on_change: Callable[[Change], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config_dir = os.path.abspath(config_dir)
        self.config_path = os.path.join(self.config_dir, config_file)
        self._on_change = on_change
        self._clock = clock
        self._inotify: INotify | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._dirs: dict[int, set[str]] = {}  # wd -> watched directory paths
        self._dir_wd: int | None = None  # the config directory's watch, when armed
        self._ancestor: tuple[int, str] | None = None  # (wd, path) while the dir is away
        self._files: set[str] = {self.config_path}  # paths whose writes count

    @property
    def armed(self) -> bool:
        """Whether the config directory itself is watched (False while it is away)."""
        return self._dir_wd is not None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._inotify = INotify(nonblocking=True)
        self._loop.add_reader(self._inotify.fileno(), self._on_readable)
        if not self._arm():
            log.warning("config directory does not exist; waiting for it to appear",
                        extra=fields(dir=self.config_dir))
        self.watch_files(())

    def close(self) -> None:
        if self._inotify is not None:
            if self._loop is not None:
                self._loop.remove_reader(self._inotify.fileno())
            self._inotify.close()
            self._inotify = None
        self._dirs.clear()
        self._dir_wd = None
        self._ancestor = None

    def watch_files(self, paths: Iterable[str]) -> None:
        """Count writes to the config file and these files (the includes) from now on.

        Files published through `..data` need no watch of their own: the swap covers
        them. Others get a watch on their directory.
        """
        files = {self.config_path}
        for path in paths:
            absolute = os.path.abspath(path)
            if not in_hidden_dir(absolute, self.config_dir):
                files.add(absolute)
        self._files = files
        wanted = {os.path.dirname(f) for f in files} - {self.config_dir}
        keep = wanted | {self.config_dir}
        if self._ancestor is not None:
            keep.add(self._ancestor[1])
        for wd, dirs in list(self._dirs.items()):
            dirs.intersection_update(keep)
            if not dirs:
                self._rm_watch(wd)
        watched = {d for dirs in self._dirs.values() for d in dirs}
        for directory in sorted(wanted - watched):
            self._add_watch(directory)

    # -- internals -----------------------------------------------------------------

    def _add_watch(self, directory: str) -> int | None:
        assert self._inotify is not None
        try:
            wd: int = self._inotify.add_watch(directory, DIR_MASK)
        except OSError as exc:
            if exc.errno not in (errno.ENOENT, errno.ENOTDIR):
                log.warning("cannot watch directory: %s", exc.strerror,
                            extra=fields(dir=directory))
            return None
        self._dirs.setdefault(wd, set()).add(directory)
        return wd

    def _rm_watch(self, wd: int) -> None:
        self._dirs.pop(wd, None)
        if self._inotify is not None:
            with contextlib.suppress(OSError):  # already gone (IN_IGNORED raced us)
                self._inotify.rm_watch(wd)

    def _arm(self) -> bool:
        """Watch the config directory; if it is missing, watch the nearest ancestor."""
        wd = self._add_watch(self.config_dir)
        if wd is not None:
            self._dir_wd = wd
            if self._ancestor is not None:
                old_wd, old_path = self._ancestor
                self._ancestor = None
                dirs = self._dirs.get(old_wd)
                if dirs is not None and old_wd != wd:
                    dirs.discard(old_path)
                    if not dirs:
                        self._rm_watch(old_wd)
            return True
        self._dir_wd = None
        parent = os.path.dirname(self.config_dir)
        while True:
            if self._ancestor is not None and self._ancestor[1] == parent:
                return False
            ancestor_wd = self._add_watch(parent)
            if ancestor_wd is not None:
                if self._ancestor is not None and self._ancestor[0] != ancestor_wd:
                    old_wd, old_path = self._ancestor
                    dirs = self._dirs.get(old_wd)
                    if dirs is not None:
                        dirs.discard(old_path)
                        if not dirs:
                            self._rm_watch(old_wd)
                self._ancestor = (ancestor_wd, parent)
                # The directory may have come back between our two calls.
                return self._arm() if os.path.isdir(self.config_dir) else False
            if parent == os.path.dirname(parent):
                return False
            parent = os.path.dirname(parent)

    def _on_readable(self) -> None:
        if self._inotify is None:
            return
        try:
            events = self._inotify.read(timeout=0)
        except BlockingIOError:
            return
        now = self._clock()
        for event in events:
            self._handle(event.wd, event.mask, event.name, now)

    def _handle(self, wd: int, mask: int, name: str, now: float) -> None:
        if mask & F.Q_OVERFLOW:
            log.warning("inotify queue overflowed; re-reading the config")
            self._emit(Change(ChangeKind.OVERFLOW, self.config_dir, now))
            if not self.armed:
                self._rearm(now)
            return
        dirs = self._dirs.get(wd)
        if dirs is None:
            return
        if mask & _GONE:
            self._gone(wd, now)
            return
        for directory in list(dirs):
            path = os.path.join(directory, name)
            if self._ancestor is not None and self._ancestor[0] == wd and \
                    directory == self._ancestor[1]:
                if mask & (F.CREATE | F.MOVED_TO) and mask & F.ISDIR:
                    self._rearm(now)
                continue
            if directory == self.config_dir and name == DATA and mask & (F.MOVED_TO | F.CREATE):
                self._emit(Change(ChangeKind.COMMIT, path, now))
            elif path in self._files and mask & (F.CLOSE_WRITE | F.MOVED_TO | F.CREATE):
                self._emit(Change(ChangeKind.WRITE, path, now))

    def _gone(self, wd: int, now: float) -> None:
        was_config = wd == self._dir_wd
        was_ancestor = self._ancestor is not None and self._ancestor[0] == wd
        self._rm_watch(wd)
        if was_config:
            self._dir_wd = None
            log.warning("config directory removed or moved away; waiting for it to come back",
                        extra=fields(dir=self.config_dir))
            self._rearm(now)
        elif was_ancestor:
            self._ancestor = None
            self._rearm(now)

    def _rearm(self, now: float) -> None:
        if self._arm():
            log.info("config directory is back; watching it again",
                     extra=fields(dir=self.config_dir))
            self.watch_files(self._files)
            self._emit(Change(ChangeKind.REARM, self.config_dir, now))

    def _emit(self, change: Change) -> None:
        log.debug("config change seen", extra=fields(kind=change.kind.value, path=change.path))
        self._on_change(change)
