"""One pass over a root: list with os.scandir, unlink with a few threads at once.

Why it is built this way:
- One traversal, whatever the number of patterns (the guide runs five `find`s), and
  no stat of a file whose name does not match: the listing decides on names alone,
  and the one lstat a candidate needs comes right before its unlink.
- Everything is relative to directory file descriptors (openat, fstatat, unlinkat):
  a directory swapped for a symlink while we work cannot lead us out of the root.
  Directories are opened with O_NOFOLLOW; symlinks are never followed nor deleted.
- A directory is entered only if it has the root's st_dev AND the inode its parent
  listed; a mount point (another filesystem, or a bind mount of the same one) shows
  another inode once opened, so it is skipped.
- Right before an unlink the worker lstats the file again and checks it is the same
  inode, still a regular file, and still old: a file replaced or rewritten since
  the listing is kept.
- Calls overlap: `concurrency` threads share the work. A thread lists a directory and
  handles its files itself; the subdirectories it meets go on a shared stack (bounded:
  when it is full the thread descends itself) for any thread to take, and a batch of
  files goes to a thread that would otherwise idle with no directory to take. So the
  threads mostly work in different directories (unlinks in one directory queue on its
  lock in the kernel, and on NFS for the whole round trip), one huge directory is still
  shared when nothing else is left, and memory stays constant however big the tree.
- Directories are removed bottom-up: each holds a count of what still refers to it
  (its listing, batches in the pool, open subdirectories); when that drops to zero
  it is removed if every child went, it is old and not protected. rmdir fails on a
  directory that got a file meanwhile, and that is fine.
"""

from __future__ import annotations

import errno
import heapq
import logging
import os
import stat
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from agents.cleanup.policy import Policy, Verdict, is_old, join
from agents.runtime.logs import fields

log = logging.getLogger("srs_agent.cleanup")

_O_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
BATCH = 32  # files handed to a worker at once
STACK_MAX = 128  # directories waiting on the shared stack, at most
ERRORS_LOGGED_PER_REASON = 10


# ---------------------------------------------------------------------------
# Directories, batches, and what `observe` sees
# ---------------------------------------------------------------------------


@dataclass(eq=False)
class DirNode:
    """An open directory of the tree, alive while anything still refers to it."""

    fd: int
    parent: DirNode | None
    name: str  # its name in the parent ('' for the root)
    rel: str  # its path relative to the root ('' for the root)
    dev: int
    ino: int
    mtime: float  # before this run touched it
    refs: int = 1  # its listing; +1 per batch in flight; +1 per open subdirectory
    all_go: bool = True  # False once a child is kept: no rmdir then
    path: str = ""  # absolute, from the root's real path: where SRS's app and stream show
    # Opened with the directory (a second descriptor, a dup of `fd`); taken by entries().
    listing: Iterator[os.DirEntry[str]] | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class Files:
    """Candidates of one directory: (name, d_ino) pairs, d_ino being the identity
    checked again right before the unlink."""

    dir: DirNode
    names: list[tuple[str, int]]


@dataclass(frozen=True, slots=True)
class DirDone:
    """The directory's own listing has ended (for `observe`). It is finished (closed,
    maybe removed) when its last reference goes: at once with one thread, maybe later
    and on another thread with more."""

    dir: DirNode


Item = Files | DirDone


# ---------------------------------------------------------------------------
# Tallies
# ---------------------------------------------------------------------------


@dataclass
class Tally:
    """What a run did; merged from the scanner and every worker."""

    entries: int = 0
    files_deleted: int = 0
    bytes_freed: int = 0
    dirs_removed: int = 0
    vanished: int = 0
    kept: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)

    def merge(self, other: Tally) -> None:
        self.entries += other.entries
        self.files_deleted += other.files_deleted
        self.bytes_freed += other.bytes_freed
        self.dirs_removed += other.dirs_removed
        self.vanished += other.vanished
        self.kept.update(other.kept)
        self.errors.update(other.errors)


def error_reason(exc: OSError) -> str:
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission"
    if exc.errno == errno.EROFS:
        return "read_only"
    if exc.errno == errno.ESTALE:
        return "stale_nfs_handle"
    return "io"


