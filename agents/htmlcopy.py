"""`srs-agent copy-html`: seed SRS's default html into the shared volume, then exit.

Replaces the guide's `cp -R ...; sleep infinity` container with an init container that is
idempotent (a rerun of the same source writes nothing), upgrade-aware (files it installed
follow the source; files it did not install are never touched) and never half-visible
(each file is written to a temp name in its own directory, then renamed into place; the
marker is written last). Several pods may run it at once on one volume, NFS included.
A run that stops between its first rename and its marker leaves its intent file, so the
files it renamed stay copy-html's (see agents/htmlcopy_plan.py).

The source's version is read from `<from>.version` (beside the tree, so it is not served);
without it the source is identified by hashing every file.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from errno import ELOOP, ENOENT, ENOTDIR
from typing import NamedTuple, TextIO

from agents.errors import ConfigError, PermanentError
from agents.htmlcopy_plan import (
    BLOCKED,
    COPY,
    DIR,
    FILE,
    INTENT_PREFIX,
    INTENT_SUFFIX,
    KEEP,
    MARKER_NAME,
    MISSING,
    OTHER,
    REMOVE,
    SYMLINK,
    TEMP_PREFIX,
    TEMP_SUFFIX,
    UNCHANGED,
    UPDATE,
    VERSION_SUFFIX,
    Action,
    Marker,
    MarkerError,
    Record,
    Signature,
    SourceFile,
    TargetState,
    build_marker,
    content_source_id,
    count,
    decode_intent,
    decode_marker,
    encode_intent,
    encode_marker,
    format_plan,
    install_order,
    is_intent,
    is_reserved,
    is_stale_intent,
    is_stale_temp,
    is_up_to_date,
    plan,
    stat_source_id,
)
from agents.runtime.logs import fields
from agents.settings import CopyHtmlSettings

log = logging.getLogger("srs_agent.copy_html")

_CHUNK = 1 << 20


class CopyError(PermanentError):
    """A file could not be read or written; the message names it and says why."""

    def __init__(self, message: str, path: str) -> None:
        super().__init__(message)
        self.path = path


@contextmanager
def _failing_as(doing: str, path: str) -> Iterator[None]:
    """Turn an OSError into a CopyError that names the path and what we were doing."""
    try:
        yield
    except OSError as exc:
        raise CopyError(f"cannot {doing} {path}: {exc.strerror or exc}", path) from exc


def _join(root: str, rel: str) -> str:
    return root + "/" + rel if rel else root


# ---------------------------------------------------------------------------
# Reading the source
# ---------------------------------------------------------------------------


def check_dirs(from_dir: str, to: str) -> tuple[str, str]:
    """Both must be existing, distinct, non-nested directories (ConfigError otherwise)."""
    src = os.path.abspath(from_dir)
    dst = os.path.abspath(to)
    if not os.path.isdir(src):
        what = "is not a directory" if os.path.exists(src) else "no such directory"
        raise ConfigError(f"--from: {src}: {what} (the source html tree)")
    if not os.path.isdir(dst):
        what = "is not a directory" if os.path.exists(dst) else "no such directory"
        raise ConfigError(f"--to: {dst}: {what} (mount the shared html volume there)")
    real_src, real_dst = os.path.realpath(src), os.path.realpath(dst)
    if real_src == real_dst or (real_dst + "/").startswith(real_src + "/") \
            or (real_src + "/").startswith(real_dst + "/"):
        raise ConfigError(f"--from {src} and --to {dst} overlap; they must be separate trees")
    return src, dst


def read_version(src: str) -> str | None:
    """The text of `<from>.version`, or None when the file is absent or empty."""
    path = src.rstrip("/") + VERSION_SUFFIX
    try:
        with open(path, "rb") as f:
            text = f.read(4096).decode("utf-8", "replace").strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CopyError(f"cannot read {path}: {exc.strerror or exc}", path) from exc
    return text or None


def scan_source(src: str) -> dict[str, SourceFile]:
    """Regular files under `src` (not hashed). Symlinks and special files are skipped."""
    files: dict[str, SourceFile] = {}

    def walk(dir_path: str, prefix: str) -> None:
        with _failing_as("read the source directory", dir_path):
            entries = sorted(os.scandir(dir_path), key=lambda e: e.name)
        for entry in entries:
            rel = prefix + entry.name
            with _failing_as("read the source file", entry.path):
                if entry.is_dir(follow_symlinks=False):
                    walk(entry.path, rel + "/")
                    continue
                st = entry.stat(follow_symlinks=False)
            if not stat.S_ISREG(st.st_mode) or is_reserved(entry.name):
                log.warning("skipped a source entry: not a regular file, or a name "
                            "copy-html keeps for itself", extra=fields(file=entry.path))
                continue
            files[rel] = SourceFile(rel, st.st_size, st.st_mtime_ns, stat.S_IMODE(st.st_mode))

    walk(src, "")
    if not files:
        raise ConfigError(f"--from: {src}: contains no files (is the html in the image?)")
    return files


def _hash(path: str) -> tuple[str, int]:
    with open(path, "rb") as f:
        digest = hashlib.file_digest(f, "sha256")
        return digest.hexdigest(), f.tell()


def hash_source(src: str, files: Mapping[str, SourceFile]) -> dict[str, SourceFile]:
    hashed = {}
    for rel, f in files.items():
        path = _join(src, rel)
        try:
            sha, size = _hash(path)
        except FileNotFoundError as exc:
            raise CopyError(f"source file vanished while reading it: {path}", path) from exc
        except OSError as exc:
            raise CopyError(f"cannot read {path}: {exc.strerror or exc}", path) from exc
        if size != f.size:
            raise CopyError(f"source file changed while reading it: {path}", path)
        hashed[rel] = SourceFile(rel, f.size, f.mtime_ns, f.mode, sha)
    return hashed


# ---------------------------------------------------------------------------
# Reading the target
# ---------------------------------------------------------------------------


class TargetReader:
    """lstat (and hash) target paths, never following a symlink inside the tree."""

    def __init__(self, root: str) -> None:
        self.root = root
        self._dirs: dict[str, str] = {"": DIR}

    def _dir_kind(self, rel: str) -> str:
        """DIR, MISSING, or BLOCKED when this path or a parent is not a real directory."""
        kind = self._dirs.get(rel)
        if kind is not None:
            return kind
        parent_kind = self._dir_kind(rel.rpartition("/")[0])
        if parent_kind != DIR:
            kind = parent_kind
        else:
            path = _join(self.root, rel)
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                kind = MISSING
            except NotADirectoryError:
                kind = BLOCKED
            except OSError as exc:
                raise CopyError(f"cannot read {path}: {exc.strerror or exc}", path) from exc
            else:
                kind = DIR if stat.S_ISDIR(st.st_mode) else BLOCKED
        self._dirs[rel] = kind
        return kind

    def state(self, rel: str, with_hash: bool) -> TargetState:
        parent = self._dir_kind(rel.rpartition("/")[0])
        if parent != DIR:
            return TargetState(parent)
        path = _join(self.root, rel)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return TargetState(MISSING)
        except NotADirectoryError:
            return TargetState(BLOCKED)
        except OSError as exc:
            raise CopyError(f"cannot read {path}: {exc.strerror or exc}", path) from exc
        mode = st.st_mode
        if stat.S_ISDIR(mode):
            return TargetState(DIR)
        if stat.S_ISLNK(mode):
            return TargetState(SYMLINK)
        if not stat.S_ISREG(mode):
            return TargetState(OTHER)
        if not with_hash:
            return TargetState(FILE, st.st_size, st.st_mtime_ns, st.st_ino, "", st.st_ctime_ns)
        # Stat and hash the same open file: another run may rename a new one in meanwhile.
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            if exc.errno in (ENOENT, ENOTDIR, ELOOP):
                return self.state(rel, with_hash)  # replaced meanwhile: look again
            raise CopyError(f"cannot read {path}: {exc.strerror or exc}", path) from exc
        with open(fd, "rb") as f, _failing_as("read", path):
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                return TargetState(OTHER)
            sha = hashlib.file_digest(f, "sha256").hexdigest()
        return TargetState(FILE, st.st_size, st.st_mtime_ns, st.st_ino, sha, st.st_ctime_ns)

    def signature(self, rel: str) -> Signature:
        return self.state(rel, with_hash=False).signature()


_MAX_OWN_FILE = 16 << 20
"""A marker of the default html is some 20 kB; anything near this is not one of ours."""


def _read_own(path: str) -> tuple[bytes, float] | None:
    """(bytes, ctime) of a marker or intent file; None when there is none.

    Others write to this volume: a symlink is not followed, a FIFO or device is not
    read (MarkerError), so no path put there can hang or exhaust the run.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == ELOOP:
            raise MarkerError("a symlink, not a file copy-html wrote") from None
        raise CopyError(f"cannot read {path}: {exc.strerror or exc}", path) from exc
    with open(fd, "rb") as f, _failing_as("read", path):
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise MarkerError("not a regular file")
        data = f.read(_MAX_OWN_FILE + 1)
    if len(data) > _MAX_OWN_FILE:
        raise MarkerError(f"larger than {_MAX_OWN_FILE} bytes")
    return data, st.st_ctime


