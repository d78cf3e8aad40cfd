"""`srs-agent drain`: the preStop graceful quit of SRS, bounded by the pod's grace period.

`etc/init.d/srs grace` only sends SIGQUIT and returns: SRS then closes every listener,
its API included, and waits with no upper bound for its connections to end, so the
kubelet's SIGKILL at the end of the grace period cuts it short. This command:

1. waits --pre-stop-delay (endpoint removal spreads), checking SRS is still there;
2. with --migrate-rate, kicks players (never publishers) through the API at that rate;
3. records the connections on SRS's ports and sends SIGQUIT;
4. follows the drain without the API: process exit through a pidfd (wakes at once, no
   polling), connections from /proc/net/tcp* on a --progress-interval timer;
5. at the soft deadline sends SIGINT (SRS stops waiting, finalizes, exits 0) and waits
   for the exit until just before the grace period ends;
6. in every outcome writes --done-file, which the SRS container's preStop waits for.

Its figures go to a JSON state file beside the done-file; the sidecar, still running
during the drain, exports them (`drain_metrics_from_state`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import logging
import os
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from prometheus_client import CollectorRegistry
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from agents.drain_plan import (
    DEFAULT_FINAL_WAIT,
    EXIT_CODES,
    DrainState,
    DrainTimes,
    Outcome,
    StateFormatError,
    carry_over,
    linger_budget,
    metric_families,
    migration_fits,
    migration_targets,
    next_kick_at,
    plan_times,
    plan_warnings,
    progress_fields,
    state_from_json,
)
from agents.errors import ConfigError
from agents.runtime import lifecycle
from agents.runtime.logs import fields
from agents.settings import DrainSettings, env_name
from agents.srs import conf
from agents.srs.netstat import ProcNetError, read_connections
from agents.srs.process import SrsProcessGone, SrsProcessNotFound, find_srs, signal_srs, wait_exit

log = logging.getLogger("srs_agent.drain")

STATE_FILE_NAME = "drain.json"
"""The state file's name, in the directory of --done-file."""

CLIENT_NOT_FOUND = 2049  # SRS's code when a client to kick has already gone


def command(settings: DrainSettings) -> int:
    """`srs-agent drain`: 0 drained (or nothing to drain), 1 deadline hit, 2 bad settings."""
    mirror = mirror_logs_to_container_log()

    async def main(stop: asyncio.Event) -> int:
        # The kubelet's clock for the hook started before this interpreter did: count
        # the deadlines from our process's start, not from here.
        return await run_drain(settings, stop, CollectorRegistry(),
                               started_ago=process_age())

    try:
        return lifecycle.run(main)
    finally:
        if mirror is not None:
            logging.getLogger().removeHandler(mirror)
            mirror.close()
            mirror.stream.close()
        # The process ends next. Without this, the interpreter's final garbage collection
        # adds ~50-100 ms between SRS's exit and ours, which the kubelet waits out before
        # it stops the sidecar; frozen objects are simply freed with the process.
        gc.freeze()


def release_after_bad_settings(
    args: Mapping[str, Any], environ: Mapping[str, str]
) -> str | None:
    """When drain's settings do not parse, still write the done-file (from the raw
    --done-file flag, or its env twin) and count a `failed` drain in the state file.

    SRS's preStop waits for that file: without it a typo in one drain setting would
    hold every pod deletion for the whole grace period and end in the kubelet's
    SIGKILL of SRS. Returns a problem to report, or None.
    """
    done_field = next(f for f in dataclasses.fields(DrainSettings) if f.name == "done_file")
    done = args.get(done_field.name)
    if done is None:
        done = environ.get(env_name(done_field), "")
    if not done:
        return None
    try:
        write_atomically(done, f"{Outcome.FAILED.value}\n")
    except OSError as exc:
        return (f"cannot write --done-file {done}: {exc}; SRS's preStop will wait until the "
                "end of the grace period")
    state_file = os.path.join(os.path.dirname(done) or ".", STATE_FILE_NAME)
    outcomes, kicked_total = carry_over(read_state_file(state_file))
    outcomes[Outcome.FAILED.value] = outcomes.get(Outcome.FAILED.value, 0) + 1
    now = time.time()
    state = DrainState(phase="done", started_at=now, updated_at=now,
                       outcome=Outcome.FAILED.value, outcomes=outcomes,
                       kicked_total=kicked_total)
    try:
        write_atomically(state_file, state.to_json())
    except OSError as exc:
        return f"cannot write the drain state file {state_file}: {exc}"
    return None