class ErrorLog:
    """Counts errors by reason and logs the first few of each with their path."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._logged: Counter[str] = Counter()

    def report(self, tally: Tally, root: str, rel: str, action: str, exc: OSError) -> None:
        reason = error_reason(exc)
        tally.errors[reason] += 1
        with self._lock:
            self._logged[reason] += 1
            count = self._logged[reason]
        if count <= ERRORS_LOGGED_PER_REASON:
            more = {"note": "further errors of this reason are only counted"} \
                if count == ERRORS_LOGGED_PER_REASON else {}
            log.warning("cleanup could not %s %s", action, os.path.join(root, rel), extra=fields(
                path=os.path.join(root, rel), action=action, reason=reason,
                error=exc.strerror or str(exc), **more))


class Budget:
    """The --max-deletions cap, shared by all workers; 0 means no cap."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self.exhausted = False
        self._lock = threading.Lock()

    def take(self) -> bool:
        if not self.limit:
            return True
        with self._lock:
            if self.used >= self.limit:
                self.exhausted = True
                return False
            self.used += 1
            return True

    def give_back(self) -> None:
        if self.limit:
            with self._lock:
                self.used -= 1


@dataclass(order=True, frozen=True)
class Young:
    """A matching file too young for the age rule, kept for the disk watermark."""

    mtime: float
    rel: str
    ino: int = field(compare=False)
    size: int = field(compare=False)
    blocks_bytes: int = field(compare=False)