def read_marker_bytes(dst: str) -> bytes:
    """The marker's raw bytes; b"" when there is none. MarkerError when not a file."""
    got = _read_own(_join(dst, MARKER_NAME))
    return got[0] if got else b""


def read_marker(dst: str) -> Marker | None:
    """The marker's content; None when absent or unusable."""
    path = _join(dst, MARKER_NAME)
    try:
        data = read_marker_bytes(dst)
        return decode_marker(data) if data else None
    except MarkerError as exc:
        log.warning("ignoring the marker: files that differ from the source will be kept",
                    extra=fields(file=path, reason=str(exc)))
        return None


class Intent(NamedTuple):
    """An intent file found at the root of the target (another run's, running or dead)."""

    path: str
    ctime: float
    files: Mapping[str, str]  # rel -> sha256; empty when unreadable


def read_intents(dst: str) -> list[Intent]:
    """The intent files at the root of the target; one that cannot be decoded claims nothing."""
    with _failing_as("read", dst):
        entries = [e for e in os.scandir(dst) if is_intent(e.name)]
    intents = []
    for entry in sorted(entries, key=lambda e: e.name):
        try:
            got = _read_own(entry.path)
            if got is None:
                continue  # its run finished meanwhile
            data, ctime = got
            files = decode_intent(data)
        except MarkerError as exc:
            log.warning("ignoring an unreadable intent file", extra=fields(
                file=entry.path, reason=str(exc)))
            try:
                ctime = entry.stat(follow_symlinks=False).st_ctime
            except FileNotFoundError:
                continue
            files = {}
        intents.append(Intent(entry.path, ctime, files))
    return intents