def process_age(proc_root: str = "/proc") -> float:
    """Seconds since this process started (its start-up included); 0 if unknown."""
    try:
        stat = Path(proc_root, "self", "stat").read_bytes()
        start_ticks = int(stat[stat.rfind(b")") + 2 :].split()[19])
        now = time.clock_gettime(time.CLOCK_BOOTTIME)
    except (OSError, ValueError, IndexError):
        return 0.0
    age = now - start_ticks / os.sysconf("SC_CLK_TCK")
    return age if 0.0 <= age < 3600.0 else 0.0


def default_state_file(settings: DrainSettings) -> str:
    """drain.json beside --done-file (the shared /run/srs-agents), or none without it."""
    if not settings.done_file:
        return ""
    return os.path.join(os.path.dirname(settings.done_file) or ".", STATE_FILE_NAME)


async def run_drain(
    settings: DrainSettings,
    stop: asyncio.Event,
    registry: CollectorRegistry,
    *,
    state_file: str | None = None,
    proc_root: str = "/proc",
    started_ago: float = 0.0,
) -> int:
    """Drain SRS once; the exit code of `drain` (0 drained or nothing to drain, 1 deadline).

    `stop` (SIGTERM) does not cut the drain short: it is bounded anyway, and leaving
    early would hand SRS to the kubelet's SIGKILL. `registry` carries the figures while
    the drain runs; the state file (default: beside --done-file) keeps them after.
    `started_ago`: how long before this call the drain's clock started (the process's
    start-up, for the command). Raises ConfigError (after writing the done-file) when
    the settings cannot work.
    """
    drain = _Drain(
        settings, stop,
        default_state_file(settings) if state_file is None else state_file,
        proc_root,
        started_ago,
    )
    collector = DrainCollector(lambda: drain.state)
    registry.register(collector)
    try:
        return await drain.run()
    finally:
        registry.unregister(collector)


