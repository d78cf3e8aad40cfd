"""`srs-agent reload`: watch SRS's config, gate it, reload SRS, verify, export the outcome.

One pipeline for both sources. Volume mode watches --config-dir (a mounted ConfigMap,
or any directory). API mode (`--source configmap/NAME`) follows the ConfigMap through
the Kubernetes API and writes it into --config-dir in the kubelet's atomic layout (an
emptyDir SRS mounts as its config dir); the watcher sees that write like any other.

For each change: read the config (and its includes) as SRS would, check it like
`srs -t`, hash it; then
- invalid: keep SRS on its last good config, log file:line:col, count it, Event;
- same content as SRS runs: nothing (counted "unchanged");
- a change SRS cannot reload (root `listen` crashes SRS 6, `daemon`, ...): report it
  and leave SRS alone, or with --restart-on-unreloadable drain SRS so Kubernetes starts
  it again on the new config;
- else SIGHUP (or the API's rpc=reload) and confirm through rpc=reload-fetch (a new
  `rid` with `err` 0), or, without the raw API, that SRS is still alive and answering.

What SRS runs at our start: the config on disk, if SRS started after its last change
(SRS read it at its own start); otherwise it runs an older version we cannot know, and
we reload once, after checking the new root `listen` ports are the ones SRS listens
on. SRS down: the newest config waits, SRS is probed with a capped backoff, and once
it answers it gets one reload if it still needs one (a restarted SRS read the file).

Fast path: while /proc shows the very SRS process we last confirmed a reload with,
running (not stopped), the SIGHUP goes out first and the reload id is read right after
(SRS applies a reload only at its next main-loop tick); any doubt takes the probe first.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import logging
import os
import signal
import time
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from agents import configdir
from agents.errors import ConfigError
from agents.kube.events import PodEvents, client_factory, has_api_access
from agents.reload_gate import (
    Action,
    Decision,
    decide,
    missing_listen_ports,
    srs_auto_reload,
    srs_runs_disk_config,
    unexpected_reload,
)
from agents.runtime import lifecycle
from agents.runtime.backoff import Backoff
from agents.runtime.logs import fields
from agents.runtime.ops import Health, OpsServer
from agents.settings import DrainSettings, ReloadSettings
from agents.srs import conf
from agents.srs.api import ReloadState, SrsApi, SrsApiError, SrsProtocolError, SrsUnavailable
from agents.srs.netstat import ProcNetError, read_connections
from agents.srs.process import (
    SrsProcessGone,
    SrsProcessNotFound,
    find_srs,
    pid_alive,
    signal_srs,
    wait_exit,
)
from agents.watch import Change, ChangeKind, ConfigDirWatcher

log = logging.getLogger("srs_agent.reload")

VERIFY_POLL = 0.05  # seconds between reload-fetch reads, only right after a reload
ALIVE_CHECK = 1.5  # without the raw API: SRS applies a reload on its next 1 s tick
SETTLE_RETRY = 0.05  # a read that fails right after a swap is retried once after this
SECOND_LOOK = 5.0  # after a reload: SRS's own inotify reload comes 3 s after the swap
RAW_API_OFF = (1060, 1061, 1062)  # SRS before 5.0, raw_api off, allow_reload off
STOPPED_STATES = ("T", "t", "Z", "X", "x")  # stopped, traced, zombie, dead


# ---------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------


class ReloadMetrics:
    """The reload agent's series (DESIGN.md §3), in the agent's own registry."""

    RESULTS = ("success", "failure", "invalid", "unchanged")

    def __init__(self, registry: CollectorRegistry) -> None:
        self.reloads = Counter(
            "srs_agent_reloads_total",
            "Config changes handled, by result: success (SRS reloaded and confirmed), "
            "failure (SRS refused, died or did not confirm), invalid (not sent to SRS), "
            "unchanged (SRS already runs that content).",
            ["result"], registry=registry,
        )
        for result in self.RESULTS:
            self.reloads.labels(result)
        self.duration = Histogram(
            "srs_agent_reload_duration_seconds",
            "From the reload request (signal or API) to SRS confirming it.",
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0),
            registry=registry,
        )
        self.last_success = Gauge(
            "srs_agent_last_reload_success_timestamp_seconds",
            "Unix time of the last confirmed reload.", registry=registry,
        )
        self.config_info = Gauge(
            "srs_agent_config_info",
            "The config SRS runs, by the sha256 of its files' contents (1 for that one).",
            ["sha256"], registry=registry,
        )
        self.change_to_reload = Histogram(
            "srs_agent_config_change_to_reload_seconds",
            "From the config change (the ..data swap, a file write or the API event) to "
            "SRS confirming the reload.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 5.0, 10.0, 30.0),
            registry=registry,
        )
        self.unreloadable = Gauge(
            "srs_agent_config_unreloadable",
            "1 for each directive whose change in the config file SRS cannot apply by reload "
            "(SRS stays on its old config until it restarts).",
            ["directive"], registry=registry,
        )
        self.unexpected = Counter(
            "srs_agent_unexpected_reloads_total",
            "Reloads of SRS this agent did not ask for (SRS's own inotify reload is on, or "
            "someone else reloads it).", registry=registry,
        )

    def set_running(self, sha: str) -> None:
        self.config_info.clear()
        self.config_info.labels(sha).set(1)

    def set_unreloadable(self, directives: tuple[str, ...]) -> None:
        self.unreloadable.clear()
        for directive in directives:
            self.unreloadable.labels(directive).set(1)


# ---------------------------------------------------------------------------
# /proc readers for the SRS process (shared PID namespace)
# ---------------------------------------------------------------------------


def process_stat(pid: int, proc_root: str = "/proc") -> tuple[str, int, float] | None:
    """(state letter, start in clock ticks after boot, start as unix time) of a process,
    from /proc/<pid>/stat (fields 3 and 22); None if it is gone or unreadable. The ticks
    identify one run of a process exactly (a pid can be reused); the unix time is good
    to 1/CLK_TCK."""
    try:
        with open(os.path.join(proc_root, str(pid), "stat"), "rb") as fh:
            raw = fh.read()
    except OSError:
        return None
    rest = raw[raw.rfind(b")") + 2 :].split()
    try:
        state, ticks = rest[0].decode(), int(rest[19])  # `rest` starts at field 3
    except (IndexError, ValueError):
        return None
    boot = time.time() - time.clock_gettime(time.CLOCK_BOOTTIME)
    return state, ticks, boot + ticks / os.sysconf("SC_CLK_TCK")


def process_environ(pid: int, proc_root: str = "/proc") -> dict[str, str] | None:
    """The process's environment, or None if we may not read it."""
    try:
        with open(os.path.join(proc_root, str(pid), "environ"), "rb") as fh:
            raw = fh.read()
    except OSError:
        return None
    env = {}
    for item in raw.split(b"\0"):
        key, sep, value = item.partition(b"=")
        if sep:
            env[key.decode(errors="replace")] = value.decode(errors="replace")
    return env