def pending_of(intents: list[Intent]) -> dict[str, frozenset[str]]:
    hashes: dict[str, set[str]] = {}
    for intent in intents:
        for rel, sha in intent.files.items():
            hashes.setdefault(rel, set()).add(sha)
    return {rel: frozenset(shas) for rel, shas in hashes.items()}


# ---------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------


class TempFiles:
    """Creates this process's temp files and removes any that were not renamed into place."""

    def __init__(self) -> None:
        self._open: set[str] = set()
        self._prefix = f"{TEMP_PREFIX}{os.getpid()}."

    def create(self, dir_path: str, final: str) -> tuple[str, int]:
        """A new empty temp file in `dir_path`: (path, fd). Errors name `final`."""
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
        while True:
            path = f"{dir_path}/{self._prefix}{os.urandom(6).hex()}{TEMP_SUFFIX}"
            try:
                fd = os.open(path, flags, 0o600)
            except FileExistsError:
                continue
            except OSError as exc:
                raise CopyError(f"cannot write {final}: {exc.strerror or exc}", final) from exc
            self._open.add(path)
            return path, fd

    def renamed(self, path: str) -> None:
        self._open.discard(path)

    def remove_all(self) -> None:
        for path in list(self._open):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            except OSError as exc:
                log.error("could not remove a temp file", extra=fields(
                    file=path, error=exc.strerror or str(exc)))
                continue
            self._open.discard(path)


