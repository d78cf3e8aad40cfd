"""The reload gate's pure decisions: what to do with a config, what SRS runs, backoff."""

from __future__ import annotations

from agents.reload_gate import (
    Action,
    decide,
    missing_listen_ports,
    srs_auto_reload,
    srs_runs_disk_config,
    unexpected_reload,
)
from agents.runtime.backoff import Backoff


def _decide(**kw: object) -> Action:
    args: dict[str, object] = {
        "problems": (), "new_sha": "b", "running_sha": "a", "unreloadable": (),
        "restart_on_unreloadable": False,
    }
    args.update(kw)
    return decide(**args).action  # type: ignore[arg-type]


def test_invalid_wins_over_everything() -> None:
    decision = decide(problems=["srs.conf:3:1: bad"], new_sha=None, running_sha="a",
                      unreloadable=["listen"], restart_on_unreloadable=True)
    assert decision.action is Action.INVALID
    assert decision.problems == ("srs.conf:3:1: bad",)


def test_same_content_is_unchanged_even_with_unreloadable_names() -> None:
    assert _decide(new_sha="a", running_sha="a") is Action.UNCHANGED


def test_changed_content_reloads() -> None:
    assert _decide() is Action.RELOAD
    assert _decide(running_sha=None) is Action.RELOAD  # SRS runs something unknown


def test_unreloadable_is_reported_or_restarted_and_names_directives() -> None:
    decision = decide(problems=(), new_sha="b", running_sha="a",
                      unreloadable=["listen", "daemon", "listen"],
                      restart_on_unreloadable=False)
    assert decision.action is Action.UNRELOADABLE
    assert decision.directives == ("daemon", "listen")
    assert "listen" in decision.reason
    assert _decide(unreloadable=["listen"], restart_on_unreloadable=True) is Action.RESTART


def test_srs_runs_disk_config_when_it_started_after_the_change() -> None:
    assert srs_runs_disk_config(srs_started_at=100.0, config_changed_at=99.0)
    assert srs_runs_disk_config(srs_started_at=100.0, config_changed_at=100.0)
    # the start time is rounded down to a clock tick: a change within it was read
    assert srs_runs_disk_config(srs_started_at=100.0, config_changed_at=100.009)
    assert not srs_runs_disk_config(srs_started_at=100.0, config_changed_at=100.011)
    assert not srs_runs_disk_config(srs_started_at=100.0, config_changed_at=100.5)
    assert srs_runs_disk_config(None, 5.0)  # unknown start: nothing says otherwise
    assert srs_runs_disk_config(5.0, None)


def test_unexpected_reload() -> None:
    assert not unexpected_reload(None, "r1")
    assert not unexpected_reload("r1", "r1")
    assert unexpected_reload("r1", "r2")


def test_srs_auto_reload_official_image() -> None:
    # The official image sets SRS_IN_DOCKER=on; auto_reload_for_docker defaults to on.
    verdict = srs_auto_reload({}, {"SRS_IN_DOCKER": "on"}, None)
    assert verdict.on
    assert "SRS_IN_DOCKER=on" in verdict.reason


def test_srs_auto_reload_turned_off_by_directive_or_env() -> None:
    assert not srs_auto_reload({"auto_reload_for_docker": "off"}, {"SRS_IN_DOCKER": "on"},
                               None).on
    assert not srs_auto_reload({}, {"SRS_IN_DOCKER": "on", "SRS_AUTO_RELOAD_FOR_DOCKER": "off"},
                               None).on
    # env wins over the directive
    assert srs_auto_reload({"auto_reload_for_docker": "off"},
                           {"SRS_IN_DOCKER": "on", "SRS_AUTO_RELOAD_FOR_DOCKER": "on"},
                           None).on


def test_srs_auto_reload_inotify_directive_and_docker_detection() -> None:
    assert srs_auto_reload({"inotify_auto_reload": "on"}, None, None).on
    assert not srs_auto_reload({"inotify_auto_reload": "off"}, {}, None).on
    assert not srs_auto_reload({}, {}, "0::/kubepods/burstable/pod1/abc").on
    assert srs_auto_reload({}, {}, "12:pids:/docker/0123abcd").on
    assert srs_auto_reload({"in_docker": "on"}, None, None).on
    # SRS_CONF_PREFER_FALSE: only "on" turns inotify_auto_reload on
    assert not srs_auto_reload({"inotify_auto_reload": "yes"}, None, None).on


def test_backoff_doubles_to_a_cap_and_resets() -> None:
    backoff = Backoff(first=0.2, cap=5.0)
    delays = [backoff.next() for _ in range(7)]
    assert delays == [0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0]
    backoff.reset()
    assert backoff.next() == 0.2


def test_missing_listen_ports() -> None:
    assert missing_listen_ports([1935], [1935, 1985]) == []
    assert missing_listen_ports([1936, 1935, 1936], [1935]) == [1936]
