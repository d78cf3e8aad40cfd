"""A ConfigMap volume written exactly as the kubelet writes it, for tests.

An independent re-implementation of kubernetes' pkg/volume/util/atomic_writer.go,
`AtomicWriter.Write` (the 12-step version with `setPerms`, Kubernetes 1.29 and later),
kept apart from agents/configdir.py on purpose: the agent is tested against this, so
the two must not share code. Each step below carries the number it has in the Go
source. The kubelet's configmap volume plugin (pkg/volume/configmap) turns a ConfigMap
into a payload of one file per key with the volume's `defaultMode` (0644) and calls
Write on every sync; an unchanged ConfigMap writes nothing.
"""

from __future__ import annotations

import contextlib
import errno
import os
import posixpath
import random
import shutil
import stat
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

DATA_DIR_NAME = "..data"  # dataDirName
NEW_DATA_DIR_NAME = "..data_tmp"  # newDataDirName
MAX_FILE_NAME_LENGTH = 255  # maxFileNameLength
MAX_PATH_LENGTH = 4096  # maxPathLength
DEFAULT_MODE = 0o644  # ConfigMapVolumeSource.defaultMode


@dataclass(frozen=True)
class FileProjection:
    data: bytes
    mode: int = DEFAULT_MODE


class InvalidPayload(ValueError):
    """validatePath's errors."""


def configmap_payload(
    data: Mapping[str, str | bytes], mode: int = DEFAULT_MODE
) -> dict[str, FileProjection]:
    """What the configmap plugin's MakePayload builds without `items`: key -> file."""
    return {
        key: FileProjection(value.encode() if isinstance(value, str) else value, mode)
        for key, value in data.items()
    }


def validate_path(target_path: str) -> None:
    """validatePath: not empty, relative, <= 4096 chars, no '..' element, names <= 255,
    and the first element does not start with '..'."""
    if target_path == "":
        raise InvalidPayload(f"invalid path: must not be empty: {target_path!r}")
    if posixpath.isabs(target_path):
        raise InvalidPayload(f"invalid path: must be relative path: {target_path}")
    if len(target_path) > MAX_PATH_LENGTH:
        raise InvalidPayload(
            f"invalid path: must be less than or equal to {MAX_PATH_LENGTH} characters"
        )
    items = target_path.split("/")
    for item in items:
        if item == "..":
            raise InvalidPayload(f"invalid path: must not contain '..': {target_path}")
        if len(item) > MAX_FILE_NAME_LENGTH:
            raise InvalidPayload(
                "invalid path: filenames must be less than or equal to "
                f"{MAX_FILE_NAME_LENGTH} characters"
            )
    if items[0].startswith("..") and len(items[0]) > 2:
        raise InvalidPayload(f"invalid path: must not start with '..': {target_path}")