def _write_all(fd: int, data: memoryview) -> None:
    while data:
        data = data[os.write(fd, data):]


def _close_quietly(fd: int) -> None:
    """Close on a path that is already failing; the first error is the one to report."""
    with suppress(OSError):
        os.close(fd)


def _fsync_dir(path: str) -> None:
    """Make renames in `path` durable; a file system that cannot fsync a dir is left be."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _copy_into(src_fd: int, src_path: str, fd: int, final: str, f: SourceFile) -> int:
    """Copy and hash in one pass; the bytes written must be the ones planned on."""
    digest = hashlib.sha256()
    buf = bytearray(_CHUNK)
    view = memoryview(buf)
    size = 0
    while True:
        with _failing_as("read", src_path):
            n = os.readv(src_fd, [buf])
        if not n:
            break
        digest.update(view[:n])
        with _failing_as("write", final):
            _write_all(fd, view[:n])
        size += n
    if size != f.size or digest.hexdigest() != f.sha256:
        raise CopyError(f"source file changed while copying: {src_path}", src_path)
    with _failing_as("write", final):
        os.fchmod(fd, f.mode)
        os.utime(fd, ns=(f.mtime_ns, f.mtime_ns))
        os.fsync(fd)
        return os.fstat(fd).st_ino


def install(src: str, dst: str, f: SourceFile, temps: TempFiles,
            journal: Journal | None = None) -> TargetState:
    """Copy one source file into place through a temp file; return what was put there."""
    final = _join(dst, f.rel)
    dir_path = os.path.dirname(final)
    with _failing_as("create the directory", dir_path):
        os.makedirs(dir_path, exist_ok=True)
    src_path = _join(src, f.rel)
    try:
        src_fd = os.open(src_path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError as exc:
        raise CopyError(f"source file vanished while copying: {src_path}", src_path) from exc
    except OSError as exc:
        raise CopyError(f"cannot read {src_path}: {exc.strerror or exc}", src_path) from exc
    try:
        tmp, fd = temps.create(dir_path, final)
        try:
            ino = _copy_into(src_fd, src_path, fd, final, f)
        except BaseException:
            _close_quietly(fd)
            raise
    finally:
        _close_quietly(src_fd)
    with _failing_as("write", final):
        os.close(fd)
    if journal is not None:
        journal.before_rename()
    with _failing_as("write", final):
        os.rename(tmp, final)
    temps.renamed(tmp)
    if journal is not None:
        journal.renamed_any = True
    with _failing_as("write", final):
        st = os.lstat(final)
    if st.st_ino != ino:  # another run renamed its copy over ours already: re-read later
        return TargetState(FILE, f.size, f.mtime_ns, ino, f.sha256)
    return TargetState(FILE, st.st_size, st.st_mtime_ns, st.st_ino, f.sha256, st.st_ctime_ns)


def remove(dst: str, rel: str) -> None:
    path = _join(dst, rel)
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass  # another run removed it first
    except OSError as exc:
        raise CopyError(f"cannot remove {path}: {exc.strerror or exc}", path) from exc


def write_marker(dst: str, data: bytes, temps: TempFiles) -> None:
    _write_durably(_join(dst, MARKER_NAME), data, temps)


def _write_durably(final: str, data: bytes, temps: TempFiles) -> None:
    """Write a small file of ours through a temp file; the rename is on disk on return."""
    dst = os.path.dirname(final)
    tmp, fd = temps.create(dst, final)
    try:
        with _failing_as("write", final):
            _write_all(fd, memoryview(data))
            os.fchmod(fd, 0o644)
            os.fsync(fd)
    except BaseException:
        _close_quietly(fd)
        raise
    with _failing_as("write", final):
        os.close(fd)
    with _failing_as("write", final):
        os.rename(tmp, final)
    temps.renamed(tmp)
    _fsync_dir(dst)


class Journal:
    """This run's intent file: written before its first rename, removed after its marker."""

    def __init__(self, dst: str, files: Mapping[str, str], temps: TempFiles) -> None:
        self.path = f"{dst}/{INTENT_PREFIX}{os.getpid()}.{os.urandom(6).hex()}{INTENT_SUFFIX}"
        self._data = encode_intent(files)
        self._temps = temps
        self.written = False
        self.renamed_any = False

    def before_rename(self) -> None:
        if not self.written:
            _write_durably(self.path, self._data, self._temps)
            self.written = True

    def close(self, done: bool) -> None:
        """Remove the intent once a marker records the tree, or when nothing was renamed."""
        if not self.written or (self.renamed_any and not done):
            return  # kept: the files renamed so far are claimed by nothing else
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("could not remove this run's intent file; a later run will",
                        extra=fields(file=self.path, error=exc.strerror or str(exc)))