class _Drain:
    def __init__(
        self, settings: DrainSettings, stop: asyncio.Event, state_file: str, proc_root: str,
        started_ago: float,
    ) -> None:
        self.settings = settings
        self.stop = stop
        self.state_file = state_file
        self.proc_root = proc_root
        self.state = DrainState(pod=settings.pod_name)
        self.loop = asyncio.get_running_loop()
        self.t0 = self.loop.time() - max(0.0, started_ago)
        self.times: DrainTimes | None = None
        self.ports: tuple[int, ...] = ()
        self._netstat_failed = False

    # -- clock and records --------------------------------------------------------

    def elapsed(self) -> float:
        return self.loop.time() - self.t0

    def _phase(self, phase: str) -> None:
        self.state.phase = phase
        self._save_state()

    def _save_state(self) -> None:
        self.state.updated_at = time.time()
        self.state.duration_seconds = round(self.elapsed(), 3)
        if self.state_file:
            try:
                write_atomically(self.state_file, self.state.to_json())
            except OSError as exc:
                log.warning("cannot write the drain state file %s: %s", self.state_file, exc,
                            extra=fields(file=self.state_file, error=str(exc)))

    # -- the run ------------------------------------------------------------------

    async def run(self) -> int:
        self.state.started_at = time.time()
        outcomes, kicked_total = carry_over(read_state_file(self.state_file))
        self.state.outcomes, self.state.kicked_total = outcomes, kicked_total
        watcher = asyncio.ensure_future(self._report_stop())
        outcome = Outcome.FAILED
        try:
            self._remove_stale_done_file()
            self._save_state()
            outcome = await self._drain()
            return EXIT_CODES[outcome]
        finally:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
            self._finish(outcome)

    async def _report_stop(self) -> None:
        await self.stop.wait()
        left = (self.times.hard - self.elapsed()) if self.times else 0.0
        log.warning(
            "asked to stop during the drain: carrying on, it ends by itself within %.1fs "
            "(leaving now would leave SRS to the kubelet's SIGKILL)", max(0.0, left),
            extra=fields(seconds_left=round(max(0.0, left), 1)),
        )

    async def _drain(self) -> Outcome:
        s = self.settings
        self.times = times = plan_times(s.deadline, s.grace_period, s.deadline_margin,
                                        s.pre_stop_delay)
        self.state.grace_ends_at = time.time() - self.elapsed() + s.grace_period
        try:
            pid = find_srs(s.srs_process, self.proc_root)
        except SrsProcessNotFound as exc:
            log.error("%s; nothing to drain, exiting 0 so the pod can stop", exc,
                      extra=fields(pattern=s.srs_process))
            return Outcome.SRS_NOT_FOUND
        self.state.srs_pid = pid
        self.ports, final_wait = self._read_config()
        for warning in plan_warnings(times, final_wait):
            log.warning(warning)
        log.info(
            "drain started: SRS pid %d, quit in %gs, soft deadline in %gs, grace period %gs",
            pid, times.quit_at, times.soft, s.grace_period,
            extra=fields(pid=pid, ports=list(self.ports), pre_stop_delay=s.pre_stop_delay,
                         deadline=times.soft, grace_period=s.grace_period,
                         migrate_rate=s.migrate_rate, pod=s.pod_name or None),
        )
        # One pidfd watch for the whole drain: it wakes us the moment SRS exits.
        exited = asyncio.ensure_future(wait_exit(pid, max(0.0, times.hard - self.elapsed())))
        try:
            return await self._stages(pid, exited, times)
        finally:
            exited.cancel()
            await asyncio.gather(exited, return_exceptions=True)

    async def _stages(self, pid: int, exited: asyncio.Future[bool], times: DrainTimes) -> Outcome:
        s = self.settings
        if times.quit_at > 0:
            self._phase("pre-stop-delay")
            log.info("waiting --pre-stop-delay %gs before the quit signal", times.quit_at,
                     extra=fields(seconds=times.quit_at))
            if await self._until(exited, times.quit_at):
                return self._gone(pid, "during --pre-stop-delay")
        if s.migrate_rate > 0:
            self._phase("migrating")
            if await self._migrate(exited, times):
                return self._gone(pid, "during the migration of players")
        counts = self._read_connections()
        self.state.connections_before_quit = self.state.connections
        log.info(
            "sending SIGQUIT to SRS (pid %d) with %s connections on its ports", pid,
            _count_text(self.state.connections),
            extra=fields(pid=pid, **progress_fields(self.elapsed(), times.soft,
                                                    self.state.connections, counts,
                                                    self.state.listening)),
        )
        try:
            signal_srs(pid, signal.SIGQUIT)
        except SrsProcessGone:
            return self._gone(pid, "before the quit signal")
        self._phase("draining")
        if await self._follow(exited, times):
            self._srs_exited()
            log.info("SRS drained and exited after %.1fs", self.elapsed(),
                     extra=fields(pid=pid, seconds=round(self.elapsed(), 3)))
            return Outcome.DRAINED
        counts = self._read_connections()
        log.warning(
            "soft deadline reached with %s connections left: sending SIGINT so SRS stops "
            "waiting, finalizes and exits", _count_text(self.state.connections),
            extra=fields(pid=pid, **progress_fields(self.elapsed(), times.soft,
                                                    self.state.connections, counts,
                                                    self.state.listening)),
        )
        try:
            signal_srs(pid, signal.SIGINT)
        except SrsProcessGone:
            return Outcome.DRAINED  # it exited between the last check and the signal
        self._phase("finalizing")
        if await self._until(exited, times.hard):
            log.info("SRS exited %.1fs after SIGINT", self.elapsed() - times.soft,
                     extra=fields(pid=pid, seconds=round(self.elapsed(), 3)))
        else:
            log.error(
                "SRS (pid %d) is still running at the end of the drain's share of the grace "
                "period: the kubelet will SIGKILL it; raise --deadline-margin", pid,
                extra=fields(pid=pid, seconds=round(self.elapsed(), 3)),
            )
        return Outcome.DEADLINE

    def _gone(self, pid: int, when: str) -> Outcome:
        log.info("SRS (pid %d) exited %s: nothing left to drain", pid, when,
                 extra=fields(pid=pid))
        return Outcome.SRS_GONE

    async def _until(self, exited: asyncio.Future[bool], at: float) -> bool:
        """Wait until SRS exits (True) or `at` seconds from the start (False)."""
        if not exited.done():
            await asyncio.wait({exited}, timeout=max(0.0, at - self.elapsed()))
        return exited.done() and not exited.cancelled() and exited.result()

    async def _follow(self, exited: asyncio.Future[bool], times: DrainTimes) -> bool:
        """Log progress every --progress-interval until SRS exits (True) or the soft
        deadline (False). Nothing runs between two ticks."""
        interval = self.settings.progress_interval or times.soft
        next_tick = self.elapsed() + interval
        while True:
            if await self._until(exited, min(times.soft, next_tick)):
                return True
            if self.elapsed() >= times.soft:
                return False
            counts = self._read_connections()
            log.info(
                "draining: %s connections left, %.0fs to the soft deadline",
                _count_text(self.state.connections), max(0.0, times.soft - self.elapsed()),
                extra=fields(**progress_fields(self.elapsed(), times.soft,
                                               self.state.connections, counts,
                                               self.state.listening)),
            )
            self._save_state()
            next_tick += interval

    # -- migration ----------------------------------------------------------------

    async def _migrate(self, exited: asyncio.Future[bool], times: DrainTimes) -> bool:
        """Kick players at --migrate-rate until all are kicked or migration time is up.
        True if SRS exited meanwhile. API failures end the migration, not the drain."""
        # aiohttp is imported only here: it triples the start-up and exit time of a drain
        # that does not migrate.
        from agents.srs.api import (  # noqa: PLC0415
            SrsApi,
            SrsApiError,
            SrsProtocolError,
            SrsUnavailable,
        )

        rate = self.settings.migrate_rate
        try:
            async with SrsApi(self.settings.srs_api, self.settings.srs_timeout) as api:
                clients = await api.clients()
                targets = migration_targets(clients)
                log.info(
                    "migrating %d players at %g/s (%d publishers and %d hls sessions stay)",
                    len(targets.players), rate, targets.publishers, targets.virtual,
                    extra=fields(players=len(targets.players), publishers=targets.publishers,
                                 hls_sessions=targets.virtual, rate=rate),
                )
                if not migration_fits(len(targets.players), rate, self.elapsed(),
                                      times.migration_end):
                    log.warning(
                        "%d players at %g/s need %.0fs, but migration must end in %.0fs: "
                        "the rest drain on their own (raise --migrate-rate)",
                        len(targets.players), rate, len(targets.players) / rate,
                        times.migration_end - self.elapsed(),
                    )
                previous: float | None = None
                for index, client_id in enumerate(targets.players):
                    at = next_kick_at(previous, self.elapsed(), rate)
                    if at > times.migration_end:
                        log.warning("migration time is up: %d players not kicked",
                                    len(targets.players) - index,
                                    extra=fields(left=len(targets.players) - index))
                        break
                    if await self._until(exited, at):
                        return True
                    previous = self.elapsed()
                    try:
                        await api.kick_client(client_id)
                    except SrsApiError as exc:
                        if exc.code != CLIENT_NOT_FOUND:
                            raise
                        log.debug("player %s had already left", client_id)
                        continue
                    self.state.kicked += 1
                    self.state.kicked_total += 1
                    log.debug("kicked player %s", client_id, extra=fields(client=client_id))
        except (SrsUnavailable, SrsProtocolError, SrsApiError) as exc:
            log.warning("migration stopped: %s; the remaining players drain on their own",
                        exc, extra=fields(error=str(exc)))
        log.info("migration done: %d players kicked", self.state.kicked,
                 extra=fields(kicked=self.state.kicked))
        return False

    # -- connections --------------------------------------------------------------

    def _read_config(self) -> tuple[tuple[int, ...], float]:
        """SRS's client ports (--ports, else the config's) and its grace_final_wait."""
        path = os.path.join(self.settings.config_dir, self.settings.config_file)
        try:
            config = conf.load(path)
            ports = self.settings.ports or tuple(conf.client_ports(config))
        except ConfigError as exc:
            if not self.settings.ports:
                log.warning(
                    "cannot read SRS's client ports from its config (%s): following the "
                    "process alone; set --ports to count connections", exc,
                    extra=fields(file=path, error=str(exc)),
                )
            return self.settings.ports, DEFAULT_FINAL_WAIT
        return ports, final_wait_seconds(config)

    def _read_connections(self) -> dict[int, int]:
        """Read /proc/net/tcp*; updates the state's connections and listening.

        Connections are those SRS still holds: ESTABLISHED, and CLOSE_WAIT (the client
        has gone, SRS has not closed its socket yet). SRS's graceful quit waits for its
        connection objects, and each keeps its socket open until it is freed."""
        if not self.ports:
            return {}
        try:
            counts = read_connections(self.ports, self.proc_root)
        except ProcNetError as exc:
            if not self._netstat_failed:
                self._netstat_failed = True
                log.warning("cannot count connections: %s", exc, extra=fields(error=str(exc)))
            self.state.connections = self.state.listening = None
            return {}
        self.state.connections = counts.total_held
        self.state.listening = counts.any_listening
        return counts.held

    def _srs_exited(self) -> None:
        """SRS has exited, and the kernel closed every socket it held: none is left.
        Not read from /proc/net/tcp*: parsing it (thousands of lines on a busy edge)
        would only delay the done-file and our return."""
        if self.state.connections is not None:
            self.state.connections, self.state.listening = 0, False

    # -- files --------------------------------------------------------------------

    def _remove_stale_done_file(self) -> None:
        done = self.settings.done_file
        if done and os.path.lexists(done):
            log.warning("removing %s left by an earlier drain", done, extra=fields(file=done))
            with contextlib.suppress(FileNotFoundError):
                os.unlink(done)

    def _finish(self, outcome: Outcome) -> None:
        done = self.settings.done_file
        if done:  # first: it releases SRS's preStop
            try:
                write_atomically(done, f"{outcome.value}\n")
            except OSError as exc:
                log.error(
                    "cannot write --done-file %s: %s; SRS's preStop will wait until the end "
                    "of the grace period", done, exc, extra=fields(file=done, error=str(exc)))
        self.state.outcome = outcome.value
        self.state.outcomes[outcome.value] = self.state.outcomes.get(outcome.value, 0) + 1
        self.state.phase = "done"
        self._save_state()
        log.info(
            "drain ended: %s after %.1fs", outcome.value, self.elapsed(),
            extra=fields(outcome=outcome.value, seconds=round(self.elapsed(), 3),
                         connections_before_quit=self.state.connections_before_quit,
                         connections_left=self.state.connections, kicked=self.state.kicked,
                         exit_code=EXIT_CODES[outcome]),
        )