def process_cwd(pid: int, proc_root: str = "/proc") -> str | None:
    try:
        return os.readlink(os.path.join(proc_root, str(pid), "cwd"))
    except OSError:
        return None


def _read_text(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read()
    except OSError:
        return None


def root_listen_ports(config: conf.Config) -> list[int]:
    """Ports of the root `listen` (RTMP), default 1935."""
    listen = config.get("listen")
    endpoints = listen.args if listen is not None and listen.args else ["1935"]
    ports = []
    for endpoint in endpoints:
        text = endpoint.rpartition(":")[2]
        if text.isdigit():
            ports.append(int(text))
    return ports


def root_arg(config: conf.Config, name: str) -> str | None:
    directive = config.get(name)
    return None if directive is None else directive.arg0


# ---------------------------------------------------------------------------
# The pipeline
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    """The config on disk, read once."""

    config: conf.Config | None
    sha: str | None
    problems: tuple[str, ...]
    changed_at: float | None  # unix time of the last change on disk
    data_target: str | None


@dataclass
class SrsState:
    pid: int | None
    start_ticks: int | None  # with pid, identifies one run of SRS
    started_at: float | None  # unix time
    rid: str | None  # reload-fetch's rid now; None without the raw API
    answering: bool
    service: str | None = None  # without pid: the API's id of this run of SRS (5.0+)

    @property
    def identity(self) -> tuple[int | None, int | None, str | None]:
        """One run of SRS: pid and start ticks from /proc, else the API's service id."""
        return self.pid, self.start_ticks, self.service


class Outcome(enum.Enum):
    CONFIRMED = "confirmed"
    REJECTED = "rejected"
    DIED = "died"
    NO_ANSWER = "no-answer"


class Reloader:
    """The reload pipeline; `on_change` feeds it, `run` drives it."""

    def __init__(
        self,
        settings: ReloadSettings,
        metrics: ReloadMetrics,
        health: Health,
        events: PodEvents,
        api: SrsApi,
        *,
        proc_root: str = "/proc",
    ) -> None:
        self.s = settings
        self.metrics = metrics
        self.health = health
        self.events = events
        self.api = api
        self.proc_root = proc_root
        self.config_path = os.path.join(settings.config_dir, settings.config_file)
        self.loop = asyncio.get_running_loop()
        self.wake = asyncio.Event()
        self.wake.set()  # the first sync establishes what SRS runs
        self._debounce: asyncio.TimerHandle | None = None
        self._pending_since: float | None = None
        # ..<ts> written by the API source -> (when its API event was read, its config
        # as read and checked where SRS reads it): the pipeline need not read it again.
        self._source_reads: dict[str, tuple[float, conf.Config]] = {}
        self._read_target: str | None = None  # the ..<ts> of the last config read
        self.running: Candidate | None = None  # what SRS runs, when known
        self.srs_known: tuple[int | None, int | None, str | None] | None = None  # identity
        self.raw_api = True  # until SRS says otherwise
        self.expected_rid: str | None = None
        self._reported: tuple[object, ...] | None = None  # last invalid/unreloadable report
        self._rejected_sha: str | None = None  # content SRS refused: not sent again
        self._second_look: asyncio.Task[None] | None = None
        self._exit_watch: asyncio.Task[None] | None = None  # the known SRS's exit
        self._background: set[asyncio.Future[None]] = set()  # reports not awaited by anyone
        self._backoff = Backoff()  # while SRS does not answer
        self._retry = Backoff(first=1.0, cap=60.0)  # after a reload that did not work out
        self._doubt = True  # the next reload first probes SRS's API
        self._down_logged = False
        self._ready = False
        self.watcher: ConfigDirWatcher | None = None
        self._latest_config: conf.Config | None = None

    # -- inputs ---------------------------------------------------------------------

    def on_change(self, change: Change) -> None:
        """From the watcher, on the loop: a commit acts now, plain writes are debounced."""
        at = change.at
        if change.kind is ChangeKind.COMMIT:
            target = configdir.data_target(self.s.config_dir)
            if target is not None and target == self._read_target:
                return  # ..data swapped back to the version read last: nothing new
            if target is not None and target in self._source_reads:
                at = min(at, self._source_reads[target][0])
            self._mark(at)
            if self._debounce is not None:
                self._debounce.cancel()
                self._debounce = None
            self.wake.set()
            return
        self._mark(at)
        if self._debounce is not None:
            self._debounce.cancel()
        self._debounce = self.loop.call_later(self.s.debounce, self._debounced)

    def note_source_write(self, ts_name: str, received_at: float, config: conf.Config) -> None:
        """The API source published `ts_name` for an API event read at `received_at`,
        after reading and checking it (`config`) where SRS reads it."""
        self._source_reads[ts_name] = (received_at, config)
        while len(self._source_reads) > 16:
            self._source_reads.pop(next(iter(self._source_reads)))

    def _mark(self, at: float) -> None:
        if self._pending_since is None or at < self._pending_since:
            self._pending_since = at

    def _debounced(self) -> None:
        self._debounce = None
        self.wake.set()

    # -- the loop -------------------------------------------------------------------

    async def run(self) -> None:
        while True:
            await self.wake.wait()
            self.wake.clear()
            await self._sync()

    async def _sync(self) -> None:
        since, self._pending_since = self._pending_since, None
        if self._second_look is not None:
            self._second_look.cancel()
            self._second_look = None
        while True:
            cand = await self._read()
            if cand is None:
                return
            self._read_target = cand.data_target
            if cand.config is not None:
                self._latest_config = cand.config
                if self.watcher is not None:
                    self.watcher.watch_files(cand.config.files)
            if cand.problems:
                await self._report_invalid(cand)
                if self._ready:
                    return
                # SRS runs some older, valid version: ready once it answers.
                srs = await self._wait_for_srs()
                if srs is None:
                    since = self._earliest(since)
                    continue
                self._establish_baseline(srs, cand)
                self._set_ready()
                return
            srs = await self._wait_for_srs()
            if srs is None:  # a newer change came in while SRS was down: read again
                since = self._earliest(since)
                continue
            self._establish_baseline(srs, cand)
            decision = self._decide(cand)
            if since is not None or decision.action is not Action.UNCHANGED:
                log.debug("gate", extra=fields(action=decision.action.value,
                                               reason=decision.reason))
            done = await self._act(decision, cand, srs, since)
            self._set_ready()
            if done:
                self._retry.reset()
                return
            since = self._earliest(since)
            with contextlib.suppress(TimeoutError):  # a newer change may come meanwhile
                await asyncio.wait_for(self.wake.wait(), self._retry.next())
            since = self._earliest(since)

    def _earliest(self, since: float | None) -> float | None:
        pending, self._pending_since = self._pending_since, None
        self.wake.clear()
        if since is None:
            return pending
        return since if pending is None else min(since, pending)

    # -- reading the config ----------------------------------------------------------

    def report_source_invalid(self, problems: list[str], received_at: float) -> None:
        """API mode: a version refused before it reached SRS's config path."""
        cand = Candidate(config=None, sha=None, problems=tuple(problems),
                         changed_at=received_at, data_target=None)
        reporting = asyncio.ensure_future(self._report_invalid(cand))
        self._background.add(reporting)
        reporting.add_done_callback(self._background.discard)

    def srs_cwd(self) -> str:
        return self._cwd()

    def _cwd(self) -> str:
        """Where SRS resolves relative includes: its own cwd, else the config dir's parent
        (/usr/local/srs for /usr/local/srs/conf in the official image)."""
        if self.srs_known is not None and self.srs_known[0] is not None:
            cwd = process_cwd(self.srs_known[0], self.proc_root)
            if cwd:
                return cwd
        return os.path.dirname(os.path.abspath(self.s.config_dir))

    async def _read(self) -> Candidate | None:
        for attempt in range(2):
            cand = self._read_once()
            if cand is None:
                return None
            if not cand.problems or attempt or cand.data_target is None:
                return cand
            # The kubelet links new keys just after the swap: give it a moment, once.
            await asyncio.sleep(SETTLE_RETRY)
        return cand

    def _read_once(self, *, use_source_read: bool = True) -> Candidate | None:
        for _ in range(5):
            before = configdir.data_target(self.s.config_dir)
            if use_source_read and before is not None and before in self._source_reads:
                # Read and checked by the API source a moment ago; once only: a later
                # read (an include outside the volume changed) goes to the files.
                _, checked = self._source_reads.pop(before)
                return Candidate(
                    config=checked, sha=conf.content_sha256(checked), problems=(),
                    changed_at=configdir.change_time(self.s.config_dir, checked.files),
                    data_target=before,
                )
            problems: list[str] = []
            config: conf.Config | None = None
            try:
                config = conf.load(self.config_path, cwd=self._cwd(), beside=False)
            except conf.ConfigSyntaxError as exc:
                problems.append(str(exc.problem))
            except ConfigError as exc:
                if configdir.data_target(self.s.config_dir) != before:
                    continue
                self._log_once(("missing", str(exc)), logging.WARNING,
                               "config file cannot be read; waiting for it", file=str(exc))
                return None
            if configdir.data_target(self.s.config_dir) != before:
                continue  # swapped while we read: read the new version whole
            if config is not None:
                problems.extend(str(p) for p in conf.check(config))
            files = list(config.files) if config is not None else [self.config_path]
            return Candidate(
                config=config,
                sha=conf.content_sha256(config) if config is not None else None,
                problems=tuple(problems),
                changed_at=configdir.change_time(self.s.config_dir, files),
                data_target=before,
            )
        return None

    def _log_once(self, key: tuple[object, ...], level: int, msg: str, **extra: object) -> None:
        if self._reported != key:
            self._reported = key
            log.log(level, msg, extra=fields(**extra))

    async def _report_invalid(self, cand: Candidate) -> None:
        key = ("invalid", cand.problems, cand.changed_at)
        if self._reported == key:
            return
        self._reported = key
        self.metrics.reloads.labels("invalid").inc()
        for problem in cand.problems:
            log.error("config is invalid; SRS keeps its last good config: %s", problem,
                      extra=fields(problem=problem, file=self.config_path))
        await self.events.emit(
            "ConfigInvalid",
            "srs.conf not applied, SRS keeps its last good config: " + "; ".join(cand.problems),
        )

    # -- SRS ---------------------------------------------------------------------

    async def _probe(self) -> SrsState:
        """Find SRS and ask whether it answers; raises SrsUnavailable/SrsProcessNotFound
        while it is down."""
        pid = self.srs_known[0] if self.srs_known is not None else None
        if pid is None or not pid_alive(pid, self.proc_root):
            try:
                pid = find_srs(self.s.srs_process, self.proc_root)
            except SrsProcessNotFound:
                if self.s.reload_method == "signal":
                    raise
                pid = None
        stat = process_stat(pid, self.proc_root) if pid is not None else None
        rid: str | None = None
        service: str | None = None
        started_at: float | None = None
        answering = False
        try:
            if self.raw_api:
                try:
                    rid = (await self.api.reload_fetch()).rid
                    answering = True
                except SrsApiError as exc:
                    if exc.code not in RAW_API_OFF:
                        raise
                    self.raw_api = False
                    log.warning(
                        "SRS's raw API is off: reloads are confirmed by SRS staying up, not by "
                        "rpc=reload-fetch; set http_api { raw_api { enabled on; "
                        "allow_reload on; } } to confirm them", extra=fields(code=exc.code))
            if not answering or pid is None:
                version = await self.api.versions()
                answering = True
                if pid is None:  # /proc does not show SRS: the API tells its runs apart
                    service = version.service_id
            if pid is None and (self.srs_known is None or self.srs_known[2] != service):
                started_at = await self._started_by_uptime()
        except SrsUnavailable:
            if self._api_required():
                raise
        except (SrsApiError, SrsProtocolError) as exc:
            raise SrsUnavailable(self.s.srs_api, str(exc)) from None
        if stat is not None:
            started_at = stat[2]
        return SrsState(pid=pid, start_ticks=stat[1] if stat else None, started_at=started_at,
                        rid=rid, answering=answering, service=service)

    async def _started_by_uptime(self) -> float | None:
        """Without /proc: the earliest SRS can have started, from its whole-second uptime
        (a config change after that counts as not read by SRS: one reload too many at
        worst, never one too few)."""
        uptime = (await self.api.summaries()).process.srs_uptime
        return None if uptime is None else time.time() - uptime - 1.0

    def _api_required(self) -> bool:
        """SRS must answer its API before a reload unless its config turns the API off."""
        if self.s.reload_method == "api":
            return True
        config = self.running.config if self.running is not None else None
        config = config or self._latest_config
        if config is None:
            return True
        enabled = config.get("http_api", "enabled")
        return enabled is not None and enabled.arg0 == "on"

    def _known_good(self) -> SrsState | None:
        """The SRS we last talked to, if /proc shows it is still that process and running:
        then SIGHUP goes out without a round trip to its API first (the verification that
        follows asks the API anyway). Any doubt (first contact, a failure, SIGSTOP, a new
        process, no raw API) takes the full probe."""
        if self.s.reload_method != "signal" or not self.raw_api or self._doubt:
            return None
        if self.srs_known is None or self.srs_known[0] is None or self.expected_rid is None:
            return None
        pid, ticks, _ = self.srs_known
        if pid is None:
            return None
        stat = process_stat(pid, self.proc_root)
        if stat is None or stat[1] != ticks or stat[0] in STOPPED_STATES:
            return None
        return SrsState(pid=pid, start_ticks=ticks, started_at=stat[2], rid=None,
                        answering=True)

    async def _wait_for_srs(self) -> SrsState | None:
        """SRS, once it answers; None if a newer change arrived while waiting."""
        known = self._known_good()
        if known is not None:
            return known
        while True:
            try:
                srs = await self._probe()
            except (SrsUnavailable, SrsProcessNotFound, SrsProcessGone) as exc:
                delay = self._backoff.next()
                if not self._down_logged:
                    self._down_logged = True
                    log.warning("SRS is not answering; the config waits until it does",
                                extra=fields(reason=str(exc), retry_in=delay))
                else:
                    log.debug("SRS still down", extra=fields(reason=str(exc), retry_in=delay))
                self.health.set_ready("reload", False, "SRS not answering")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), delay)
                    return None
                continue
            if self._down_logged:
                log.info("SRS answers again", extra=fields(pid=srs.pid))
            self._down_logged = False
            self._doubt = False
            self._backoff.reset()
            return srs

    def _establish_baseline(self, srs: SrsState, cand: Candidate) -> None:
        """A new SRS process (or our first look at one): what does it run?"""
        identity = srs.identity
        if self.srs_known == identity:
            return
        first = self.srs_known is None
        self.srs_known = identity
        self.expected_rid = srs.rid
        self._follow_exit(srs.pid)
        if not first:
            log.info("SRS restarted; it read its config from disk at start",
                     extra=fields(pid=srs.pid))
        self._warn_auto_reload(srs, cand)
        if cand.problems:
            self.running = None
            log.warning("the config on disk is invalid: SRS runs an older version",
                        extra=fields(pid=srs.pid, file=self.config_path))
        elif srs_runs_disk_config(srs.started_at, cand.changed_at,
                                  1 / os.sysconf("SC_CLK_TCK")):
            self.running = cand
            self._running_changed()
            log.info("SRS runs the config on disk", extra=fields(
                pid=srs.pid, sha256=cand.sha, file=self.config_path))
        else:
            self.running = None
            log.info("the config changed after SRS started (or too close to its start to "
                     "tell): it may run an older version; reloading once",
                     extra=fields(pid=srs.pid, file=self.config_path))

    def _running_changed(self) -> None:
        assert self.running is not None and self.running.sha is not None
        self.metrics.set_running(self.running.sha)
        self.metrics.set_unreloadable(())
        self._rejected_sha = None

    def _warn_auto_reload(self, srs: SrsState, cand: Candidate) -> None:
        if cand.config is None:
            return
        names = ("inotify_auto_reload", "auto_reload_for_docker", "in_docker")
        directives = {n: v for n in names if (v := root_arg(cand.config, n)) is not None}
        env = process_environ(srs.pid, self.proc_root) if srs.pid is not None else None
        cgroup = _read_text(os.path.join(self.proc_root, "1", "cgroup"))
        verdict = srs_auto_reload(directives, env, cgroup)
        if verdict.on:
            log.warning(
                "SRS reloads by itself when its config changes (%s): it would apply invalid "
                "or crashing configs this agent holds back. Set inotify_auto_reload off; and "
                "auto_reload_for_docker off; in srs.conf (or SRS_AUTO_RELOAD_FOR_DOCKER=off)",
                verdict.reason, extra=fields(reason=verdict.reason, pid=srs.pid))

    # -- the gate and its actions ------------------------------------------------------

    def _decide(self, cand: Candidate) -> Decision:
        assert cand.config is not None
        running = self.running
        if running is not None and running.config is not None:
            unreloadable = conf.unreloadable_changes(running.config, cand.config)
        else:
            unreloadable = self._listen_check(cand.config)
        decision = decide(
            problems=cand.problems, new_sha=cand.sha,
            running_sha=running.sha if running is not None else None,
            unreloadable=unreloadable,
            restart_on_unreloadable=self.s.restart_on_unreloadable,
        )
        if decision.action is Action.RELOAD and cand.sha == self._rejected_sha:
            return Decision(Action.UNCHANGED, "SRS refused this content already")
        return decision

    def _listen_check(self, config: conf.Config) -> list[str]:
        """With the running config unknown: is the new root listen what SRS listens on?"""
        ports = root_listen_ports(config)
        try:
            listening = read_connections(ports, self.proc_root).listening
        except ProcNetError as exc:
            log.warning("cannot read listening ports to check root listen: %s", exc)
            return []
        missing = missing_listen_ports(ports, [p for p, n in listening.items() if n])
        return ["listen"] if missing else []

    async def _act(self, decision: Decision, cand: Candidate, srs: SrsState,
                   since: float | None) -> bool:
        """Carry the decision out; False if the pipeline must go round again."""
        if decision.action is Action.UNCHANGED:
            if since is not None:
                self.metrics.reloads.labels("unchanged").inc()
                log.info("config unchanged; no reload", extra=fields(sha256=cand.sha))
            if self.running is not None and self.running.sha == cand.sha:
                self.metrics.set_unreloadable(())
            return True
        if decision.action is Action.UNRELOADABLE:
            await self._report_unreloadable(decision, cand)
            return True
        if decision.action is Action.RESTART:
            await self._restart(decision, cand, srs)
            return False
        return await self._reload(cand, srs, since)

    async def _report_unreloadable(self, decision: Decision, cand: Candidate) -> None:
        self.metrics.set_unreloadable(decision.directives)
        key = ("unreloadable", cand.sha)
        if self._reported == key:
            return
        self._reported = key
        what = ", ".join(decision.directives)
        log.error(
            "config change not applied: SRS cannot reload a change of %s (SRS 6 crashes "
            "on a root listen change); SRS stays on its old config until it restarts", what,
            extra=fields(directives=list(decision.directives), sha256=cand.sha,
                         hint="restart SRS, or run with --restart-on-unreloadable"))
        await self.events.emit(
            "ConfigNotReloadable",
            f"srs.conf changes {what}, which SRS cannot reload; SRS keeps its old config "
            "until it restarts",
        )

    async def _restart(self, decision: Decision, cand: Candidate, srs: SrsState) -> None:
        what = ", ".join(decision.directives)
        log.warning("config changes %s, which SRS cannot reload: draining SRS so Kubernetes "
                    "restarts it on the new config", what,
                    extra=fields(directives=list(decision.directives), pid=srs.pid))
        self.metrics.set_unreloadable(decision.directives)
        await self.events.emit(
            "RestartingForConfig",
            f"srs.conf changes {what}, which SRS cannot reload: draining SRS so it restarts "
            "on the new config", event_type="Normal",
        )
        from agents.drain import run_drain  # noqa: PLC0415 - only this path needs it

        drain_settings = DrainSettings(**{
            f.name: getattr(self.s, f.name) for f in dataclasses.fields(DrainSettings)
            if hasattr(self.s, f.name)
        })
        await run_drain(drain_settings, asyncio.Event(), CollectorRegistry(), state_file="",
                        proc_root=self.proc_root)
        self.srs_known = None  # whatever comes next is a new SRS
        self._follow_exit(None)
        self._doubt = True

    async def _reload(self, cand: Candidate, srs: SrsState, since: float | None) -> bool:
        started = time.monotonic()
        before = srs.rid if self.raw_api else None
        if before is not None and unexpected_reload(self.expected_rid, before):
            self._unexpected(before)
        try:
            if self.s.reload_method == "signal":
                assert srs.pid is not None
                signal_srs(srs.pid, signal.SIGHUP)
            else:
                await self.api.reload()
        except (SrsProcessGone, SrsUnavailable) as exc:
            log.warning("SRS went away before the reload; trying again when it is back",
                        extra=fields(reason=str(exc)))
            self._doubt = True
            return False
        except SrsApiError as exc:
            self.metrics.reloads.labels("failure").inc()
            log.error("SRS refused the reload request: %s", exc, extra=fields(code=exc.code))
            await self.events.emit("ReloadFailed", f"SRS refused the reload request: {exc}")
            return True
        log.info("reload requested", extra=fields(
            method=self.s.reload_method, pid=srs.pid, sha256=cand.sha,
            since_change_ms=None if since is None else round((started - since) * 1000, 2)))
        ambiguous = False
        if before is None and self.raw_api:
            # Signalled without asking first: SRS applies a reload only at its next main
            # loop tick (up to 1 s), so the reload id read now is the one before ours.
            # If it is not the last one we saw, either someone else reloaded SRS since, or
            # SRS took our signal at once; _verify tells them apart.
            try:
                before = (await self.api.reload_fetch()).rid
            except (SrsUnavailable, SrsApiError, SrsProtocolError):
                before = self.expected_rid
            ambiguous = before != self.expected_rid
        outcome, detail = await self._verify(srs.pid, before, ambiguous)
        if outcome in (Outcome.DIED, Outcome.NO_ANSWER):
            self._doubt = True
        elapsed = time.monotonic() - started
        if outcome is Outcome.CONFIRMED:
            self.running = cand
            self._running_changed()
            self.metrics.reloads.labels("success").inc()
            self.metrics.duration.observe(elapsed)
            self.metrics.last_success.set(time.time())
            if since is not None:
                self.metrics.change_to_reload.observe(time.monotonic() - since)
            log.info("SRS reloaded", extra=fields(sha256=cand.sha, seconds=round(elapsed, 3),
                                                  rid=self.expected_rid))
            if self.raw_api:
                self._second_look = asyncio.ensure_future(self._look_again())
            return True
        self.metrics.reloads.labels("failure").inc()
        self.metrics.duration.observe(elapsed)
        if outcome is Outcome.REJECTED:
            # SRS reads the file when it applies the reload, up to a tick after the
            # signal: only if the disk still holds what we checked did SRS refuse that.
            # Else it read a newer version, which the gate judges next.
            on_disk = self._read_once(use_source_read=False)
            if on_disk is not None and on_disk.sha == cand.sha:
                self._rejected_sha = cand.sha
            log.error("SRS rejected the reload and keeps its old config: %s", detail,
                      extra=fields(sha256=cand.sha, rejected_content_on_disk=on_disk is not None
                                   and on_disk.sha == cand.sha))
            await self.events.emit("ReloadFailed", f"SRS rejected the reload: {detail}")
            return True
        if outcome is Outcome.DIED:
            log.error("SRS exited after the reload; it reads the config from disk when it "
                      "restarts", extra=fields(pid=srs.pid, sha256=cand.sha))
            await self.events.emit("ReloadFailed", "SRS exited after the reload")
            return False
        log.warning("SRS did not confirm the reload within --verify-timeout; trying again "
                    "when it answers", extra=fields(seconds=self.s.verify_timeout))
        return False

    async def _verify(
        self, pid: int | None, before: str | None, ambiguous: bool = False,
    ) -> tuple[Outcome, str]:
        """Wait for SRS to apply the reload: a reload id other than `before` (and err 0),
        or without the raw API, SRS still alive and answering after one main-loop tick.

        `ambiguous`: `before` is not the reload id we last saw. If no newer id shows up
        within one SRS tick, `before` was our reload, taken at once; if one does, `before`
        was someone else's.
        """
        deadline = time.monotonic() + self.s.verify_timeout
        if before is None:
            wait = min(ALIVE_CHECK, self.s.verify_timeout)
            if pid is not None:
                if await wait_exit(pid, wait):
                    return Outcome.DIED, ""
            else:
                await asyncio.sleep(wait)
            try:
                await self.api.versions()
            except SrsUnavailable as exc:
                if self._api_required():
                    return Outcome.NO_ANSWER, str(exc)
            except (SrsApiError, SrsProtocolError) as exc:
                return Outcome.NO_ANSWER, str(exc)
            return Outcome.CONFIRMED, ""
        settle = time.monotonic() + min(ALIVE_CHECK, self.s.verify_timeout)
        last: ReloadState | None = None
        while time.monotonic() < deadline:
            await asyncio.sleep(VERIFY_POLL)
            if pid is not None and not pid_alive(pid, self.proc_root):
                return Outcome.DIED, ""
            try:
                state = await self.api.reload_fetch()
            except (SrsUnavailable, SrsProtocolError):
                continue
            except SrsApiError as exc:
                return Outcome.NO_ANSWER, str(exc)
            if state.rid == before:
                last = state
                if ambiguous and time.monotonic() >= settle:
                    break  # nothing newer: `before` was ours
                continue
            if state.err == 0 and not state.succeeded:
                continue  # SRS is still applying it
            if ambiguous:
                self._unexpected(before)
            return self._judge(state)
        if ambiguous and last is not None:
            return self._judge(last)
        return Outcome.NO_ANSWER, "no new reload id"

    def _judge(self, state: ReloadState) -> tuple[Outcome, str]:
        self.expected_rid = state.rid
        if state.err != 0:
            return Outcome.REJECTED, f"code {state.err}: {state.msg}"
        return Outcome.CONFIRMED, ""

    async def _look_again(self) -> None:
        """One read of reload-fetch a while after our reload: a new rid is a reload we did
        not ask for (SRS's own inotify reload)."""
        await asyncio.sleep(SECOND_LOOK)
        with contextlib.suppress(SrsUnavailable, SrsApiError, SrsProtocolError):
            state = await self.api.reload_fetch()
            if unexpected_reload(self.expected_rid, state.rid):
                self._unexpected(state.rid)

    def _unexpected(self, rid: str) -> None:
        self.metrics.unexpected.inc()
        log.warning(
            "SRS was reloaded by someone else (reload id %s, ours %s): SRS's own inotify "
            "reload is probably on; turn it off (inotify_auto_reload off; "
            "auto_reload_for_docker off;) so only checked configs reach SRS",
            rid, self.expected_rid, extra=fields(rid=rid, expected_rid=self.expected_rid))
        self.expected_rid = rid

    def _follow_exit(self, pid: int | None) -> None:
        """Go round the pipeline when this SRS exits: a restarted SRS read the config on
        disk, and what it runs (the metrics saying so, an unreloadable change reported)
        need not wait for the next change. A pidfd: nothing polls; without pidfd_open
        (kernel < 5.3) the next change finds out."""
        if self._exit_watch is not None:
            self._exit_watch.cancel()
            self._exit_watch = None
        if pid is not None and hasattr(os, "pidfd_open"):
            self._exit_watch = asyncio.ensure_future(self._wait_exit_then_wake(pid))

    async def _wait_exit_then_wake(self, pid: int) -> None:
        try:
            pidfd = os.pidfd_open(pid)
        except ProcessLookupError:
            pidfd = -1  # gone already
        except OSError:
            return
        if pidfd >= 0:
            exited: asyncio.Future[None] = self.loop.create_future()

            def on_readable() -> None:
                if not exited.done():
                    exited.set_result(None)

            self.loop.add_reader(pidfd, on_readable)
            try:
                await exited
            finally:
                self.loop.remove_reader(pidfd)
                os.close(pidfd)
        log.info("SRS exited; its next run is checked when it answers", extra=fields(pid=pid))
        self._doubt = True
        self.wake.set()

    def close(self) -> None:
        if self._debounce is not None:
            self._debounce.cancel()
        if self._second_look is not None:
            self._second_look.cancel()
        if self._exit_watch is not None:
            self._exit_watch.cancel()

    def _set_ready(self) -> None:
        if not self._ready:
            self._ready = True
            log.info("first sync done", extra=fields(file=self.config_path))
        self.health.set_ready("reload", True)


