"""Find the SRS process in the pod's shared PID namespace, signal it, wait for it to exit.

With `shareProcessNamespace: true` every container sees the others' processes in
/proc, so the agent can send SRS SIGHUP (reload) or SIGQUIT (graceful quit) and watch
it exit. SRS closes its HTTP API when it starts quitting, so watching the PID is the
only way to see the end of a drain.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from agents.errors import ConfigError, RetryableError

log = logging.getLogger("srs_agent.srs.process")

POLL_INTERVAL = 0.05  # seconds, only where pidfd_open is unavailable



class _Once:
    """Remembers that a one-time event (the fallback warning) happened."""

    fired = False


_pidfd_fallback = _Once()


@dataclass(frozen=True)
class ProcEntry:
    pid: int
    cmdline: tuple[str, ...]  # argv; empty for kernel threads and zombies

    @property
    def command(self) -> str:
        return " ".join(self.cmdline)


class SrsProcessNotFound(RetryableError):
    """No process matched: SRS may still be starting (or the PID namespace is not shared)."""

    def __init__(self, pattern: str, scanned: int) -> None:
        self.pattern = pattern
        self.scanned = scanned
        super().__init__(
            f"no SRS process: none of the {scanned} processes in /proc has a command line "
            f"matching --srs-process {pattern!r} (is shareProcessNamespace: true set on the "
            "pod, and is SRS running?)"
        )


class SrsProcessAmbiguous(ConfigError):
    """Several processes matched: the --srs-process pattern is too broad."""

    def __init__(self, pattern: str, matches: list[ProcEntry]) -> None:
        self.pattern = pattern
        self.matches = matches
        listing = "; ".join(f"pid {m.pid}: {m.command!r}" for m in matches)
        super().__init__(
            f"--srs-process {pattern!r} matches {len(matches)} processes, expected one "
            f"(make it narrower): {listing}"
        )


class SrsProcessGone(RetryableError):
    """The process exited between being found and being signalled."""

    def __init__(self, pid: int, what: str) -> None:
        self.pid = pid
        super().__init__(f"SRS process {pid} is gone: cannot {what}")


def _compile(pattern: str | re.Pattern[str]) -> re.Pattern[str]:
    if isinstance(pattern, re.Pattern):
        return pattern
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ConfigError(f"--srs-process {pattern!r} is not a valid regex: {exc}") from None


def match_processes(
    entries: Iterable[ProcEntry],
    pattern: str | re.Pattern[str],
    exclude_pids: Collection[int] = (),
) -> list[ProcEntry]:
    """Entries whose argv, joined by spaces, contains a match of `pattern` (re.search).

    Kernel threads and zombies (empty cmdline) and `exclude_pids` (our own pid) never match.
    """
    regex = _compile(pattern)
    return [
        entry
        for entry in entries
        if entry.cmdline and entry.pid not in exclude_pids and regex.search(entry.command)
    ]


def parse_cmdline(raw: bytes) -> tuple[str, ...]:
    """/proc/<pid>/cmdline (NUL-separated, usually NUL-terminated) -> argv."""
    if not raw:
        return ()
    if raw.endswith(b"\0"):
        raw = raw[:-1]
    return tuple(arg.decode("utf-8", errors="replace") for arg in raw.split(b"\0"))


def scan_proc(proc_root: str = "/proc") -> list[ProcEntry]:
    """Every process in `proc_root`; those that vanish while being read are left out."""
    entries = []
    with os.scandir(proc_root) as it:
        for dirent in it:
            if not dirent.name.isdigit():
                continue
            try:
                with open(os.path.join(dirent.path, "cmdline"), "rb") as fh:
                    raw = fh.read()
            except (FileNotFoundError, ProcessLookupError, NotADirectoryError, PermissionError):
                continue  # exited mid-scan (ENOENT/ESRCH) or hidden from us
            entries.append(ProcEntry(int(dirent.name), parse_cmdline(raw)))
    return entries


def find_srs(pattern: str | re.Pattern[str], proc_root: str = "/proc") -> int:
    """The pid of the one process matching `pattern`, other than ourselves."""
    entries = scan_proc(proc_root)
    matches = match_processes(entries, pattern, exclude_pids={os.getpid()})
    text = pattern if isinstance(pattern, str) else pattern.pattern
    if not matches:
        raise SrsProcessNotFound(text, len(entries))
    if len(matches) > 1:
        raise SrsProcessAmbiguous(text, matches)
    return matches[0].pid


def signal_srs(pid: int, sig: signal.Signals) -> None:
    """Send `sig` to `pid`; SrsProcessGone if it exited, ConfigError if we may not."""
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        raise SrsProcessGone(pid, f"send {sig.name}") from None
    except PermissionError:
        raise ConfigError(
            f"not permitted to send {sig.name} to SRS (pid {pid}): run the agent as the same "
            "user as SRS, or grant it CAP_KILL"
        ) from None
    log.info("sent %s to SRS", sig.name, extra={"fields": {"pid": pid, "signal": sig.name}})


def pid_alive(pid: int, proc_root: str = "/proc") -> bool:
    """Whether `pid` exists and has not exited (a zombie counts as exited)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists; we just may not signal it
    try:
        with open(os.path.join(proc_root, str(pid), "stat"), "rb") as fh:
            stat = fh.read()
    except (FileNotFoundError, ProcessLookupError):
        return False
    # "pid (comm) S ...": comm may hold spaces and parens, the state follows the last ')'.
    state = stat[stat.rfind(b")") + 2 : stat.rfind(b")") + 3]
    return state not in (b"Z", b"X")


async def wait_exit(pid: int, timeout: float, use_pidfd: bool = True) -> bool:
    """Wait until `pid` exits: True if it did (or was already gone), False on timeout.

    Uses a pidfd, which becomes readable when the process exits, also for processes
    that are not our children (same PID namespace). Without pidfd_open (kernel < 5.3,
    seccomp), polls every 50 ms.
    """
    if use_pidfd and hasattr(os, "pidfd_open"):
        try:
            pidfd = os.pidfd_open(pid)
        except ProcessLookupError:
            return True
        except OSError as exc:
            _log_fallback(f"pidfd_open failed: {exc}")
        else:
            try:
                return await _wait_pidfd(pidfd, timeout)
            finally:
                os.close(pidfd)
    elif use_pidfd:
        _log_fallback("os.pidfd_open is not available")
    return await _wait_poll(pid, timeout)


async def _wait_pidfd(pidfd: int, timeout: float) -> bool:
    loop = asyncio.get_running_loop()
    exited = loop.create_future()

    def _on_readable() -> None:
        if not exited.done():
            exited.set_result(None)

    loop.add_reader(pidfd, _on_readable)
    try:
        await asyncio.wait_for(exited, timeout)
    except TimeoutError:
        return False
    finally:
        loop.remove_reader(pidfd)
    return True


async def _wait_poll(pid: int, timeout: float) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while pid_alive(pid):
        remaining = deadline - loop.time()
        if remaining <= 0:
            return False
        await asyncio.sleep(min(POLL_INTERVAL, remaining))
    return True


def _log_fallback(reason: str) -> None:
    if not _pidfd_fallback.fired:
        _pidfd_fallback.fired = True
        log.warning(
            "waiting for process exit by polling every 50 ms: %s", reason,
            extra={"fields": {"reason": reason}},
        )