def final_wait_seconds(config: conf.Config) -> float:
    """grace_final_wait in seconds (SRS's default when absent or not a number)."""
    directive = config.get("grace_final_wait")
    try:
        return int(directive.arg0) / 1000.0 if directive else DEFAULT_FINAL_WAIT
    except ValueError:
        return DEFAULT_FINAL_WAIT


def _count_text(count: int | None) -> str:
    return "an unknown number of" if count is None else str(count)


def write_atomically(path: str, text: str) -> None:
    """Write `text` to `path` through a temp file and a rename: readers see the old file
    or the whole new one, never a part."""
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".srs-agents.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# ---------------------------------------------------------------------------
# The container log
# ---------------------------------------------------------------------------

LONG_RUNNING_COMMANDS = frozenset({"sidecar", "reload", "exporter"})


@dataclass(frozen=True)
class ProcInfo:
    pid: int
    ppid: int
    start: int  # clock ticks after boot (/proc/<pid>/stat field 22)
    cgroup: str  # /proc/<pid>/cgroup, whole
    cmdline: tuple[str, ...]


def is_long_running_agent(cmdline: tuple[str, ...]) -> bool:
    """`srs-agent sidecar|reload|exporter ...`, run directly or through its interpreter."""
    for index, arg in enumerate(cmdline[:2]):
        if os.path.basename(arg) == "srs-agent":
            return cmdline[index + 1 : index + 2] in {(c,) for c in LONG_RUNNING_COMMANDS}
    return False