def sweep_stale_intents(intents: list[Intent], now: float, max_age: float | None = None) -> None:
    """Remove the intents of dead runs; the marker just written records their files."""
    for intent in intents:
        name = os.path.basename(intent.path)
        stale = is_stale_intent(name, intent.ctime, now) if max_age is None \
            else is_stale_intent(name, intent.ctime, now, max_age)
        if not stale:
            continue  # its run may still be going
        try:
            os.unlink(intent.path)
        except FileNotFoundError:
            continue
        except OSError as exc:
            log.warning("could not remove an intent file left by an interrupted run",
                        extra=fields(file=intent.path, error=exc.strerror or str(exc)))
            continue
        log.info("removed an intent file left by an interrupted run",
                 extra=fields(file=intent.path))


def sweep_stale_temps(dirs: set[str], now: float, max_age: float | None = None) -> None:
    """Remove temp files that a killed run left in the directories we write into."""
    for dir_path in sorted(dirs):
        try:
            entries = list(os.scandir(dir_path))
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise CopyError(f"cannot read {dir_path}: {exc.strerror or exc}", dir_path) from exc
        for entry in entries:
            if not (entry.name.startswith(TEMP_PREFIX) and entry.name.endswith(TEMP_SUFFIX)):
                continue
            try:
                ctime = entry.stat(follow_symlinks=False).st_ctime
                stale = is_stale_temp(entry.name, ctime, now) if max_age is None \
                    else is_stale_temp(entry.name, ctime, now, max_age)
                if stale:
                    os.unlink(entry.path)
                    log.info("removed a temp file left by an interrupted run",
                             extra=fields(file=entry.path))
            except FileNotFoundError:
                continue  # another run swept it first
            except OSError as exc:
                raise CopyError(f"cannot remove {entry.path}: {exc.strerror or exc}",
                                entry.path) from exc


# ---------------------------------------------------------------------------
# Orchestration
# ---------------------------------------------------------------------------


class Source(NamedTuple):
    """The source tree as identified once per run."""

    root: str
    version: str | None
    files: dict[str, SourceFile]  # hashed unless the fast path needed no hashes
    source_id: str


class Prepared(NamedTuple):
    """Everything decided before the first write."""

    src: str
    dst: str
    version: str | None
    source_id: str
    source: dict[str, SourceFile]
    marker: Marker | None
    before: dict[str, TargetState]
    actions: list[Action]
    intents: list[Intent]