# ---------------------------------------------------------------------------
# Wiring
# ---------------------------------------------------------------------------


def _configmap_name(settings: ReloadSettings) -> str | None:
    kind, _, name = settings.source.partition("/")
    return name if kind == "configmap" else None


def _events(settings: ReloadSettings) -> PodEvents:
    usable = bool(settings.pod_name) and (
        _configmap_name(settings) is not None or has_api_access()
    )
    return PodEvents(settings.pod_name, client_factory(settings.namespace) if usable else None)


def check_settings(settings: ReloadSettings) -> None:
    """ConfigError for settings the reload agent cannot run with (before binding ports)."""
    if not os.path.isdir(settings.config_dir) and _configmap_name(settings) is not None:
        raise ConfigError(f"--config-dir {settings.config_dir!r} is not a directory "
                          "(mount an emptyDir there for --source configmap/...)")
    if os.path.isabs(settings.config_file) or "/" in settings.config_file:
        raise ConfigError(f"--config-file {settings.config_file!r}: expected a file name "
                          "inside --config-dir")


async def run_reload(
    settings: ReloadSettings,
    stop: asyncio.Event,
    registry: CollectorRegistry,
    health: Health,
    *,
    proc_root: str = "/proc",
) -> int:
    """Run the reload agent until `stop`; its series go to `registry`, its state to
    `health` ("reload" is ready after the first sync)."""
    check_settings(settings)
    if settings.once:
        raise ConfigError("--once is for an init step; run `srs-agent reload --once` alone")
    metrics = ReloadMetrics(registry)
    health.expect("reload")
    events = _events(settings)
    async with SrsApi(settings.srs_api, settings.srs_timeout) as api:
        reloader = Reloader(settings, metrics, health, events, api, proc_root=proc_root)
        watcher = ConfigDirWatcher(settings.config_dir, settings.config_file,
                                   reloader.on_change)
        reloader.watcher = watcher
        watcher.start()
        log.info("watching config", extra=fields(
            dir=settings.config_dir, file=settings.config_file, source=settings.source,
            method=settings.reload_method))
        tasks: list[asyncio.Task[object]] = []
        try:
            pipeline: asyncio.Task[object] = asyncio.ensure_future(reloader.run())
            health.watch("reload", pipeline)
            tasks.append(pipeline)
            name = _configmap_name(settings)
            if name is not None:
                tasks.append(_start_source(settings, name, reloader, stop, health))
            await lifecycle.wait_first(stop, *tasks)
        finally:
            watcher.close()
            reloader.close()
    return 0