def pick_container_main(procs: Iterable[ProcInfo], me: int) -> int | None:
    """The long-running agent of our own container (same cgroup), oldest first; None
    when there is none (we are the container's main process, or run elsewhere)."""
    by_pid = {p.pid: p for p in procs}
    mine = by_pid.get(me)
    if mine is None:
        return None
    ancestors, pid = set(), mine.ppid
    while pid in by_pid and pid not in ancestors:
        ancestors.add(pid)
        pid = by_pid[pid].ppid
    candidates = [
        p for p in by_pid.values()
        if p.pid != me and p.pid not in ancestors and p.cgroup == mine.cgroup
        and is_long_running_agent(p.cmdline)
    ]
    return min(candidates, key=lambda p: (p.start, p.pid)).pid if candidates else None


def read_proc_info(proc_root: str = "/proc") -> list[ProcInfo]:
    """Pid, parent, start time, cgroup and argv of every process we can read."""
    procs = []
    for name in os.listdir(proc_root):
        if not name.isdigit():
            continue
        base = os.path.join(proc_root, name)
        try:
            stat = Path(base, "stat").read_bytes()
            cgroup = Path(base, "cgroup").read_text(encoding="utf-8", errors="replace")
            raw = Path(base, "cmdline").read_bytes()
        except OSError:
            continue  # gone, or not ours to read
        rest = stat[stat.rfind(b")") + 2 :].split()
        try:
            ppid, start = int(rest[1]), int(rest[19])
        except (IndexError, ValueError):
            continue
        argv = tuple(a.decode("utf-8", "replace") for a in raw.rstrip(b"\0").split(b"\0"))
        procs.append(ProcInfo(int(name), ppid, start, cgroup, argv if raw else ()))
    return procs


