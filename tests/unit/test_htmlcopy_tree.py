"""A synthetic html tree with the shape of SRS 6.0.155's default html, and helpers to compare trees.

SRS's html itself is never part of this project. The shape comes from
tests/fixtures/html-listing.txt (recorded from a real build): top-level names and sizes,
second-level names, per-directory byte totals, 99 files, 16 directories. The listing does
not name the third level: those names (`js/lib`, `asset-N.*`) are made up here, and sizes
inside each top directory are drawn from a seeded generator so the directory totals match
the listing exactly. Content is seeded random bytes: a different seed gives a different
"release".

Also checks here that the synthetic tree keeps that shape.
"""

from __future__ import annotations

import json
import os
import random
import re
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

LISTING = Path(__file__).resolve().parents[1] / "fixtures" / "html-listing.txt"
DIR_BYTES = 4096  # `du -sb` counts each directory as one block

# Made-up files per subdirectory (the listing names only two levels); js/lib is the one
# third-level directory per top directory that brings the count to 16 directories.
_EXTRA_FILES = {
    "console/js": 8, "console/views": 6, "console/js/lib": 4,
    "demos/css": 3, "demos/img": 8, "demos/js": 8, "demos/js/lib": 4,
    "players/css": 4, "players/img": 10, "players/js": 13, "players/js/lib": 4,
}
_EXT = {"js": ".js", "lib": ".js", "css": ".css", "img": ".png", "views": ".html"}


def listing_text() -> str:
    return LISTING.read_text()


def _section(text: str, title: str) -> list[str]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"# {title}"))
    out = []
    for line in lines[start + 1:]:
        if line.startswith("#"):
            break
        if line.strip():
            out.append(line)
    return out


def listing_totals(text: str) -> tuple[int, int, int]:
    """(bytes as du -sb counts them, files, dirs) of the whole tree, from the listing."""
    m = re.search(r"TOTAL (\d+) bytes .*files=(\d+), dirs=(\d+)", text)
    assert m, "html-listing.txt: no TOTAL line"
    return int(m.group(1)), int(m.group(2)), int(m.group(3))


def tree_spec(text: str, seed: str = "6.0.155") -> dict[str, int]:
    """rel path -> size, 99 files whose directory totals match the listing's `du -sb`."""
    du: dict[str, int] = {}
    for line in _section(text, "du -sb per entry"):
        name, size = line.split()[:2]
        if name != "TOTAL":
            du[name] = int(size)
    second = [line.strip().removeprefix("./") for line in _section(text, "second level")]
    rng = random.Random(f"spec:{seed}")
    spec: dict[str, int] = {}
    for top, total in sorted(du.items()):
        children = [s for s in second if s.startswith(top + "/")]
        if not children:  # a top-level file
            spec[top] = total
            continue
        subdirs = [c for c in children if "." not in c.rpartition("/")[2]]
        subdirs += [d for d in _EXTRA_FILES if d.startswith(top + "/") and d not in subdirs]
        budget = total - DIR_BYTES * (1 + len(subdirs))
        named = [c for c in children if c not in subdirs]
        if top == "live":  # the listing quotes its one file: 122 bytes
            assert named == ["live/livestream.html"]
        files = {rel: rng.randint(2_000, 40_000) for rel in named}
        extras = [f"{d}/asset-{i}{_EXT[d.rpartition('/')[2]]}"
                  for d in subdirs for i in range(_EXTRA_FILES[d])]
        if not extras:
            files = {named[0]: budget}
        else:
            weights = [rng.random() ** 3 + 0.01 for _ in extras]
            left = budget - sum(files.values())
            sizes = [int(left * w / sum(weights)) for w in weights]
            sizes[0] += left - sum(sizes)
            files.update(zip(extras, sizes, strict=True))
        spec.update(files)
    return spec