class OldestFiles:
    """The `capacity` oldest files offered, in bounded memory (a max-heap on mtime)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._heap: list[tuple[float, str, Young]] = []
        self._lock = threading.Lock()
        self.offered = 0

    def offer(self, items: Iterable[Young]) -> None:
        with self._lock:
            for item in items:
                self.offered += 1
                entry = (-item.mtime, item.rel, item)
                if len(self._heap) < self.capacity:
                    heapq.heappush(self._heap, entry)
                elif entry > self._heap[0]:
                    heapq.heapreplace(self._heap, entry)

    def oldest_first(self) -> list[Young]:
        with self._lock:
            return sorted(item for _, _, item in self._heap)


# ---------------------------------------------------------------------------
# The scanner
# ---------------------------------------------------------------------------


class RootError(Exception):
    """The root cannot be cleaned at all (missing, not a directory, unreadable)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class Walker:
    """Lists directories of one root and decides on every entry by its name and type.

    `entries(node)` lists one directory: it yields Files (candidates, up to
    `batch_size` at a time) and the DirNode of each subdirectory it may enter, opened
    and counted as a reference on `node`. A directory is finished once its own listing
    and every batch and subdirectory it gave out are done (Remover.release).
    """

    def __init__(self, root: str, policy: Policy, *, abort: threading.Event, tally: Tally,
                 errors: ErrorLog, lock: threading.Lock, batch_size: int = BATCH) -> None:
        self.root = root
        self.policy = policy
        self.abort = abort
        self.tally = tally
        self.errors = errors
        self.lock = lock
        self.batch_size = batch_size
        self.dev = -1

    def open_root(self) -> DirNode:
        """The root, opened through symlinks (the operator chose it); RootError if unusable."""
        try:
            fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise RootError("root_missing", f"root {self.root} does not exist") from None
        except NotADirectoryError:
            raise RootError("root_missing", f"root {self.root} is not a directory") from None
        except OSError as exc:
            raise RootError(error_reason(exc),
                            f"root {self.root} cannot be opened: {exc.strerror}") from None
        st = os.fstat(fd)
        self.dev = st.st_dev
        try:
            listing = os.scandir(fd)
        except OSError as exc:
            os.close(fd)
            raise RootError(error_reason(exc),
                            f"root {self.root} cannot be listed: {exc.strerror}") from None
        return DirNode(fd, None, "", "", st.st_dev, st.st_ino, st.st_mtime,
                       path=os.path.realpath(self.root), listing=listing)

    def sibling(self, tally: Tally) -> Walker:
        """A walker of the same root for another thread, with its own tally."""
        other = Walker(self.root, self.policy, abort=self.abort, tally=tally,
                       errors=self.errors, lock=self.lock, batch_size=self.batch_size)
        other.dev = self.dev
        return other

    def entries(self, node: DirNode) -> Iterator[Files | DirNode]:
        """List `node` once; its listing is closed at the end (or when this is closed)."""
        listing = node.listing
        assert listing is not None, f"{node.rel!r} listed twice"
        node.listing = None
        policy, tally, abort = self.policy, self.tally, self.abort
        batch_size = self.batch_size
        candidate = Verdict.CANDIDATE
        batch: list[tuple[str, int]] = []
        try:
            for entry in listing:
                if abort.is_set():
                    node.all_go = False
                    break
                tally.entries += 1
                try:
                    if entry.is_file(follow_symlinks=False):
                        verdict = policy.classify(node.rel, node.path, entry.name)
                        if verdict is candidate:
                            batch.append((entry.name, entry.inode()))
                            if len(batch) >= batch_size:
                                yield Files(node, batch)
                                batch = []
                        else:
                            tally.kept[verdict.value] += 1
                            node.all_go = False
                        continue
                    if entry.is_dir(follow_symlinks=False):
                        child = self._enter(node, entry)
                        if child is not None:
                            yield child
                        continue
                    if entry.is_symlink():
                        # Never followed, never deleted: SRS makes no symlinks, a person
                        # did, and it frees no space.
                        tally.kept["symlink"] += 1
                    else:
                        tally.kept["not_regular"] += 1  # fifo, socket, device
                    node.all_go = False
                except FileNotFoundError:  # gone before its type could be read
                    tally.vanished += 1
        except OSError as exc:  # the listing itself failed part way (EIO, ESTALE)
            self.errors.report(tally, self.root, node.rel, "list", exc)
            node.all_go = False
        finally:
            listing.close()  # type: ignore[attr-defined]
        if batch:
            yield Files(node, batch)

    def _enter(self, node: DirNode, entry: os.DirEntry[str]) -> DirNode | None:
        name = entry.name
        rel = join(node.rel, name)
        if self.policy.dir_protected(rel, name):
            self.tally.kept["protected"] += 1
            node.all_go = False
            return None
        try:
            fd = os.open(name, _O_DIR, dir_fd=node.fd)
        except FileNotFoundError:
            self.tally.vanished += 1
            return None
        except OSError as exc:
            node.all_go = False
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):  # swapped for a symlink or a file
                self.tally.kept["changed"] += 1
            else:
                self.errors.report(self.tally, self.root, rel, "open directory", exc)
            return None
        try:
            st = os.fstat(fd)
            if st.st_dev != self.dev or st.st_ino != entry.inode():
                self.tally.kept["other_fs"] += 1
                node.all_go = False
                log.info("cleanup skips a mount point", extra=fields(
                    path=os.path.join(self.root, rel),
                    reason="another filesystem" if st.st_dev != self.dev else "a bind mount"))
                os.close(fd)
                return None
            listing = os.scandir(fd)
        except OSError as exc:
            os.close(fd)
            node.all_go = False
            self.errors.report(self.tally, self.root, rel, "list", exc)
            return None
        with self.lock:
            node.refs += 1  # the child holds its parent open until it is finished
        return DirNode(fd, node, name, rel, st.st_dev, st.st_ino, st.st_mtime,
                       path=f"{node.path}/{name}", listing=listing)


# ---------------------------------------------------------------------------
# The remover
# ---------------------------------------------------------------------------