def identify(src: str) -> Source:
    """Version file and stat listing when versioned (no file read); else hash every file."""
    version = read_version(src)
    files = scan_source(src)
    if version is not None:
        return Source(src, version, files, stat_source_id(version, files.values()))
    files = hash_source(src, files)
    return Source(src, None, files, content_source_id(files.values()))


def up_to_date(source: Source, dst: str) -> Marker | None:
    """The fast path: the marker, when it says this source is installed and nothing moved."""
    marker = read_marker(dst)
    if marker is None or marker.source_id != source.source_id:
        return None
    reader = TargetReader(dst)
    current = {rel: reader.signature(rel) for rel in [*marker.files, *marker.kept]}
    return marker if is_up_to_date(marker, source.source_id, current) else None


def prepare(source: Source, dst: str) -> Prepared:
    """Hash both trees, read the marker and intents, decide every action."""
    files = source.files
    if any(not f.sha256 for f in files.values()):
        files = hash_source(source.root, files)
    marker = read_marker(dst)
    reader = TargetReader(dst)
    paths = set(files) | set(marker.files if marker else ())
    before = {rel: reader.state(rel, with_hash=True) for rel in sorted(paths)}
    # Intents last: a file another run renamed before we hashed it had that run's intent
    # on disk first, so the intent is listed here, or (the run has finished) its marker
    # claims the file and settle_marker takes that claim in.
    intents = read_intents(dst)
    pending = pending_of(intents)
    before.update((rel, reader.state(rel, with_hash=True))
                  for rel in sorted(set(pending) - paths))
    actions = plan(files, marker, before, pending)
    return Prepared(source.root, dst, source.version, source.source_id, files,
                    marker, before, actions, intents)


_SETTLE_ROUNDS = 10


def apply(p: Prepared, stale_age: float | None = None) -> Marker:
    """Do the writes of `p`, then write the marker if it changed; return the new marker."""
    temps = TempFiles()
    installs = install_order(p.actions)
    journal = Journal(p.dst, {a.rel: p.source[a.rel].sha256 for a in installs}, temps)
    done = False
    try:
        removals = [a for a in p.actions if a.verb == REMOVE]
        touched = {os.path.dirname(_join(p.dst, a.rel)) for a in [*installs, *removals]}
        if installs or removals:
            sweep_stale_temps(touched | {p.dst}, time.time(), stale_age)
        written: dict[str, TargetState] = {}
        for a in installs:
            written[a.rel] = install(p.src, p.dst, p.source[a.rel], temps, journal)
            log.log(logging.INFO if a.verb == UPDATE else logging.DEBUG,
                    "updated" if a.verb == UPDATE else "copied",
                    extra=fields(file=_join(p.dst, a.rel), reason=a.why))
        for a in removals:
            remove(p.dst, a.rel)
            log.info("removed", extra=fields(file=_join(p.dst, a.rel), reason=a.why))
        for dir_path in sorted(touched):
            _fsync_dir(dir_path)
        claimed = {**{a.rel: p.before[a.rel] for a in p.actions
                      if a.verb in (UNCHANGED, KEEP) and a.rel in p.source},
                   **written}
        marker = settle_marker(p, claimed, temps)
        done = True
        sweep_stale_intents(p.intents, time.time(), stale_age)
        return marker
    finally:
        temps.remove_all()
        journal.close(done)


