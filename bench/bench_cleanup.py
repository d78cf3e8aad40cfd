"""Cleanup against the guide's own CronJob command, on the same tree.

Builds one tree of N files shaped like SRS's html volume (HLS segments, playlists,
SRS's .ts.tmp/.m3u8.temp leftovers, DVR results and .flv.tmp, the console/players/
demos html, other files; half old, half new), then runs each contender on a fresh
build of that same tree (the same seed and ages: building is ~10x faster than `cp -a`
here, which matters at 1,000,000 files) and prints wall time and peak RSS side by side:

- guide:     the guide's five chained finds (globs quoted), `sh -c`, output to /dev/null
- find-1:    one GNU find pass doing the same (files, then empty dirs, with -depth)
- srs-agent: `srs-agent cleanup --once` at each --concurrency given

Each contender's result is checked against the guide's: the same files must remain.
Contenders run round-robin, in a rotating order, `--repeat` times each, after a sync and
a short pause, so that noise from the machine spreads over all of them.
Run by hand:  .venv/bin/python -m bench.bench_cleanup [--files 100000] [--million]
              [--dir /tmp] [--concurrency 1,4,8,16] [--repeat 3]
Caches are warm (the copy just wrote the tree); nothing is dropped between runs.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

DAY = 86400.0
PATTERNS = ("*.ts*", "*.m3u8*", "*.flv.tmp", "*.mp4.tmp")

GUIDE = (
    "find {r} -mtime +3 -name '*.ts*' -print -delete && "
    "find {r} -mtime +3 -name '*.m3u8*' -print -delete && "
    "find {r} -mtime +3 -name '*.flv.tmp' -print -delete && "
    "find {r} -mtime +3 -name '*.mp4.tmp' -print -delete && "
    "find {r} -type d -empty -print -delete && "
    'echo "Done"'
)
FIND_ONE_PASS = (
    "find {r} -mindepth 1 \\( -type f \\( -name '*.ts*' -o -name '*.m3u8*' -o "
    "-name '*.flv.tmp' -o -name '*.mp4.tmp' \\) -mtime +3 -print -delete \\) -o "
    "\\( -type d -empty -print -delete \\)"
)

# Runs a command and reports its own wall time and its children's peak RSS, so the
# figures are of that command alone (RUSAGE_CHILDREN of a fresh process).
_MEASURE = r"""
import resource, subprocess, sys, time
t = time.perf_counter()
rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
wall = time.perf_counter() - t
print(rc, wall, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


@dataclass
class Result:
    name: str
    walls: list[float]
    rss_kib: int
    remaining: int
    same_as_guide: bool | None = None


def build_tree(root: str, files: int, seed: int = 7) -> None:
    """An SRS-like html volume of about `files` files (see module doc)."""
    rng = random.Random(seed)
    now = time.time()
    old, new = now - 10 * DAY, now - 3600.0
    os.makedirs(root)
    for top in ("console/js", "players/js", "demos/css"):
        os.makedirs(os.path.join(root, top))
        for i in range(30):
            _touch(os.path.join(root, top, f"f{i}.js"), old)
    for name in ("index.html", "favicon.ico", "crossdomain.xml"):
        _touch(os.path.join(root, name), old)
    per_dir = 1000
    made = 0
    index = 0
    while made < files:
        app_dir = os.path.join(root, f"vhost{index // 20}", f"app{index % 20}")
        os.makedirs(app_dir)
        all_old = index % 4 == 0  # a quarter of the apps ended days ago: emptied entirely
        count = min(per_dir, files - made)
        for i in range(count):
            stream = f"s{i % 10}"
            roll = rng.random()
            if roll < 0.70:
                name = f"{stream}-{i}.ts"
            elif roll < 0.74:
                name = f"{stream}-{i}.ts.tmp"
            elif roll < 0.78:
                name = f"{stream}-{i}.m3u8"
            elif roll < 0.80:
                name = f"{stream}-{i}.m3u8.temp"
            elif roll < 0.84:
                name = f"{stream}.{1795718081416 + i}.flv.tmp"
            elif roll < 0.86:
                name = f"{stream}.{1795718081416 + i}.mp4.tmp"
            else:
                name = f"{stream}.{1795718081416 + i}" + rng.choice((".flv", ".mp4", ".jpg"))
            if all_old and not name.endswith((".flv", ".mp4", ".jpg")):
                mtime = old
            else:
                mtime = old if rng.random() < 0.5 else new
            _touch(os.path.join(app_dir, name), mtime, size=rng.choice((0, 188, 376)))
        made += count
        dir_mtime = old
        os.utime(app_dir, (dir_mtime, dir_mtime))
        index += 1
    for i in range(max(1, files // 10000)):
        empty = os.path.join(root, "stale", f"e{i}")
        os.makedirs(empty)
        os.utime(empty, (old, old))
    os.utime(os.path.join(root, "stale"), (old, old))
    for dirpath, dirnames, _ in os.walk(root):
        for d in dirnames:
            if d.startswith("vhost"):
                os.utime(os.path.join(dirpath, d), (old, old))


def _touch(path: str, mtime: float, size: int = 0) -> None:
    with open(path, "wb") as f:
        if size:
            f.write(b"G" * size)
    os.utime(path, (mtime, mtime))


def listing(root: str) -> set[str]:
    found: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        found.update(os.path.join(rel, n) for n in dirnames + filenames)
    return found


def measure(argv: list[str]) -> tuple[float, int]:
    out = subprocess.run([sys.executable, "-c", _MEASURE, *argv], capture_output=True,
                         text=True, check=True).stdout.split()
    rc, wall, rss = int(out[0]), float(out[1]), int(out[2])
    if rc not in (0, 1):
        raise SystemExit(f"{argv[0]} failed with {rc}")
    return wall, rss


def one_run(files: int, work: str, argv_for: str) -> tuple[float, int, set[str]]:
    """Build the tree afresh, let the disk settle, run one contender; (wall, peak RSS, left)."""
    target = os.path.join(work, "html")
    if os.path.exists(target):
        shutil.rmtree(target)
    build_tree(target, files)
    os.sync()  # the build's writeback must not land inside the measured run
    time.sleep(SETTLE)
    argv = [a.replace("{r}", target) for a in argv_for.split("\0")]
    wall, peak = measure(argv)
    return wall, peak, listing(target)


SETTLE = 2.0  # seconds of quiet before each measured run (journal commits, discards)


def run_all(contenders: list[tuple[str, str]], files: int, work: str,
            repeat: int) -> list[Result]:
    """Every contender `repeat` times, round-robin in a rotating order, so that noise
    from the machine (other jobs, the disk's background work) spreads over all of them."""
    results = {name: Result(name, [], 0, 0) for name, _ in contenders}
    lefts: dict[str, set[str]] = {}
    for round_ in range(repeat):
        shift = round_ % len(contenders)
        for name, argv_for in contenders[shift:] + contenders[:shift]:
            wall, peak, left = one_run(files, work, argv_for)
            print(f"  {name:<28} {wall:7.3f} s  {peak / 1024:6.1f} MiB  {len(left):>8} left",
                  flush=True)
            result = results[name]
            result.walls.append(wall)
            result.rss_kib = max(result.rss_kib, peak)
            result.remaining = len(left)
            lefts[name] = left
    reference = lefts[contenders[0][0]]
    for name, _ in contenders[1:]:
        results[name].same_as_guide = lefts[name] == reference
    return [results[name] for name, _ in contenders]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--million", action="store_true", help="also run 1,000,000 files")
    parser.add_argument("--dir", default=tempfile.gettempdir(),
                        help="where trees are built (a tmpfs such as /dev/shm, or a disk)")
    parser.add_argument("--concurrency", default="1,4,8,16")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    agent = shutil.which("srs-agent", path=os.path.dirname(sys.executable)) or "srs-agent"
    sizes = [args.files] + ([1_000_000] if args.million else [])
    for files in sizes:
        work = tempfile.mkdtemp(prefix="bench-cleanup-", dir=args.dir)
        try:
            started = time.perf_counter()
            build_tree(os.path.join(work, "html"), files)  # one_run builds it anew each time
            total = len(listing(os.path.join(work, "html")))
            print(f"\n== {files:,} files ({total:,} entries) under {args.dir}, built in "
                  f"{time.perf_counter() - started:.1f}s; best and median of {args.repeat} ==")
            contenders = [("guide (5 finds)", "sh\0-c\0" + GUIDE),
                          ("find, one pass", "sh\0-c\0" + FIND_ONE_PASS)]
            for c in args.concurrency.split(","):
                contenders.append((f"srs-agent --concurrency {c.strip()}", "\0".join([
                    agent, "cleanup", "--once", "--roots", "{r}", "--older-than", "3d",
                    "--max-deletions", "0", "--concurrency", c.strip()])))
            results = run_all(contenders, files, work, args.repeat)
            guide = results[0]
            base = min(guide.walls)
            median_base = statistics.median(guide.walls)
            print(f"{'contender':<28} {'best s':>8} {'median s':>9} {'vs guide':>9} "
                  f"{'(median)':>9} {'peak RSS MiB':>13} {'left':>8}  same result  runs")
            for r in results:
                best, median = min(r.walls), statistics.median(r.walls)
                same = "-" if r.same_as_guide is None else ("yes" if r.same_as_guide else "NO")
                runs = " ".join(f"{w:.2f}" for w in r.walls)
                print(f"{r.name:<28} {best:>8.3f} {median:>9.3f} {base / best:>8.2f}x "
                      f"{median_base / median:>8.2f}x {r.rss_kib / 1024:>13.1f} "
                      f"{r.remaining:>8}  {same:<11}  {runs}")
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