class Remover:
    """Decides again with a fresh lstat, unlinks, and removes finished directories."""

    def __init__(self, root: str, policy: Policy, cutoff: float, *, dry_run: bool,
                 budget: Budget, abort: threading.Event, tally: Tally, errors: ErrorLog,
                 lock: threading.Lock, young: OldestFiles | None = None) -> None:
        self.root = root
        self.policy = policy
        self.cutoff = cutoff
        self.dry_run = dry_run
        self.budget = budget
        self.abort = abort
        self.tally = tally
        self.errors = errors
        self.lock = lock
        self.young = young
        self._debug = log.isEnabledFor(logging.DEBUG)

    def retain(self, node: DirNode) -> None:
        with self.lock:
            node.refs += 1

    def release(self, node: DirNode | None) -> None:
        """Drop one reference; finish the directory (and maybe its parents) at zero."""
        while node is not None:
            with self.lock:
                node.refs -= 1
                if node.refs:
                    return
            parent = node.parent
            self._finish(node)
            node = parent

    def files(self, node: DirNode, batch: list[tuple[str, int]]) -> None:
        """Handle one batch of candidates of `node`, then drop the batch's reference."""
        local = Tally()
        young: list[Young] = []
        try:
            for name, ino in batch:
                if self.abort.is_set():
                    node.all_go = False
                    break
                self._file(node, name, ino, local, young)
        finally:
            if young and self.young is not None:
                self.young.offer(young)
            with self.lock:
                self.tally.merge(local)
            self.release(node)

    def _file(self, node: DirNode, name: str, ino: int, local: Tally,
              young: list[Young]) -> None:
        try:
            st = os.lstat(name, dir_fd=node.fd)
        except FileNotFoundError:
            local.vanished += 1
            return
        except OSError as exc:
            node.all_go = False
            self.errors.report(local, self.root, join(node.rel, name), "stat", exc)
            return
        if not stat.S_ISREG(st.st_mode):
            local.kept["not_regular"] += 1
            node.all_go = False
            return
        if st.st_ino != ino or st.st_dev != node.dev:
            local.kept["changed"] += 1  # replaced since the listing (or a bind-mounted file)
            node.all_go = False
            return
        if not is_old(st.st_mtime, self.cutoff):
            local.kept["young"] += 1
            node.all_go = False
            if self.young is not None:
                young.append(Young(st.st_mtime, join(node.rel, name), st.st_ino, st.st_size,
                                   st.st_blocks * 512))
            return
        if not self.budget.take():
            node.all_go = False
            self.abort.set()
            return
        if self.dry_run:
            local.files_deleted += 1
            local.bytes_freed += st.st_size
            path = os.path.join(self.root, node.rel, name)
            log.info("would delete %s", path, extra=fields(
                path=path, bytes=st.st_size, mtime=st.st_mtime))
            return
        try:
            os.unlink(name, dir_fd=node.fd)
        except FileNotFoundError:
            self.budget.give_back()
            local.vanished += 1
            return
        except OSError as exc:
            self.budget.give_back()
            node.all_go = False
            self.errors.report(local, self.root, join(node.rel, name), "delete", exc)
            return
        local.files_deleted += 1
        local.bytes_freed += st.st_size
        if self._debug:
            path = os.path.join(self.root, node.rel, name)
            log.debug("deleted %s", path, extra=fields(
                path=path, bytes=st.st_size, mtime=st.st_mtime))

    def _finish(self, node: DirNode) -> None:
        os.close(node.fd)
        parent = node.parent
        if parent is None:
            return  # the root itself is never removed
        removed = False
        try:
            removed = self._rmdir(node, parent)
        finally:
            if not removed:
                parent.all_go = False

    def _rmdir(self, node: DirNode, parent: DirNode) -> bool:
        if self.abort.is_set() or not node.all_go:
            return False
        if not self.policy.may_remove_dir(node.rel, node.mtime, self.cutoff):
            with self.lock:
                self.tally.kept["young_dir"] += 1
            return False
        if not self.budget.take():
            self.abort.set()
            return False
        path = os.path.join(self.root, node.rel)
        if self.dry_run:
            with self.lock:
                self.tally.dirs_removed += 1
            log.info("would remove empty directory %s", path, extra=fields(path=path))
            return True
        try:
            st = os.lstat(node.name, dir_fd=parent.fd)
            if (st.st_dev, st.st_ino) != (node.dev, node.ino):
                self.budget.give_back()
                with self.lock:
                    self.tally.kept["changed"] += 1
                return False
            os.rmdir(node.name, dir_fd=parent.fd)
        except FileNotFoundError:
            self.budget.give_back()
            with self.lock:
                self.tally.vanished += 1
            return True  # gone anyway: it does not keep its parent
        except OSError as exc:
            self.budget.give_back()
            if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
                return False  # something was written into it meanwhile: keep it
            with self.lock:
                self.errors.report(self.tally, self.root, node.rel, "remove directory", exc)
            return False
        with self.lock:
            self.tally.dirs_removed += 1
        if self._debug:
            log.debug("removed empty directory %s", path, extra=fields(path=path))
        return True


