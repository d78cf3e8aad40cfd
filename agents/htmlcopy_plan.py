"""Pure decisions of `copy-html`: what to do with each file, and the marker that records it.

Nothing here touches the file system. The adapter (agents/htmlcopy.py) reads the source
tree, the target tree and the marker into the plain values below, asks `plan` what to do,
does it, and asks `build_marker` what to record.

Ownership rule: a target file is ours to replace or remove only while its content is what
the marker says we installed (or exactly the source's). Only paths of the source and of
the marker are looked at, so HLS, DVR and other files elsewhere are never touched; a file
of the user's where a source file goes (an edit, or a file that was there before us) is
kept and reported. A file we installed that has gone missing is put back.

A run that stops after some renames but before its marker (killed, disk full) would leave
files no marker claims; a later run of another source (a rollback) would then keep them
as the user's. So before its first rename a run records what it is about to install in an
intent file of its own, and that content counts as ours until a marker records it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, NamedTuple

MARKER_NAME = ".srs-agents-html.json"
"""The marker at the root of the target; cleanup must never delete it."""

MARKER_FORMAT = 1

TEMP_PREFIX = ".srs-agents."
TEMP_SUFFIX = ".tmp"
"""Temp files are `.srs-agents.<pid>.<random>.tmp`, in the directory of the final file."""

VERSION_SUFFIX = ".version"
"""The source's version is read from the file `<from>.version` beside the source tree."""

INTENT_PREFIX = ".srs-agents-intent."
INTENT_SUFFIX = ".json"
"""Intent files are `.srs-agents-intent.<pid>.<random>.json`, at the root of the target."""

STALE_TEMP_AGE = 3600.0
"""A temp or intent file of ours not touched (ctime) for this long was left by a dead run."""

COPY, UPDATE, REMOVE, UNCHANGED, KEEP = "copy", "update", "remove", "unchanged", "keep"
VERBS = (COPY, UPDATE, REMOVE, UNCHANGED, KEEP)

# Kinds of a target path.
MISSING, FILE, DIR, SYMLINK, OTHER, BLOCKED = (
    "missing", "file", "dir", "symlink", "other", "blocked",
)

_NOTHING: Mapping[str, Any] = MappingProxyType({})

Signature = tuple[str, int, int]
"""(kind, size, mtime_ns) of a target path; size and mtime are 0 unless kind is file."""


class SourceFile(NamedTuple):
    rel: str  # POSIX path relative to the tree's root
    size: int
    mtime_ns: int
    mode: int  # permission bits
    sha256: str = ""  # empty until hashed


class TargetState(NamedTuple):
    kind: str  # MISSING | FILE | DIR | SYMLINK | OTHER | BLOCKED (a parent is not a dir)
    size: int = 0
    mtime_ns: int = 0
    ino: int = 0
    sha256: str = ""  # of a FILE, when hashed
    ctime_ns: int = 0  # tells a file replaced in place of another (never recorded)

    def same_file(self, other: TargetState) -> bool:
        """Same inode, unchanged since: the content hashed before is still there."""
        return self.kind == other.kind == FILE and (
            self.ino, self.size, self.mtime_ns, self.ctime_ns) == (
            other.ino, other.size, other.mtime_ns, other.ctime_ns)

    def signature(self) -> Signature:
        if self.kind == FILE:
            return (FILE, self.size, self.mtime_ns)
        return (self.kind, 0, 0)


class Record(NamedTuple):
    """A file the marker says we installed, as it was when the marker was written."""

    sha256: str
    size: int
    mtime_ns: int


class Kept(NamedTuple):
    """A source path where the target holds something of the user's."""

    signature: Signature
    why: str


class Marker(NamedTuple):
    source_id: str
    version: str | None
    complete: bool  # every recorded file equals the source named by source_id
    files: Mapping[str, Record] = _NOTHING
    kept: Mapping[str, Kept] = _NOTHING


class Action(NamedTuple):
    verb: str  # one of VERBS
    rel: str
    why: str = ""


