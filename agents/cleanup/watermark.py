"""--max-usage: when the disk is fuller than the mark after the age-based pass, delete
the oldest eligible files first, younger than --older-than too, until usage drops
under the mark.

"Eligible" is everything the policy allows except the age: pattern matches that are
not protected and (with --srs-api) not of a stream publishing now. A full disk stops
SRS from writing anything, so the mark wins over the retention age; the oldest go
first and the newest (the live window) last. Directories are left for the next
age-based pass.

Memory stays bounded: the scan keeps only the `capacity` oldest candidates; if they
are not enough, another scan finds the next oldest.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
import threading
from collections.abc import Callable
from dataclasses import dataclass

from agents.cleanup.policy import DiskUsage, bytes_over_mark
from agents.cleanup.scan import Budget, ErrorLog, OldestFiles, Tally, Young
from agents.runtime.logs import fields

log = logging.getLogger("srs_agent.cleanup")

CAPACITY = 10_000  # candidates kept per scan (about 2 MB)
_O_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def disk_usage(path: int | str) -> DiskUsage:
    """statvfs of a path or an open file descriptor (fstatvfs)."""
    st = os.statvfs(path)
    return DiskUsage(
        total=st.f_blocks * st.f_frsize,
        free=st.f_bfree * st.f_frsize,
        available=st.f_bavail * st.f_frsize,
    )


@dataclass
class WatermarkResult:
    root: str
    max_usage: float
    usage_before: float
    usage_after: float
    files_deleted: int = 0
    bytes_freed: int = 0
    met: bool = True

    def to_dict(self) -> dict[str, object]:
        return {
            "root": self.root,
            "max_usage_percent": self.max_usage,
            "usage_before_percent": round(self.usage_before, 2),
            "usage_after_percent": round(self.usage_after, 2),
            "files_deleted": self.files_deleted,
            "bytes_freed": self.bytes_freed,
            "met": self.met,
        }


class Oldest:
    """Deletes given candidates by path, with the same checks as the age-based pass."""

    def __init__(self, root: str, root_fd: int, dev: int, *, dry_run: bool, budget: Budget,
                 abort: threading.Event, tally: Tally, errors: ErrorLog) -> None:
        self.root = root
        self.root_fd = root_fd
        self.dev = dev
        self.dry_run = dry_run
        self.budget = budget
        self.abort = abort
        self.tally = tally
        self.errors = errors

    def _open_parent(self, rel: str) -> tuple[int, str] | None:
        """Walk down to the file's directory without following symlinks or leaving the fs."""
        *dirs, name = rel.split("/")
        fd = os.dup(self.root_fd)
        try:
            for part in dirs:
                next_fd = os.open(part, _O_DIR, dir_fd=fd)
                os.close(fd)
                fd = next_fd
                if os.fstat(fd).st_dev != self.dev:
                    os.close(fd)
                    return None
        except FileNotFoundError:
            os.close(fd)
            self.tally.vanished += 1
            return None
        except OSError as exc:
            os.close(fd)
            if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                self.errors.report(self.tally, self.root, rel, "open directory", exc)
            else:
                self.tally.kept["changed"] += 1
            return None
        return fd, name

    def delete(self, young: Young) -> int:
        """Delete one candidate if it is unchanged; the disk bytes it frees (0 if kept)."""
        opened = self._open_parent(young.rel)
        if opened is None:
            return 0
        fd, name = opened
        try:
            try:
                st = os.lstat(name, dir_fd=fd)
            except FileNotFoundError:
                self.tally.vanished += 1
                return 0
            if (not stat.S_ISREG(st.st_mode) or st.st_ino != young.ino
                    or st.st_dev != self.dev or st.st_mtime != young.mtime):
                self.tally.kept["changed"] += 1
                return 0
            if not self.budget.take():
                self.abort.set()
                return 0
            path = os.path.join(self.root, young.rel)
            if self.dry_run:
                log.info("would delete %s (disk over the mark)", path, extra=fields(
                    path=path, bytes=st.st_size, mtime=st.st_mtime))
            else:
                try:
                    os.unlink(name, dir_fd=fd)
                except FileNotFoundError:
                    self.budget.give_back()
                    self.tally.vanished += 1
                    return 0
            self.tally.files_deleted += 1
            self.tally.bytes_freed += st.st_size
            return st.st_blocks * 512
        except OSError as exc:
            self.errors.report(self.tally, self.root, young.rel, "delete", exc)
            return 0
        finally:
            os.close(fd)


def enforce(root: str, max_usage: float, *, first: OldestFiles,
            rescan: Callable[[], OldestFiles], oldest: Oldest,
            usage: Callable[[], DiskUsage]) -> WatermarkResult:
    """Delete oldest-first until usage is under `max_usage`, or nothing is left to delete.

    `first` holds the oldest young candidates the age-based pass met; `rescan` scans
    again for more when they run out. `usage` reads the disk (statvfs of the root).
    """
    before = usage()
    result = WatermarkResult(root, max_usage, before.percent, before.percent)
    need = bytes_over_mark(before, max_usage)
    if need == 0:
        return result
    log.info("disk over the mark, deleting oldest eligible files first", extra=fields(
        root=root, usage_percent=round(before.percent, 2), max_usage_percent=max_usage,
        bytes_to_free=need))
    candidates = first
    while need > 0 and not oldest.abort.is_set():
        deleted_before = oldest.tally.files_deleted
        freed = 0
        for young in candidates.oldest_first():
            if oldest.abort.is_set():
                break
            freed += oldest.delete(young)
            if freed >= need:
                if oldest.dry_run:
                    need = 0  # the dry run can only estimate
                    break
                now = usage()
                need, freed = bytes_over_mark(now, max_usage), 0
                if need == 0:
                    break
        if need == 0 or oldest.abort.is_set():
            break
        if not oldest.dry_run:
            need = bytes_over_mark(usage(), max_usage)
        progressed = oldest.tally.files_deleted > deleted_before
        if need > 0 and (candidates.offered <= candidates.capacity or not progressed):
            break  # every eligible file was tried: the mark cannot be met by deleting
        if need > 0:
            candidates = rescan()
    after = usage()
    result.usage_after = after.percent
    result.files_deleted = oldest.tally.files_deleted
    result.bytes_freed = oldest.tally.bytes_freed
    result.met = need == 0 if oldest.dry_run else bytes_over_mark(after, max_usage) == 0
    if not result.met and not oldest.abort.is_set():
        log.warning("disk still over the mark: nothing more may be deleted", extra=fields(
            root=root, usage_percent=round(after.percent, 2), max_usage_percent=max_usage))
    return result
