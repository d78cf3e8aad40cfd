"""Pure decisions of the reload agent: plain values in, a decision out; no I/O.

- `decide`: what to do with the config now on disk (reload, nothing, refuse, restart).
- `srs_runs_disk_config`: whether SRS read the config on disk itself (it started later).
- `srs_auto_reload`: whether SRS will also reload by itself on inotify (double reloads).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass


class Action(enum.Enum):
    RELOAD = "reload"  # tell SRS to reload, then verify
    UNCHANGED = "unchanged"  # SRS already runs this content
    INVALID = "invalid"  # the config does not parse or check: keep the last good one
    UNRELOADABLE = "unreloadable"  # valid, but SRS cannot apply it by reload: report only
    RESTART = "restart"  # valid and not reloadable; --restart-on-unreloadable is set


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str
    problems: tuple[str, ...] = ()  # "file:line:col: message", for INVALID
    directives: tuple[str, ...] = ()  # unreloadable directives, for UNRELOADABLE/RESTART


def decide(
    *,
    problems: Sequence[str],
    new_sha: str | None,
    running_sha: str | None,
    unreloadable: Sequence[str],
    restart_on_unreloadable: bool,
) -> Decision:
    """The gate between a config on disk and SRS.

    `problems` are parse/check errors of the new config; `running_sha` is the content
    SRS runs (None if unknown); `unreloadable` names the directives whose change SRS
    cannot apply by reload (root `listen`, `daemon`, ...), against the running config.
    """
    if problems:
        return Decision(Action.INVALID, f"{len(problems)} problem(s)", problems=tuple(problems))
    if new_sha is not None and new_sha == running_sha:
        return Decision(Action.UNCHANGED, "SRS already runs this content")
    if unreloadable:
        names = tuple(sorted(set(unreloadable)))
        what = ", ".join(names)
        if restart_on_unreloadable:
            return Decision(Action.RESTART, f"changed directives need a restart: {what}",
                            directives=names)
        return Decision(Action.UNRELOADABLE, f"changed directives need a restart: {what}",
                        directives=names)
    return Decision(Action.RELOAD, "content changed")


def srs_runs_disk_config(
    srs_started_at: float | None, config_changed_at: float | None, resolution: float = 0.01,
) -> bool:
    """Whether SRS read the config on disk at its own start.

    True when SRS started after the last change on disk (or nothing tells otherwise);
    False when the config changed after SRS started: SRS runs an older version. The
    kernel keeps a start time in clock ticks (`resolution`, 10 ms), rounded down, so a
    change within that tick counts as read: SRS reads its config after it starts.
    """
    if srs_started_at is None or config_changed_at is None:
        return True
    return config_changed_at < srs_started_at + resolution


def unexpected_reload(expected_rid: str | None, seen_rid: str) -> bool:
    """A reload id we did not cause: someone else (SRS's own inotify) reloaded SRS."""
    return expected_rid is not None and seen_rid != expected_rid


# ---------------------------------------------------------------------------
# SRS's own inotify reload (srs_app_server.cpp, SrsInotifyWorker; srs_app_config.cpp)
# ---------------------------------------------------------------------------

ENV_INOTIFY = "SRS_INOTIFY_AUTO_RELOAD"
ENV_DOCKER_RELOAD = "SRS_AUTO_RELOAD_FOR_DOCKER"
ENV_IN_DOCKER = "SRS_IN_DOCKER"


@dataclass(frozen=True)
class AutoReload:
    on: bool
    reason: str


def _prefer_false(value: str) -> bool:
    """SRS_CONF_PREFER_FALSE: only 'on' is true."""
    return value == "on"


def _prefer_true(value: str) -> bool:
    """SRS_CONF_PREFER_TRUE: anything but 'off' is true."""
    return value != "off"


def srs_auto_reload(
    directives: Mapping[str, str],
    env: Mapping[str, str] | None,
    cgroup_of_pid1: str | None,
) -> AutoReload:
    """Whether SRS reloads by itself when its config directory changes.

    SRS watches its config directory when `inotify_auto_reload` is on, or when it is in
    docker and `auto_reload_for_docker` is on (the default). It is in docker with
    `in_docker on`, or when /proc/1/cgroup names docker. A set env variable wins over
    the directive. `directives` maps root directive names to their first argument;
    `env` is SRS's environment (None if unreadable).
    """
    env = env or {}

    def value(directive: str, env_name: str, default: str) -> tuple[str, str]:
        if env.get(env_name):
            return env[env_name], f"env {env_name}={env[env_name]}"
        if directive in directives:
            return directives[directive], f"{directive} {directives[directive]}"
        return default, f"{directive} (default {default})"

    inotify, inotify_why = value("inotify_auto_reload", ENV_INOTIFY, "off")
    if _prefer_false(inotify):
        return AutoReload(True, inotify_why)
    docker_reload, docker_reload_why = value("auto_reload_for_docker", ENV_DOCKER_RELOAD, "on")
    if not _prefer_true(docker_reload):
        return AutoReload(False, f"{inotify_why}, {docker_reload_why}")
    in_docker, in_docker_why = value("in_docker", ENV_IN_DOCKER, "off")
    if _prefer_false(in_docker):
        return AutoReload(True, f"{docker_reload_why} and {in_docker_why}")
    if cgroup_of_pid1 is not None and "/docker" in cgroup_of_pid1:
        return AutoReload(True, f"{docker_reload_why} and /proc/1/cgroup names docker")
    return AutoReload(False, f"{inotify_why}, not in docker")


def missing_listen_ports(wanted: Iterable[int], listening: Iterable[int]) -> list[int]:
    """Ports of the new root `listen` that nothing listens on: with an unknown running
    config, the sign that the change of `listen` is a real one."""
    have = set(listening)
    return sorted({port for port in wanted if port not in have})
