"""`srs-agent check-config FILE` as a real process: exit codes and `file:line:col: message`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

SRS_AGENT = str(Path(sys.executable).parent / "srs-agent")
FIXTURES = Path(__file__).parents[1] / "fixtures"


def check_config(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SRS_AGENT, "check-config", *args],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=cwd,
        check=False,
    )


@pytest.mark.parametrize(
    "path",
    [
        FIXTURES / "srs-6.0.155" / "conf" / "capture.conf",
        FIXTURES / "conf" / "edge.conf",
        FIXTURES / "conf" / "include-main.conf",
    ],
    ids=lambda p: p.name,
)
def test_valid_config_exits_0(path: Path) -> None:
    run = check_config(str(path))
    assert (run.returncode, run.stdout) == (0, "")
    assert f"{path}: ok" in run.stderr


def test_invalid_config_exits_1_with_positions(tmp_path: Path) -> None:
    bad = tmp_path / "srs.conf"
    bad.write_text(
        "listen 1935;\nfoo_unknown_directive on;\nvhost v {\n    hls { hls_fragmnet 2; }\n}\n"
    )
    run = check_config(str(bad))
    assert run.returncode == 1
    assert run.stdout.splitlines() == [
        f"{bad}:2:1: illegal directive foo_unknown_directive",
        f"{bad}:4:11: illegal vhost.hls.hls_fragmnet of v",
    ]
    assert "2 problem(s)" in run.stderr


def test_syntax_error_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "srs.conf"
    bad.write_text("listen 1935;\nvhost v {\n    hls {\n        hls_window 10\n    }\n}\n")
    run = check_config("srs.conf", cwd=tmp_path)
    assert run.returncode == 1
    assert run.stdout == "srs.conf:4:22: unexpected end of line to parse token hls_window\n"


def test_missing_include_is_a_problem_of_the_config(tmp_path: Path) -> None:
    main = tmp_path / "srs.conf"
    main.write_text("listen 1935;\ninclude vhosts.conf;\n")
    run = check_config(str(main))
    assert run.returncode == 1
    assert run.stdout.startswith(f"{main}:2:9: include vhosts.conf: no such file")


def test_missing_file_exits_2_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "nope.conf"
    run = check_config(str(missing))
    assert (run.returncode, run.stdout) == (2, "")
    assert run.stderr.strip() == f"srs-agent check-config: {missing}: no such config file"


def test_no_file_argument_is_a_usage_error() -> None:
    run = check_config()
    assert run.returncode == 2
    assert "FILE" in run.stderr