def _start_source(
    settings: ReloadSettings, name: str, reloader: Reloader, stop: asyncio.Event,
    health: Health,
) -> asyncio.Task[object]:
    from agents.kube.configmap_source import ConfigMapSource, ConfigMapVersion  # noqa: PLC0415

    writer = configdir.AtomicDir(settings.config_dir)
    state = {"deleted": False}
    pending: set[asyncio.Future[None]] = set()
    # The version refused last: the same data again (a relist after 410 Gone, a watch
    # that starts over) is not a new problem, nor a reason to swap ..data back and forth.
    refused: list[dict[str, bytes]] = []

    def refuse(data: dict[str, bytes], problems: list[str], received_at: float) -> None:
        refused[:] = [data]
        reloader.report_source_invalid(problems, received_at)

    def on_version(version: ConfigMapVersion) -> None:
        where = f"ConfigMap {source.namespace}/{name}"
        if refused and refused[0] == version.data:
            return
        refused.clear()
        if version.data is None:
            if not state["deleted"]:
                state["deleted"] = True
                log.warning("ConfigMap deleted (or not created yet); SRS keeps the config it "
                            "has, the files stay", extra=fields(configmap=where))
                emitting = asyncio.ensure_future(reloader.events.emit(
                    "ConfigMapDeleted", f"{where} is gone; SRS keeps its last config"))
                pending.add(emitting)
                emitting.add_done_callback(pending.discard)
            return
        state["deleted"] = False
        if settings.config_file not in version.data:
            keys = ", ".join(sorted(version.data)) or "none"
            refuse(version.data, [f"{where} has no key {settings.config_file} (keys: {keys}); "
                                  "nothing written"], version.received_at)
            return
        try:
            publication = writer.publish(version.data)
        except (ConfigError, OSError) as exc:
            log.error("cannot write the ConfigMap into the config directory: %s", exc,
                      extra=fields(configmap=where, dir=settings.config_dir))
            return
        if publication is None:
            return
        # Check the version where SRS will read it (includes resolve as SRS resolves them)
        # and take it back at once if SRS could not run it: in API mode an invalid version
        # never stays on SRS's config path, so even an SRS restart meanwhile starts on the
        # last good config. All of this runs in one callback: when the watcher reads the
        # two swaps, ..data is back on the version the pipeline read last (ignored).
        path = os.path.join(settings.config_dir, settings.config_file)
        config: conf.Config | None = None
        try:
            config = conf.load(path, cwd=reloader.srs_cwd(), beside=False)
            problems = [str(p) for p in conf.check(config)]
        except conf.ConfigSyntaxError as exc:
            problems = [str(exc.problem)]
        except ConfigError as exc:
            problems = [str(exc)]
        if problems or config is None:
            writer.undo(publication)
            refuse(version.data, problems, version.received_at)
            return
        writer.finish(publication)
        reloader.note_source_write(publication.new, version.received_at, config)
        log.info("ConfigMap written", extra=fields(
            configmap=where, resource_version=version.resource_version, dir=publication.new))

    source = ConfigMapSource(name, settings.namespace, on_version)
    task: asyncio.Task[object] = asyncio.ensure_future(source.run(stop))
    health.watch("configmap-watch", task)
    return task


