"""`make bench`: list the benchmarks; each prints its own figures when run."""

from __future__ import annotations

import sys
from pathlib import Path


def main() -> int:
    here = Path(__file__).resolve().parent
    names = sorted(p.stem for p in here.glob("bench_*.py"))
    print("Benchmarks (run each by hand; they print figures and take a while):")
    for name in names:
        print(f"  .venv/bin/python -m bench.{name} --help")
    return 0


if __name__ == "__main__":
    sys.exit(main())
