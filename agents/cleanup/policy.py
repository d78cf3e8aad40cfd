"""What cleanup may delete: pure decisions on names, paths, ages and disk figures.

Nothing here touches the disk. The scanner (scan.py) asks these functions about each
entry it lists, and the remover asks `is_old` again with a fresh lstat right before
an unlink, so a file written or replaced meanwhile is kept.

Protected always, whatever --patterns says:
- finished DVR recordings (`*.flv`, `*.mp4`): SRS renames `.flv.tmp` to `.flv` when a
  recording ends, and never deletes recordings itself;
- SRS's default html: the `console`, `players` and `demos` directories (at any
  depth, so a root set one level too high is still safe), `*.html`, `favicon.ico`,
  `crossdomain.xml`, and the copy-html marker `.srs-agents-html.json`.
"""

from __future__ import annotations

import enum
import fnmatch
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from agents.errors import ConfigError

# The guide's four globs: HLS segments and playlists (with SRS's .ts.tmp and .m3u8.temp
# leftovers) and unfinished DVR files.
DEFAULT_PATTERNS = ("*.ts*", "*.m3u8*", "*.flv.tmp", "*.mp4.tmp")

PROTECTED_NAMES = (
    "*.flv",
    "*.mp4",
    "*.html",
    "favicon.ico",
    "crossdomain.xml",
    ".srs-agents-html.json",
    ".srs-agents-intent.*.json",  # copy-html's journal of a run that stopped mid-way
)
PROTECTED_DIRS = frozenset({"console", "players", "demos"})


class Verdict(enum.Enum):
    """What the scanner does with a file it listed."""

    CANDIDATE = "candidate"  # matches a pattern: delete if still old at unlink time
    NO_MATCH = "no_match"
    PROTECTED = "protected"
    LIVE = "live"  # belongs to a stream that is publishing now


def _glob_regex(globs: Iterable[str], flags: int = 0) -> re.Pattern[str] | None:
    parts = [fnmatch.translate(g) for g in globs]
    return re.compile("|".join(parts), flags) if parts else None


@dataclass(frozen=True)
class LiveStreams:
    """Streams publishing now, as (app, stream) pairs from SRS's API.

    SRS names a stream's files `<app>/<stream>-<seq>.ts`, `<app>/<stream>.m3u8` and
    `<app>/<stream>.<ms>.flv.tmp` by default, and lets hls_path, hls_ts_file and
    dvr_path add levels around them (`[vhost]/[app]/...`, `[app]/[stream]/[seq].ts`).
    A file is taken as the stream's when the app's path (an app may hold '/') appears
    in its directory's absolute path, which includes the root's own path (a root set
    to the app directory itself), and its name or a directory below the app starts
    with `<stream>`. The test is a superset (stream `s1` also shields `s10-3.ts`): it
    can only keep too much, never delete a live file.
    """

    pairs: frozenset[tuple[str, str]] = frozenset()
    _apps: tuple[tuple[tuple[str, ...], str], ...] = field(default=(), init=False, repr=False,
                                                          compare=False)
    _cache: dict[str, tuple[str, ...]] = field(default_factory=dict, init=False, repr=False,
                                               compare=False)

    def __post_init__(self) -> None:
        apps = tuple((tuple(p for p in app.split("/") if p), stream)
                     for app, stream in sorted(self.pairs))
        object.__setattr__(self, "_apps", apps)

    def prefixes(self, dir_path: str) -> tuple[str, ...]:
        """Name prefixes of live files in the directory `dir_path` ('' shields every file)."""
        cached = self._cache.get(dir_path)
        if cached is not None:
            return cached
        parts = [p for p in dir_path.split("/") if p]
        found: list[str] = []
        for app, stream in self._apps:
            n = len(app)
            for end in range(n, len(parts) + 1):
                if n and tuple(parts[end - n:end]) != app:
                    continue
                below = parts[end:]
                found.append("" if any(p.startswith(stream) for p in below) else stream)
        result = tuple(found)
        if len(self._cache) >= 4096:
            self._cache.clear()
        self._cache[dir_path] = result
        return result

    def owns(self, dir_path: str, name: str) -> bool:
        prefixes = self.prefixes(dir_path)
        return bool(prefixes) and name.startswith(prefixes)