def mirror_logs_to_container_log(
    proc_root: str = "/proc",
) -> logging.StreamHandler[TextIO] | None:
    """Also write our log lines to the stdout of our container's long-running agent.

    Run as a preStop hook, drain is exec'd into the sidecar's container, and the
    kubelet discards a hook's output when it succeeds: the progress lines would be
    lost. Written to the sidecar's stdout they land in `kubectl logs -c srs-agent`.
    Anywhere else (no such process in our cgroup) nothing changes.
    """
    root = logging.getLogger()
    try:
        target = pick_container_main(read_proc_info(proc_root), os.getpid())
    except OSError:
        return None
    if target is None or not root.handlers:
        return None
    path = os.path.join(proc_root, str(target), "fd", "1")
    try:
        # O_NONBLOCK: a FIFO with no reader fails at once instead of hanging the hook.
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_NOCTTY | os.O_NONBLOCK)
        os.set_blocking(fd, True)
        stream = os.fdopen(fd, "w", buffering=1, encoding="utf-8")
    except OSError as exc:
        log.debug("not mirroring logs to %s: %s", path, exc)
        return None
    handler: logging.StreamHandler[TextIO] = logging.StreamHandler(stream)
    handler.setFormatter(root.handlers[0].formatter)
    root.addHandler(handler)
    log.debug("mirroring logs to the container log of pid %d", target,
              extra=fields(pid=target))
    return handler


# ---------------------------------------------------------------------------
# Metrics for the sidecar
# ---------------------------------------------------------------------------


class _Warnings:
    """Remembers the last state-file problem so each is logged once, not per scrape."""

    last = ""


def read_state_file(path: str) -> DrainState | None:
    """The drain state in `path`; None when there is none or it cannot be read."""
    if not path:
        return None
    try:
        text = Path(path).read_text(encoding="utf-8")
        return state_from_json(text)
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, StateFormatError) as exc:
        message = f"cannot read the drain state file {path}: {exc}"
        if message != _Warnings.last:
            _Warnings.last = message
            log.warning(message, extra=fields(file=path, error=str(exc)))
        return None


class DrainCollector(Collector):
    """The drain's metrics, from whatever `source` returns at scrape time."""

    def __init__(self, source: Callable[[], DrainState | None]) -> None:
        self.source = source
        self._served_done: float | None = None  # started_at of the last ended drain served
        self._lock = threading.Lock()
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    def collect(self) -> Iterable[Metric]:
        state = self.source()
        if state is not None and state.phase == "done":
            with self._lock:
                self._served_done = state.started_at
                waiters, self._waiters = self._waiters, []
            for loop, future in waiters:  # scrapes may come from any thread
                loop.call_soon_threadsafe(_resolve, future)
        return metric_families(state)

    def describe(self) -> Iterable[Metric]:
        return metric_families(DrainState(connections=0, connections_before_quit=0))

    def outcome_scraped(self) -> bool:
        """Whether the last ended drain's outcome has been served (or there is none)."""
        state = self.source()
        return state is None or state.phase != "done" or self._served_done == state.started_at

    async def wait_outcome_scraped(self, timeout: float) -> bool:
        """For the sidecar's shutdown: the kubelet sends it SIGTERM as soon as the drain
        returns, so without this the outcome would rarely reach Prometheus. Waits up to
        `timeout`, and never past the grace period's end less 1 s, for one scrape to serve
        it; True if it was (or there was none)."""
        loop = asyncio.get_running_loop()
        end = loop.time() + linger_budget(self.source(), time.time(), timeout)
        while True:
            future: asyncio.Future[None] = loop.create_future()
            with self._lock:
                self._waiters.append((loop, future))
            if self.outcome_scraped():
                return True
            left = end - loop.time()
            if left <= 0:
                return False
            try:
                await asyncio.wait_for(future, left)
            except TimeoutError:
                return self.outcome_scraped()


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def drain_metrics_from_state(path: str, registry: CollectorRegistry) -> DrainCollector:
    """Register, on the sidecar's registry, the metrics of the drain that writes `path`.

    The drain runs as a separate, short-lived preStop process with no server; the
    sidecar keeps serving /metrics during it, reading the file at each scrape.
    """
    collector = DrainCollector(lambda: read_state_file(path))
    registry.register(collector)
    return collector