class MarkerError(ValueError):
    """The marker file is not one this version can read."""


# ---------------------------------------------------------------------------
# Source identity
# ---------------------------------------------------------------------------


def stat_source_id(version: str, files: Iterable[SourceFile]) -> str:
    """Identity of a versioned source from its version and its files' names, sizes, mtimes.

    Cheap (no file is read), so a rerun can tell "same source" in a few stat calls; the
    stat part guards against a tree that changed under an unchanged version file.
    """
    h = hashlib.sha256(f"version\0{version}\n".encode("utf-8", "surrogateescape"))
    for f in sorted(files, key=lambda f: f.rel):
        h.update(f"{f.rel}\0{f.size}\0{f.mtime_ns}\n".encode("utf-8", "surrogateescape"))
    return "stat:" + h.hexdigest()


def content_source_id(files: Iterable[SourceFile]) -> str:
    """Identity of an unversioned source: a hash over every file's name and content hash."""
    h = hashlib.sha256()
    for f in sorted(files, key=lambda f: f.rel):
        if not f.sha256:
            raise ValueError(f"{f.rel}: not hashed")
        h.update(f"{f.rel}\0{f.sha256}\n".encode("utf-8", "surrogateescape"))
    return "sha256:" + h.hexdigest()


# ---------------------------------------------------------------------------
# Deciding
# ---------------------------------------------------------------------------


def _not_a_file(state: TargetState) -> str:
    return {
        DIR: "a directory is in its place",
        SYMLINK: "a symlink is in its place",
        BLOCKED: "a parent path is not a directory",
    }.get(state.kind, "something other than a regular file is in its place")


def plan(
    source: Mapping[str, SourceFile],
    marker: Marker | None,
    target: Mapping[str, TargetState],
    pending: Mapping[str, Collection[str]] | None = None,
) -> list[Action]:
    """One action per path in the source, the marker or `pending`; files are hashed.

    `pending` maps a path to the hashes that runs which may not have finished were about
    to install there (their intent files): a file with such content is ours, like one the
    marker records. `target` must hold a state for every such path (MISSING when absent),
    with sha256 set for every FILE.
    """
    installed: Mapping[str, Record] = marker.files if marker else {}
    pending = pending or {}
    actions: list[Action] = []
    for rel in sorted(set(source) | set(installed) | set(pending)):
        src = source.get(rel)
        rec = installed.get(rel)
        state = target[rel]
        interrupted = state.kind == FILE and state.sha256 in pending.get(rel, ())
        if src is None:
            if state.kind == MISSING:
                continue  # already gone: nothing to do, nothing to record
            if state.kind == FILE and (
                    interrupted or (rec is not None and state.sha256 == rec.sha256)):
                actions.append(Action(REMOVE, rel, "no longer in the source"))
            elif rec is None:
                continue  # a run meant to write here but did not: never ours
            elif state.kind == FILE:
                actions.append(Action(KEEP, rel, "no longer in the source, but changed "
                                                 "since it was installed"))
            else:
                actions.append(Action(KEEP, rel, "no longer in the source; "
                                                 + _not_a_file(state)))
            continue
        if state.kind == MISSING:
            actions.append(Action(COPY, rel, "installed before, missing" if rec else "new"))
        elif state.kind != FILE:
            actions.append(Action(KEEP, rel, _not_a_file(state)))
        elif state.sha256 == src.sha256:
            actions.append(Action(UNCHANGED, rel))
        elif rec is not None and state.sha256 == rec.sha256:
            actions.append(Action(UPDATE, rel, "changed in the source"))
        elif interrupted:
            actions.append(Action(UPDATE, rel, "left by a run that did not finish"))
        elif rec is not None:
            actions.append(Action(KEEP, rel, "changed since it was installed"))
        else:
            actions.append(Action(KEEP, rel, "not installed by copy-html and differs from "
                                             "the source"))
    return actions