def settle_marker(p: Prepared, claimed: Mapping[str, TargetState], temps: TempFiles) -> Marker:
    """Write a marker that describes the tree, even while other runs still write into it.

    `claimed` is what we believe is at each source path we copied, updated, left
    unchanged or kept. Each round re-reads those paths (a changed inode, size, mtime or
    ctime means another run replaced the file: it is hashed again), takes in the claims
    of the marker on disk, writes ours unless the one on disk is already identical, then
    checks that nothing moved meanwhile. A run that renames a file writes its own marker
    after that, so the last marker on the volume describes the tree as it is left.
    """
    expected = dict(claimed)
    marker: Marker | None = None
    for _ in range(_SETTLE_ROUNDS):
        after, moved = reread(p.dst, expected)
        try:
            on_disk = read_marker_bytes(p.dst)
        except MarkerError:
            on_disk = b""  # not a file: ours replaces it
        others = _claims(on_disk)
        marker = build_marker(p.source_id, p.version, p.source, p.actions,
                              after=after, others=others)
        data = encode_marker(marker)
        if data != on_disk:
            write_marker(p.dst, data, temps)
        expected = after
        if not moved and not reread(p.dst, expected)[1]:
            return marker
    log.info("another run is still writing into the volume; the marker it writes after "
             "its last file will describe the tree", extra=fields(to=p.dst))
    assert marker is not None
    return marker


def _claims(data: bytes) -> dict[str, Record]:
    try:
        return dict(decode_marker(data).files) if data else {}
    except MarkerError:
        return {}


def reread(dst: str, expected: Mapping[str, TargetState]) -> tuple[dict[str, TargetState], bool]:
    """Current state of each path, and whether any content differs from `expected`.

    Only a file that is not the inode we expected is hashed again.
    """
    reader = TargetReader(dst)
    now: dict[str, TargetState] = {}
    moved = False
    for rel, was in expected.items():
        state = reader.state(rel, with_hash=False)
        if state.same_file(was) or (state.kind == was.kind != FILE):
            now[rel] = was
            continue
        now[rel] = state = reader.state(rel, with_hash=True)
        # Another run's identical copy changes nothing the marker records.
        moved = moved or (state.kind, state.sha256, state.size, state.mtime_ns) != (
            was.kind, was.sha256, was.size, was.mtime_ns)
    return now, moved


def _report_kept(dst: str, kept: Mapping[str, str]) -> None:
    for rel, why in sorted(kept.items()):
        log.warning("kept a file copy-html does not own", extra=fields(
            file=_join(dst, rel), reason=why))


def run(from_dir: str, to: str, dry_run: bool = False, out: TextIO | None = None) -> int:
    """Install (or, with dry_run, print the plan for) the tree; return the exit code."""
    started = time.monotonic()
    src, dst = check_dirs(from_dir, to)
    source = identify(src)
    if not dry_run:
        fresh = up_to_date(source, dst)
        if fresh is not None:
            _report_kept(dst, {rel: k.why for rel, k in fresh.kept.items()})
            log.info("html is up to date", extra=fields(
                to=dst, version=source.version, unchanged=len(fresh.files),
                kept=len(fresh.kept),
                took_ms=round((time.monotonic() - started) * 1000, 1)))
            return 0
    p = prepare(source, dst)
    counts = count(p.actions)
    summary = (f"copy={counts[COPY]} update={counts[UPDATE]} remove={counts[REMOVE]} "
               f"unchanged={counts[UNCHANGED]} keep={counts[KEEP]}")
    if dry_run:
        stream = out or sys.stdout
        for line in format_plan(p.actions):
            print(line, file=stream)
        print(f"plan for {dst}: {summary} (dry run: nothing written)", file=stream)
        return 0
    marker = apply(p)
    kept = {rel: k.why for rel, k in marker.kept.items()}
    kept.update((a.rel, a.why) for a in p.actions if a.verb == KEEP and a.rel not in p.source)
    _report_kept(dst, kept)
    log.info("html installed", extra=fields(
        to=dst, version=p.version, copied=counts[COPY], updated=counts[UPDATE],
        removed=counts[REMOVE], unchanged=counts[UNCHANGED], kept=len(kept),
        complete=marker.complete, took_ms=round((time.monotonic() - started) * 1000, 1)))
    return 0


def command(settings: CopyHtmlSettings) -> int:
    try:
        return run(settings.from_dir, settings.to, settings.dry_run)
    except CopyError as exc:
        log.error(str(exc), extra=fields(file=exc.path))
        return 1
