"""The CLI's exit codes and error lines, called in-process through main(argv, environ)."""

from __future__ import annotations

import pytest

from agents import cli


def test_help_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--help"], {}) == 0
    out = capsys.readouterr().out
    for command in cli.ENTRYPOINTS:
        assert command in out


def test_each_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    for command in cli.ENTRYPOINTS:
        assert cli.main([command, "--help"], {}) == 0
        assert "--log-format" in capsys.readouterr().out


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["no-such-command"], {}) == 2
    assert "invalid choice" in capsys.readouterr().err


def test_bad_env_setting_exits_2_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["check-config", "x.conf"], {"SRS_AGENT_LOG_LEVEL": "loud"})
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "srs-agent check-config: SRS_AGENT_LOG_LEVEL: invalid value 'loud': "
        "expected one of debug, info, warning, error"
    ]


def test_every_entrypoint_resolves() -> None:
    for command in cli.ENTRYPOINTS:
        assert callable(cli.load(command))
