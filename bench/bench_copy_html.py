"""Wall time of `srs-agent copy-html` as a process: cold copy and no-op rerun.

The source is the synthetic tree with the shape of SRS's default html (99 files, 10.7 MB;
see tests/unit/test_htmlcopy_tree.py). Each run is a fresh `srs-agent` process, so the
figures include interpreter start-up, as an init container sees it.

    .venv/bin/python -m bench.bench_copy_html [--runs 20] [--target-dir DIR]

Goals: cold copy <= 1 s, no-op rerun <= 100 ms (p50).
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from tests.unit.test_htmlcopy_tree import build_html_tree, snapshot

SRS_AGENT = str(Path(sys.executable).parent / "srs-agent")

# An installed image has its modules compiled (pip writes .pyc files); let the first run
# write them here too, or every run would pay for compiling the sources again.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def percentile(samples: Sequence[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def timed(cmd: Sequence[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, env=ENV)
    took = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited {done.returncode}:\n{done.stderr}")
    return took


def report(name: str, samples: Sequence[float], goal: float | None = None) -> None:
    p50, p99 = percentile(samples, 50), percentile(samples, 99)
    line = (f"{name:<34} n={len(samples):<3} p50={p50 * 1000:7.1f} ms  "
            f"p99={p99 * 1000:7.1f} ms  min={min(samples) * 1000:7.1f} ms")
    if goal is not None:
        line += f"  goal p50 <= {goal * 1000:.0f} ms: {'met' if p50 <= goal else 'MISSED'}"
    print(line, flush=True)


def series(runs: int, one: Callable[[int], float]) -> list[float]:
    return [one(i) for i in range(runs)]


def copy_cmd(src: Path, dst: Path) -> list[str]:
    return [SRS_AGENT, "copy-html", "--from", str(src), "--to", str(dst),
            "--log-level", "warning"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--target-dir", default=None,
                        help="where the target volumes are made (e.g. an NFS mount)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-copy-html-") as tmp, \
            tempfile.TemporaryDirectory(prefix="bench-copy-html-vol-",
                                        dir=args.target_dir) as vols:
        src = Path(tmp, "v", "html")
        spec = build_html_tree(src)
        plain = Path(tmp, "u", "html")
        build_html_tree(plain, version=None)
        print(f"source: {len(spec)} files, {sum(spec.values()):,} bytes; targets under {vols}")
        warm = Path(vols, "warm-up")
        warm.mkdir()
        timed(copy_cmd(src, warm))  # compiles and caches the modules, like an installed image
        shutil.rmtree(warm)

        report("python -c pass (baseline)", series(args.runs, lambda i: timed(
            [sys.executable, "-c", "pass"])))
        report("srs-agent --help (baseline)", series(args.runs, lambda i: timed(
            [SRS_AGENT, "--help"])))

        def cold(i: int, source: Path = src) -> float:
            dst = Path(vols, f"cold-{source.parent.name}-{i}")
            dst.mkdir()
            try:
                return timed(copy_cmd(source, dst))
            finally:
                shutil.rmtree(dst)

        report("cold copy (version file)", series(args.runs, cold), goal=1.0)
        report("cold copy (no version file)", series(args.runs, lambda i: cold(i, plain)),
               goal=1.0)

        for name, source in (("version file", src), ("no version file", plain)):
            dst = Path(vols, f"seeded-{source.parent.name}")
            dst.mkdir()
            timed(copy_cmd(source, dst))
            before = snapshot(dst)
            cmd = copy_cmd(source, dst)
            report(f"no-op rerun ({name})", [timed(cmd) for _ in range(args.runs)], goal=0.1)
            if snapshot(dst) != before:
                raise SystemExit(f"no-op reruns wrote into {dst}")
        print("no-op reruns left every inode, size, mode, mtime and ctime as they were")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