# ---------------------------------------------------------------------------
# Driving a pass
# ---------------------------------------------------------------------------


class WorkerFailed(Exception):
    """A worker thread raised something other than the OSErrors it handles (a bug)."""


Observer = Callable[[Item], None]


class Pool:
    """`concurrency` threads sharing one root's work, in bounded memory.

    Each thread lists directories and handles the files it finds. Subdirectories go on
    a shared stack of at most `4 * concurrency`, and never more than STACK_MAX (each
    holds two open descriptors, its own and its listing's: at --concurrency 256 an
    uncapped stack would pass the usual soft limit of 1024); when it is full, the
    thread descends itself, depth-first.
    A batch of files is handed over only to a thread that is idle with nothing on the
    stack, so threads share a directory only when there is nothing else to do.
    `observe`, if given, sees every Files batch right before it is handled and every
    DirDone when a listing ends, before the listing drops its reference (tests use it
    to change the tree at those moments).
    """

    def __init__(self, walker: Walker, remover: Remover, concurrency: int,
                 observe: Observer | None = None) -> None:
        self.walker = walker
        self.remover = remover
        self.concurrency = max(1, concurrency)
        self.observe = observe
        self._cond = threading.Condition()
        self._tasks: list[Files | DirNode] = []  # handed over, not yet taken
        self._limit = min(4 * self.concurrency, STACK_MAX)
        self._idle = 0  # threads waiting for a task
        self._busy = 1  # tasks handed over or running; the root's listing first

    def run(self, root: DirNode) -> None:
        self._tasks.append(root)
        if self.concurrency == 1:
            self._work(self.walker)
            return
        tallies = [Tally() for _ in range(self.concurrency)]
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="cleanup") as pool:
            futures = [pool.submit(self._work, self.walker.sibling(t)) for t in tallies]
        for tally in tallies:
            self.walker.tally.merge(tally)
        for future in futures:
            exc = future.exception()
            if exc is not None:
                raise WorkerFailed(f"a cleanup worker failed: {exc!r}") from exc

    def _work(self, walker: Walker) -> None:
        failed = True
        try:
            while True:
                with self._cond:
                    while not self._tasks and self._busy:
                        self._idle += 1
                        self._cond.wait()
                        self._idle -= 1
                    if not self._tasks:
                        failed = False
                        return  # nothing handed over and nothing running: all done
                    task = self._tasks.pop()
                try:
                    if isinstance(task, Files):
                        self._files(task)
                    else:
                        self._list(walker, task)
                finally:
                    with self._cond:
                        self._busy -= 1
                        if not self._busy:
                            self._cond.notify_all()
        finally:
            if failed:  # a bug: stop the others instead of leaving them to finish alone
                self.remover.abort.set()

    def _hand_over(self, task: Files | DirNode) -> bool:
        """Share `task`; False if it is not taken (then do it yourself, now).

        A directory goes on the stack while there is room; a batch only to a thread
        that is idle and has no directory waiting for it.
        """
        if self.concurrency == 1:
            return False
        with self._cond:
            if isinstance(task, DirNode):
                if len(self._tasks) >= self._limit:
                    return False
            elif self._idle <= len(self._tasks):
                return False
            self._tasks.append(task)
            self._busy += 1
            self._cond.notify()
            return True

    def _files(self, batch: Files) -> None:
        if self.observe is not None:
            self.observe(batch)
        self.remover.files(batch.dir, batch.names)

    def _list(self, walker: Walker, start: DirNode) -> None:
        stack = [(start, walker.entries(start))]
        while stack:
            node, entries = stack[-1]
            for item in entries:
                if isinstance(item, DirNode):
                    if not self._hand_over(item):
                        stack.append((item, walker.entries(item)))
                        break
                    continue
                self.remover.retain(item.dir)
                if not self._hand_over(item):
                    self._files(item)
            else:
                stack.pop()
                if self.observe is not None:
                    self.observe(DirDone(node))
                self.remover.release(node)


def drive(walker: Walker, root: DirNode, remover: Remover, concurrency: int,
          observe: Observer | None = None) -> None:
    """Clean the tree under `root` (from `walker.open_root()`) with `concurrency`
    threads; returns when every directory is finished."""
    Pool(walker, remover, concurrency, observe).run(root)