class AtomicWriter:
    """NewAtomicWriter(targetDir): the target directory must exist."""

    def __init__(
        self, target_dir: str, now: Callable[[], float] = time.time,
        before_swap: Callable[[], None] | None = None,
    ) -> None:
        os.stat(target_dir)  # os.Stat; IsNotExist -> error
        self.target_dir = target_dir
        self._now = now
        self._before_swap = before_swap  # for timing from the commit point

    def write(self, payload: Mapping[str, FileProjection]) -> bool:
        """Write(payload, setPerms=nil). Returns whether a new version was published."""
        # (1) The payload is validated; paths are cleaned (filepath.Clean).
        clean_payload: dict[str, FileProjection] = {}
        for key, content in payload.items():
            validate_path(key)
            clean_payload[posixpath.normpath(key)] = content

        # (2) The current timestamped directory is detected by reading the data directory
        # symlink; a missing link means there was no old version.
        data_dir_path = os.path.join(self.target_dir, DATA_DIR_NAME)
        try:
            old_ts_dir = os.readlink(data_dir_path)
        except FileNotFoundError:
            old_ts_dir = ""
        old_ts_path = os.path.join(self.target_dir, old_ts_dir)

        paths_to_remove: set[str] = set()
        should_write = True
        if old_ts_dir:
            # (3) The old version is walked for paths the new payload no longer has.
            paths_to_remove = self._paths_to_remove(clean_payload, old_ts_path)
            # (4) The old data is compared to the payload; nothing changed and nothing to
            # remove: no new version, but the user-visible links are still ensured
            # (kubernetes#121472), and the current directory is kept.
            if not _should_write_payload(clean_payload, old_ts_path) and not paths_to_remove:
                should_write = False
                old_ts_dir = ""

        if should_write:
            # (5) A new timestamped dir is created (os.MkdirTemp + chmod 0755).
            ts_dir = self._new_timestamp_dir()
            ts_dir_name = os.path.basename(ts_dir)
            # (6) The payload is written to the new timestamped directory.
            _write_payload_to_dir(clean_payload, ts_dir)
            # (7) setPerms is nil for a volume without fsGroup: nothing to do.
            # (8) A symlink ..data_tmp to the new timestamped directory is created.
            new_data_dir_path = os.path.join(self.target_dir, NEW_DATA_DIR_NAME)
            try:
                os.symlink(ts_dir_name, new_data_dir_path)
            except OSError:
                shutil.rmtree(ts_dir, ignore_errors=True)
                raise
            # (9) ..data_tmp is renamed over ..data; rename(2) is atomic.
            if self._before_swap is not None:
                self._before_swap()
            try:
                os.rename(new_data_dir_path, data_dir_path)
            except OSError:
                _remove_quietly(new_data_dir_path)
                shutil.rmtree(ts_dir, ignore_errors=True)
                raise

        # (10) User-visible symlinks are created if missing (after the swap since 1.29).
        self._create_user_visible_files(clean_payload)
        # (11) Old paths are removed from the user-visible part of the target directory.
        self._remove_user_visible_paths(paths_to_remove)
        # (12) The previous timestamped directory is removed, if it exists.
        if old_ts_dir:
            shutil.rmtree(old_ts_path)
        return should_write

    def _paths_to_remove(self, payload: Mapping[str, FileProjection], old_ts_dir: str) -> set[str]:
        """pathsToRemove: every path under the old timestamped dir (filepath.Walk), minus
        each payload path and all its parent directories."""
        paths: set[str] = set()
        if not os.path.lexists(old_ts_dir):
            return paths
        for root, dirs, files in os.walk(old_ts_dir):
            for name in [*dirs, *files]:
                paths.add(os.path.relpath(os.path.join(root, name), old_ts_dir))
        new_paths: set[str] = set()
        for file in payload:
            sub_path = file
            while sub_path:
                new_paths.add(sub_path)
                sub_path = posixpath.split(sub_path)[0]
        return paths - new_paths

    def _new_timestamp_dir(self) -> str:
        """newTimestampDir: os.MkdirTemp(targetDir, UTC "..2006_01_02_15_04_05.") appends a
        random uint32 in decimal and retries on a clash; then chmod 0755."""
        prefix = time.strftime("..%Y_%m_%d_%H_%M_%S.", time.gmtime(self._now()))
        for _ in range(10000):
            path = os.path.join(self.target_dir, prefix + str(random.getrandbits(32)))
            try:
                os.mkdir(path, 0o700)  # MkdirTemp creates with 0700
            except FileExistsError:
                continue
            os.chmod(path, 0o755)
            return path
        raise FileExistsError(errno.EEXIST, "no free timestamped directory name", prefix)

    def _create_user_visible_files(self, payload: Mapping[str, FileProjection]) -> None:
        """createUserVisibleFiles: link the first element of each path into ..data when
        os.Readlink says it does not exist."""
        for user_visible_path in payload:
            linkname = user_visible_path.split("/", 1)[0]
            visible_file = os.path.join(self.target_dir, linkname)
            try:
                os.readlink(visible_file)
            except FileNotFoundError:
                os.symlink(os.path.join(DATA_DIR_NAME, linkname), visible_file)
            except OSError:
                pass  # exists but is not a link (EINVAL): left alone, as in Go

    def _remove_user_visible_paths(self, paths: set[str]) -> None:
        """removeUserVisiblePaths: only top-level names; go on after an error, raise the
        last one."""
        last: OSError | None = None
        for path in paths:
            if "/" in path:
                continue
            try:
                _remove(os.path.join(self.target_dir, path))
            except OSError as exc:
                last = exc
        if last is not None:
            raise last


def _should_write_payload(payload: Mapping[str, FileProjection], old_ts_dir: str) -> bool:
    """shouldWritePayload/shouldWriteFile: a path missing (Lstat) or with other bytes."""
    for user_visible_path, projection in payload.items():
        path = os.path.join(old_ts_dir, user_visible_path)
        if not os.path.lexists(path):
            return True
        with open(path, "rb") as fh:
            if fh.read() != projection.data:
                return True
    return False


def _write_payload_to_dir(payload: Mapping[str, FileProjection], directory: str) -> None:
    """writePayloadToDir: MkdirAll(0777), os.WriteFile(mode), then Chmod(mode) so the
    umask does not apply."""
    for user_visible_path, projection in payload.items():
        full_path = os.path.join(directory, user_visible_path)
        os.makedirs(os.path.dirname(full_path), 0o777, exist_ok=True)
        fd = os.open(full_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, projection.mode)
        try:
            view = memoryview(projection.data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
        os.chmod(full_path, projection.mode)


def _remove(path: str) -> None:
    """os.Remove: unlink, or rmdir for an empty directory."""
    st = os.lstat(path)
    if stat.S_ISDIR(st.st_mode):
        os.rmdir(path)
    else:
        os.unlink(path)


def _remove_quietly(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


class ConfigMapVolume:
    """A mounted ConfigMap as the kubelet keeps it: `update(data)` is one sync."""

    def __init__(
        self, target_dir: str, mode: int = DEFAULT_MODE,
        before_swap: Callable[[], None] | None = None,
    ) -> None:
        os.makedirs(target_dir, exist_ok=True)
        self.writer = AtomicWriter(target_dir, before_swap=before_swap)
        self.target_dir = target_dir
        self.mode = mode

    def update(self, data: Mapping[str, str | bytes]) -> bool:
        return self.writer.write(configmap_payload(data, self.mode))