def build_html_tree(
    root: Path, *, seed: str = "6.0.155", version: str | None = "6.0.155"
) -> dict[str, int]:
    """Write the synthetic tree under `root` (and `<root>.version` unless version is None)."""
    spec = tree_spec(listing_text())
    for rel, size in spec.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(random.Random(f"{seed}:{rel}").randbytes(size))
        path.chmod(0o755 if rel == "index.html" else 0o644)
    version_file = Path(str(root) + ".version")
    if version is not None:
        version_file.write_text(version + "\n")
    elif version_file.exists():
        version_file.unlink()
    return spec


def files_of(root: Path) -> dict[str, bytes]:
    """rel path -> content of every regular file under root."""
    out = {}
    for dirpath, _, names in os.walk(root):
        for name in names:
            path = Path(dirpath, name)
            if stat.S_ISREG(path.lstat().st_mode):
                out[path.relative_to(root).as_posix()] = path.read_bytes()
    return out


def snapshot(root: Path) -> dict[str, tuple[int, int, int, int, int]]:
    """rel path -> (inode, size, mode, mtime_ns, ctime_ns) of every entry, dirs included.

    Any write, rename, chmod, utime or entry created/removed in a directory changes it.
    """
    out = {}
    for dirpath, dirs, names in os.walk(root):
        for name in [".", *dirs, *names]:
            path = Path(dirpath, name)
            st = path.lstat()
            rel = path.relative_to(root).as_posix()
            out[rel] = (st.st_ino, st.st_size, st.st_mode, st.st_mtime_ns, st.st_ctime_ns)
    return out


def temp_files(root: Path) -> list[str]:
    """Temp files of copy-html left anywhere under root."""
    return sorted(
        str(Path(d, n)) for d, _, names in os.walk(root) for n in names
        if n.startswith(".srs-agents.") and n.endswith(".tmp")
    )


def modes_of(root: Path) -> dict[str, int]:
    return {
        Path(d, n).relative_to(root).as_posix(): stat.S_IMODE(Path(d, n).lstat().st_mode)
        for d, _, names in os.walk(root) for n in names
    }


def copy_html(
    src: Path, dst: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the real `srs-agent copy-html` process (JSON logs on stderr)."""
    cmd = [str(Path(sys.executable).parent / "srs-agent"), "copy-html",
           "--from", str(src), "--to", str(dst), "--log-level", "debug", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})}, check=False)


def log_lines(stderr: str) -> list[dict[str, Any]]:
    """The JSON log objects of a run's stderr."""
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


# ---------------------------------------------------------------------------
# The synthetic tree keeps the recorded shape.
# ---------------------------------------------------------------------------


def test_spec_matches_the_listing_totals() -> None:
    text = listing_text()
    total, n_files, n_dirs = listing_totals(text)
    spec = tree_spec(text)
    dirs = {""} | {rel.rsplit("/", i)[0] for rel in spec for i in range(1, rel.count("/") + 1)}
    assert len(spec) == n_files == 99
    assert len(dirs) == n_dirs == 16
    assert sum(spec.values()) + DIR_BYTES * len(dirs) == total == 10_722_123
    assert spec["favicon.ico"] == 4286 and spec["index.html"] == 4672
    assert spec["nginx.html"] == 13 and spec["live/livestream.html"] == 122
    assert all(size > 0 for size in spec.values())


def test_spec_names_every_second_level_entry() -> None:
    spec = tree_spec(listing_text())
    for name in ("console/en_index.html", "demos/one2one.html", "players/whip.html",
                 "players/crossdomain.xml", "players/srs_player.html"):
        assert name in spec
    for dir_name in ("console/js", "console/views", "demos/img", "players/css"):
        assert any(rel.startswith(dir_name + "/") for rel in spec)


def test_build_writes_the_tree_and_version(tmp_path: Path) -> None:
    spec = build_html_tree(tmp_path / "html", seed="a")
    files = files_of(tmp_path / "html")
    assert {rel: len(data) for rel, data in files.items()} == spec
    assert (tmp_path / "html.version").read_text() == "6.0.155\n"
    other = build_html_tree(tmp_path / "other", seed="b", version=None)
    assert other == spec
    assert files_of(tmp_path / "other")["index.html"] != files["index.html"]
    assert not (tmp_path / "other.version").exists()
