"""A drain exec'd beside a running agent writes its log lines into that agent's stdout
(the container log), because the kubelet throws a successful hook's output away."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

AGENT = str(Path(sys.executable).with_name("srs-agent"))

FAKE_SIDECAR = """
import sys, time
print("sidecar ready", flush=True)
time.sleep(60)
"""


def test_drain_logs_reach_the_container_main_process(tmp_path: Path) -> None:
    script = tmp_path / "srs-agent"  # argv[1] is .../srs-agent, argv[2] is "sidecar"
    script.write_text(FAKE_SIDECAR)
    sidecar = subprocess.Popen(
        [sys.executable, str(script), "sidecar"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert sidecar.stdout is not None
        assert sidecar.stdout.readline().strip() == "sidecar ready"
        drain = subprocess.run(
            [AGENT, "drain", "--srs-process", "^no-such-srs-process$", "--grace-period", "10",
             "--done-file", str(tmp_path / "drained")],
            check=False, capture_output=True, text=True, timeout=30,
        )
        assert drain.returncode == 0, drain.stderr
    finally:
        sidecar.kill()
        out, _ = sidecar.communicate(timeout=10)
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    ended = [line for line in lines if line.get("outcome") == "srs_not_found"]
    assert ended and ended[0]["agent"] == "drain"
    # the same lines still go to the hook's own stderr
    assert "srs_not_found" in drain.stderr
    assert (tmp_path / "drained").read_text() == "srs_not_found\n"