def install_order(actions: Sequence[Action]) -> list[Action]:
    """Copies and updates, deepest first, so a page appears after the assets it loads."""
    writes = [a for a in actions if a.verb in (COPY, UPDATE)]
    return sorted(writes, key=lambda a: (-a.rel.count("/"), a.rel))


def count(actions: Iterable[Action]) -> dict[str, int]:
    counts = dict.fromkeys(VERBS, 0)
    for a in actions:
        counts[a.verb] += 1
    return counts


def format_plan(actions: Iterable[Action]) -> list[str]:
    """`--dry-run` output: one line per path, `verb path` and the reason in brackets."""
    lines = []
    for a in actions:
        line = f"{a.verb:<9} {a.rel}"
        if a.why and a.verb != UNCHANGED:
            line += f"  ({a.why})"
        lines.append(line)
    return lines


def is_up_to_date(
    marker: Marker | None, source_id: str, current: Mapping[str, Signature]
) -> bool:
    """True when the marker says this source is fully installed and nothing moved since.

    `current` holds the signature of every path in marker.files and marker.kept. A file is
    taken as untouched while its size and mtime are what the marker recorded (the check
    rsync and git use); any difference sends the run down the hashing path.
    """
    if marker is None or not marker.complete or marker.source_id != source_id:
        return False
    for rel, rec in marker.files.items():
        if current.get(rel) != (FILE, rec.size, rec.mtime_ns):
            return False
    return all(current.get(rel) == kept.signature for rel, kept in marker.kept.items())


def build_marker(
    source_id: str,
    version: str | None,
    source: Mapping[str, SourceFile],
    actions: Iterable[Action],
    *,
    after: Mapping[str, TargetState],
    others: Mapping[str, Record] | None = None,
) -> Marker:
    """The marker for the tree as it is after our writes.

    `after` is the re-read (hashed) state of every source path we copied, updated, left
    unchanged or kept. A file someone else replaced in between (another pod) is recorded
    with what is there now and makes the marker incomplete, so the next run looks again.
    `others` are the files claimed by the marker on disk now (another run's): a kept file
    holding exactly such a claim was installed by that run, not by a user, so it is ours
    to record too.
    """
    files: dict[str, Record] = {}
    kept: dict[str, Kept] = {}
    complete = True
    for a in actions:
        if a.rel not in source or a.verb not in (COPY, UPDATE, UNCHANGED, KEEP):
            continue  # removals, and files dropped from the source that the user changed
        state = after[a.rel]
        if state.kind == MISSING:
            complete = False  # gone meanwhile: the next run puts it back
            continue
        claim = (others or {}).get(a.rel)
        ours = a.verb != KEEP or (claim is not None and claim.sha256 == state.sha256)
        if ours and state.kind == FILE:
            files[a.rel] = Record(state.sha256, state.size, state.mtime_ns)
            complete = complete and state.sha256 == source[a.rel].sha256
        elif ours:
            complete = False  # something else took the place of a file we installed
        else:
            kept[a.rel] = Kept(state.signature(), a.why)
    return Marker(source_id, version, complete, files, kept)


def is_stale_temp(name: str, ctime: float, now: float, max_age: float = STALE_TEMP_AGE) -> bool:
    """A temp file of ours whose writer is long gone (killed mid-copy)."""
    return name.startswith(TEMP_PREFIX) and name.endswith(TEMP_SUFFIX) and now - ctime > max_age


def is_intent(name: str) -> bool:
    return name.startswith(INTENT_PREFIX) and name.endswith(INTENT_SUFFIX)


def is_stale_intent(name: str, ctime: float, now: float,
                    max_age: float = STALE_TEMP_AGE) -> bool:
    """An intent file whose writer is long gone; a run takes seconds."""
    return is_intent(name) and now - ctime > max_age


def is_reserved(name: str) -> bool:
    """Names copy-html writes itself; never taken from a source tree."""
    return name == MARKER_NAME or is_intent(name) or (
        name.startswith(TEMP_PREFIX) and name.endswith(TEMP_SUFFIX))