def run_once(settings: ReloadSettings) -> int:
    """`--once`: write the ConfigMap into --config-dir if its config is valid; else exit 1
    with every problem as file:line:col, and leave the directory as it was.

    The check runs on the written directory, so includes resolve exactly as SRS will
    resolve them (beside the file, from SRS's working directory, or absolute); an
    invalid version is taken back before anything else can read it (SRS is not
    running yet during the init step).
    """
    name = _configmap_name(settings)
    if name is None:
        raise ConfigError("--once needs --source configmap/NAME (it writes the ConfigMap "
                          "into --config-dir before SRS starts)")
    check_settings(settings)
    from agents.kube.configmap_source import ConfigMapSource  # noqa: PLC0415

    version = ConfigMapSource(name, settings.namespace, lambda _: None).read_once()
    assert version.data is not None
    if settings.config_file not in version.data:
        raise ConfigError(f"ConfigMap {name} has no key {settings.config_file!r} "
                          f"(keys: {', '.join(sorted(version.data)) or 'none'})")
    writer = configdir.AtomicDir(settings.config_dir)
    publication = writer.publish(version.data)
    path = os.path.join(settings.config_dir, settings.config_file)
    cwd = os.path.dirname(os.path.abspath(settings.config_dir))
    try:
        problems = [str(p) for p in conf.validate_file(path, cwd=cwd, beside=False)]
    except ConfigError as exc:
        problems = [str(exc)]
    if problems:
        if publication is not None:
            writer.undo(publication)
        for problem in problems:
            print(problem)
        log.error("ConfigMap %s is invalid; nothing written", name,
                  extra=fields(problems=len(problems), configmap=name))
        return 1
    if publication is not None:
        writer.finish(publication)
    log.info("ConfigMap written" if publication else "config directory already up to date",
             extra=fields(configmap=name, dir=settings.config_dir,
                          version=publication.new if publication else None))
    return 0


def command(settings: ReloadSettings) -> int:
    """`srs-agent reload`: runs until SIGTERM (0); `--once` writes and exits."""
    if settings.once:
        return run_once(settings)
    check_settings(settings)

    async def main(stop: asyncio.Event) -> int:
        registry = CollectorRegistry()
        health = Health()
        server = OpsServer(settings.listen, [registry], health)
        await server.start()
        try:
            return await run_reload(settings, stop, registry, health)
        finally:
            await server.stop()
            log.info("stopped")

    return lifecycle.run(main)