@dataclass(frozen=True)
class Policy:
    """The rules of one cleanup run, compiled once from the settings."""

    patterns: tuple[str, ...] = DEFAULT_PATTERNS
    protect: tuple[str, ...] = ()
    older_than: float = 3 * 86400.0
    live: LiveStreams = LiveStreams()
    _match: re.Pattern[str] | None = field(init=False, repr=False, compare=False, default=None)
    _candidate: re.Pattern[str] | None = field(init=False, repr=False, compare=False,
                                               default=None)
    _protected_name: re.Pattern[str] | None = field(init=False, repr=False, compare=False,
                                                    default=None)
    _protect: re.Pattern[str] | None = field(init=False, repr=False, compare=False, default=None)

    def __post_init__(self) -> None:
        check_patterns(self.patterns, self.protect)
        object.__setattr__(self, "_match", _glob_regex(self.patterns))
        # Protected names in any case: a recording uploaded as REC.MP4 is still one.
        object.__setattr__(self, "_protected_name", _glob_regex(PROTECTED_NAMES, re.IGNORECASE))
        # One regex for the common case, a pattern match that is not a protected name.
        protected = "|".join(fnmatch.translate(g) for g in PROTECTED_NAMES)
        matching = "|".join(fnmatch.translate(g) for g in self.patterns)
        object.__setattr__(self, "_candidate", re.compile(f"(?!(?i:{protected}))(?:{matching})"))
        object.__setattr__(self, "_protect", _glob_regex(self.protect))

    def with_live(self, live: LiveStreams) -> Policy:
        return Policy(self.patterns, self.protect, self.older_than, live)

    def cutoff(self, now: float) -> float:
        """Files with an mtime before this are old enough to go."""
        return now - self.older_than

    def classify(self, dir_rel: str, dir_path: str, name: str) -> Verdict:
        """Decide on a file (or symlink, fifo...) by its name and place alone.

        `dir_rel` is its directory relative to the root ('' for the root itself),
        `dir_path` that directory's absolute path (where SRS's app and stream show).
        """
        assert self._candidate is not None and self._match is not None
        if self._candidate.match(name) is None:
            return Verdict.NO_MATCH if self._match.match(name) is None else Verdict.PROTECTED
        if self._protect is not None and self._protect.match(join(dir_rel, name)) is not None:
            return Verdict.PROTECTED
        if self.live.pairs and self.live.owns(dir_path, name):
            return Verdict.LIVE
        return Verdict.CANDIDATE

    def dir_protected(self, rel: str, name: str) -> bool:
        """A protected directory is not entered at all: nothing in it is touched."""
        if name in PROTECTED_DIRS:
            return True
        return self._protect is not None and self._protect.match(rel) is not None

    def may_remove_dir(self, rel: str, mtime: float, cutoff: float) -> bool:
        """An emptied (or already empty) directory goes when it is old; never the root.

        `mtime` is the one seen before this run deleted anything in it: our own
        unlinks make every directory look new.
        """
        return rel != "" and mtime < cutoff


def is_old(mtime: float, cutoff: float) -> bool:
    return mtime < cutoff


def join(dir_rel: str, name: str) -> str:
    return f"{dir_rel}/{name}" if dir_rel else name


def check_patterns(patterns: tuple[str, ...], protect: tuple[str, ...]) -> None:
    """Reject globs that can never do what the user meant."""
    if not patterns:
        raise ConfigError("--patterns: give at least one file name glob, e.g. '*.ts*'")
    for glob in patterns:
        if "/" in glob:
            raise ConfigError(
                f"--patterns: {glob!r} contains '/': patterns match file names; "
                "use --protect for paths"
            )
    for glob in protect:
        if glob.startswith("/"):
            raise ConfigError(
                f"--protect: {glob!r} is absolute: protect globs match the path relative "
                "to each root, e.g. 'archive/*'"
            )


# ---------------------------------------------------------------------------
# Disk watermark
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DiskUsage:
    """The figures of statvfs that df uses, in bytes."""

    total: int  # f_blocks * f_frsize
    free: int  # f_bfree * f_frsize (root's reserve included)
    available: int  # f_bavail * f_frsize (what an unprivileged writer can use)

    @property
    def used(self) -> int:
        return self.total - self.free

    @property
    def percent(self) -> float:
        """Use% exactly as df prints it: used / (used + available)."""
        denominator = self.used + self.available
        return 100.0 * self.used / denominator if denominator > 0 else 0.0


def bytes_over_mark(usage: DiskUsage, max_percent: float) -> int:
    """How many bytes must go for usage to drop under `max_percent` (0 if it is under)."""
    if max_percent <= 0:
        return 0
    capacity = usage.used + usage.available
    allowed = capacity * max_percent / 100.0
    over = usage.used - allowed
    return max(0, int(over) + 1) if over >= 0 else 0