# ---------------------------------------------------------------------------
# Marker file format
# ---------------------------------------------------------------------------


def encode_marker(marker: Marker) -> bytes:
    """Deterministic JSON: two runs that leave the same tree write the same bytes."""
    doc = {
        "format": MARKER_FORMAT,
        "source": {"id": marker.source_id, "version": marker.version},
        "complete": marker.complete,
        "files": {
            rel: {"sha256": r.sha256, "size": r.size, "mtime_ns": r.mtime_ns}
            for rel, r in marker.files.items()
        },
        "kept": {
            rel: {"kind": k.signature[0], "size": k.signature[1], "mtime_ns": k.signature[2],
                  "why": k.why}
            for rel, k in marker.kept.items()
        },
    }
    return (json.dumps(doc, sort_keys=True, indent=1) + "\n").encode("ascii")


def is_tree_path(rel: str) -> bool:
    """A path that stays inside the tree: relative, no `.`, `..` or empty part.

    The marker and intent files lie on a volume others write to; a path read from them
    must never reach outside the target.
    """
    return bool(rel) and "\0" not in rel and all(
        part not in ("", ".", "..") for part in rel.split("/"))


def _paths(doc: Any, key: str) -> Mapping[str, Any]:
    value = doc[key]
    if not isinstance(value, dict):
        raise MarkerError(f"{key} is not a map")
    for rel in value:
        if not is_tree_path(rel):
            raise MarkerError(f"{key}: {rel!r} is not a path inside the target")
    return value


def _int(doc: Mapping[str, Any], key: str) -> int:
    value = doc[key]
    if not isinstance(value, int) or isinstance(value, bool):
        raise MarkerError(f"{key} is not a whole number")
    return value


def _str(doc: Mapping[str, Any], key: str) -> str:
    value = doc[key]
    if not isinstance(value, str):
        raise MarkerError(f"{key} is not a string")
    return value


def decode_marker(data: bytes) -> Marker:
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError) as exc:  # nested too deep: not ours either
        raise MarkerError(f"not JSON ({exc})") from None
    try:
        if not isinstance(doc, dict) or doc.get("format") != MARKER_FORMAT:
            raise MarkerError(f"not format {MARKER_FORMAT}")
        src = doc["source"]
        version = src["version"]
        if version is not None and not isinstance(version, str):
            raise MarkerError("source.version is not a string")
        complete = doc["complete"]
        if not isinstance(complete, bool):
            raise MarkerError("complete is not true or false")
        files = {
            str(rel): Record(_str(r, "sha256"), _int(r, "size"), _int(r, "mtime_ns"))
            for rel, r in _paths(doc, "files").items()
        }
        kept = {
            str(rel): Kept((_str(k, "kind"), _int(k, "size"), _int(k, "mtime_ns")),
                           _str(k, "why"))
            for rel, k in _paths(doc, "kept").items()
        }
        return Marker(_str(src, "id"), version, complete, files, kept)
    except (KeyError, TypeError, AttributeError) as exc:
        raise MarkerError(f"missing or malformed field {exc}") from None


def encode_intent(files: Mapping[str, str]) -> bytes:
    """The intent file: path -> sha256 of each file a run is about to install."""
    doc = {"format": MARKER_FORMAT, "files": dict(sorted(files.items()))}
    return (json.dumps(doc, indent=1) + "\n").encode("ascii")


def decode_intent(data: bytes) -> dict[str, str]:
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError) as exc:  # nested too deep: not ours either
        raise MarkerError(f"not JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != MARKER_FORMAT:
        raise MarkerError(f"not format {MARKER_FORMAT}")
    try:
        files = _paths(doc, "files")
    except KeyError:
        raise MarkerError("missing field 'files'") from None
    if not all(isinstance(v, str) for v in files.values()):
        raise MarkerError("files is not a map of path to sha256")
    return {str(rel): sha for rel, sha in files.items()}
