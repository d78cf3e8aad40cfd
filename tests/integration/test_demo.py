"""`make demo` keeps working: run it straight through in a temp sandbox."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def test_demo_runs_through(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tests.standin.demo", "--no-wait", "--sandbox",
         str(tmp_path / "sandbox")],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    for expected in (
        "copy-html",                          # init container seeded the volume
        ": ok",                               # check-config accepted the config
        "srs_up 1.0",                         # exporter reads SRS
        'srs_agent_reloads_total{result="success"} 1.0',  # valid edit reloaded, verified
        "config is invalid; SRS keeps its last good config",   # broken edit gated
        "SRS cannot reload a change of listen",                # listen change gated
        "deleted 4 files",                    # cleanup of a crash's leftovers
        "drain exit code 0; SRS exit code 0",  # graceful quit drained
        "sidecar exit code 0",
    ):
        assert expected in out, f"{expected!r} missing from the demo's output:\n{out}"
    left = sorted(p.name for p in (tmp_path / "sandbox" / "html" / "live").iterdir())
    assert "old.1795718081416.flv" in left  # a finished DVR file is never cleaned
    assert not [name for name in left if name.startswith("old-")]
