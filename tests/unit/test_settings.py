"""Settings: flag > env > default, and one-line errors naming the source."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from agents.errors import ConfigError
from agents.settings import (
    COMMANDS,
    CopyHtmlSettings,
    DrainSettings,
    InvalidValue,
    ReloadSettings,
    SidecarSettings,
    add_arguments,
    build,
    parse_duration,
    parse_listen,
    parse_percent,
    parse_source,
)


def _build(cls: type, argv: list[str], environ: dict[str, str]) -> object:
    parser = argparse.ArgumentParser()
    add_arguments(parser, cls)
    return build(cls, vars(parser.parse_args(argv)), environ)


def test_defaults_match_the_contract() -> None:
    s = _build(SidecarSettings, [], {})
    assert isinstance(s, SidecarSettings)
    assert s.srs_api == "http://127.0.0.1:1985"
    assert s.config_dir == "/usr/local/srs/conf"
    assert s.config_file == "srs.conf"
    assert s.listen == ("0.0.0.0", 9973)
    assert s.log_format == "json"
    assert s.max_streams == 1000


def test_flag_beats_env_beats_default() -> None:
    env = {"SRS_AGENT_SRS_API": "http://10.0.0.1:1985", "SRS_AGENT_LISTEN": "127.0.0.1:1"}
    s = _build(ReloadSettings, ["--listen", "127.0.0.1:9000"], env)
    assert isinstance(s, ReloadSettings)
    assert s.listen == ("127.0.0.1", 9000)  # flag wins
    assert s.srs_api == "http://10.0.0.1:1985"  # env wins over default
    assert s.reload_method == "signal"  # default


def test_bad_flag_names_flag_value_and_expectation() -> None:
    with pytest.raises(ConfigError) as err:
        _build(ReloadSettings, ["--listen", "nonsense"], {})
    msg = str(err.value)
    assert msg.startswith("--listen: invalid value 'nonsense'")
    assert "host:port" in msg
    assert "\n" not in msg


def test_bad_env_names_the_env_variable() -> None:
    with pytest.raises(ConfigError) as err:
        _build(DrainSettings, [], {"SRS_AGENT_DEADLINE": "soon"})
    assert str(err.value).startswith("SRS_AGENT_DEADLINE: invalid value 'soon'")


def test_public_name_for_python_keywords() -> None:
    s = _build(CopyHtmlSettings, ["--from", "/src"], {"SRS_AGENT_TO": "/dst"})
    assert isinstance(s, CopyHtmlSettings)
    assert (s.from_dir, s.to) == ("/src", "/dst")
    s = _build(CopyHtmlSettings, [], {"SRS_AGENT_FROM": "/env-src"})
    assert isinstance(s, CopyHtmlSettings)
    assert s.from_dir == "/env-src"


def test_bool_flag_forms() -> None:
    s = _build(ReloadSettings, ["--once"], {})
    assert isinstance(s, ReloadSettings) and s.once is True
    s = _build(ReloadSettings, ["--once", "false"], {"SRS_AGENT_ONCE": "true"})
    assert isinstance(s, ReloadSettings) and s.once is False
    with pytest.raises(ConfigError, match="--restart-on-unreloadable: invalid value 'maybe'"):
        _build(ReloadSettings, ["--restart-on-unreloadable", "maybe"], {})


def test_settings_are_frozen() -> None:
    s = _build(ReloadSettings, [], {})
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.listen = ("x", 1)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [("250ms", 0.25), ("30s", 30), ("5m", 300), ("3d", 259200), ("1h30m", 5400), ("2", 2)],
)
def test_durations(raw: str, seconds: float) -> None:
    assert parse_duration(raw) == pytest.approx(seconds)


@pytest.mark.parametrize("raw", ["", "3 days", "-1", "5x", "1h 30m"])
def test_bad_durations(raw: str) -> None:
    with pytest.raises(InvalidValue):
        parse_duration(raw)


def test_listen_forms() -> None:
    assert parse_listen(":9973") == ("0.0.0.0", 9973)
    assert parse_listen("[::1]:9973") == ("::1", 9973)
    with pytest.raises(InvalidValue):
        parse_listen("127.0.0.1:70000")


def test_source_and_percent() -> None:
    assert parse_source("configmap/srs-edge-config") == "configmap/srs-edge-config"
    with pytest.raises(InvalidValue):
        parse_source("configmap/Bad_Name")
    assert parse_percent("85%") == 85.0
    assert parse_percent("") == 0.0
    with pytest.raises(InvalidValue):
        parse_percent("120%")


def test_every_field_has_help_and_a_default_of_its_parsed_type() -> None:
    for command, (cls, summary) in COMMANDS.items():
        assert summary, command
        for f in dataclasses.fields(cls):
            assert f.metadata["help"].strip(), f"{command} {f.name}"
            if f.metadata.get("positional"):
                continue
            # the default must survive the same parser the user's value goes through
            assert f.default is not dataclasses.MISSING, f"{command} {f.name}"
