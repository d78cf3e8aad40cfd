"""The process and system figures SRS reports, read from this process's real /proc.

SRS samples getrusage, /proc/self/stat, /proc/stat, /proc/meminfo, /proc/uptime and
/proc/loadavg on timers and serves the last sample (srs_app_utility.cpp); the stand-in
does the same for itself, so the numbers are true ones of a live process.
"""

from __future__ import annotations

import os
import resource
import socket
import time
from dataclasses import dataclass, field

from tests.standin.srsjson import JsonValue

SELF_STAT_FIELDS = (
    "pid",
    "comm",
    "state",
    "ppid",
    "pgrp",
    "session",
    "tty_nr",
    "tpgid",
    "flags",
    "minflt",
    "cminflt",
    "majflt",
    "cmajflt",
    "utime",
    "stime",
    "cutime",
    "cstime",
    "priority",
    "nice",
    "num_threads",
    "itrealvalue",
    "starttime",
    "vsize",
    "rss",
    "rsslim",
    "startcode",
    "endcode",
    "startstack",
    "kstkesp",
    "kstkeip",
    "signal",
    "blocked",
    "sigignore",
    "sigcatch",
    "wchan",
    "nswap",
    "cnswap",
    "exit_signal",
    "processor",
    "rt_priority",
    "policy",
    "delayacct_blkio_ticks",
    "guest_time",
    "cguest_time",
)
SYSTEM_STAT_FIELDS = ("user", "nice", "sys", "idle", "iowait", "irq", "softirq", "steal", "guest")


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def now_ms() -> int:
    return int(time.time() * 1000)


def self_stat() -> dict[str, int | str]:
    text = _read("/proc/self/stat")
    values: dict[str, int | str] = dict.fromkeys(SELF_STAT_FIELDS, 0)
    if not text:
        return values
    head, _, rest = text.rpartition(")")
    pid, _, comm = head.partition(" (")
    fields = [pid, f"({comm})", *rest.split()]
    for name, raw in zip(SELF_STAT_FIELDS, fields, strict=False):
        if name in ("comm", "state"):
            values[name] = raw
        else:
            try:
                values[name] = int(raw)
            except ValueError:
                values[name] = 0
    return values


def system_stat() -> dict[str, int]:
    for line in _read("/proc/stat").splitlines():
        if line.startswith("cpu "):
            nums = [int(x) for x in line.split()[1:]]
            nums += [0] * (len(SYSTEM_STAT_FIELDS) - len(nums))
            return dict(zip(SYSTEM_STAT_FIELDS, nums, strict=False))
    return dict.fromkeys(SYSTEM_STAT_FIELDS, 0)


def meminfo() -> dict[str, int]:
    info: dict[str, int] = {}
    for line in _read("/proc/meminfo").splitlines():
        name, _, value = line.partition(":")
        parts = value.split()
        if parts and parts[0].isdigit():
            info[name] = int(parts[0])
    return info


@dataclass
class Sampler:
    """The last samples, refreshed by `update()` from the server's timer."""

    start: float = field(default_factory=time.time)
    cpu_percent: float = 0.0  # of one CPU, 0..1 like SrsProcSelfStat::percent
    system_percent: float = 0.0
    _last_cpu: tuple[float, int] | None = None
    _last_sys: tuple[int, int] | None = None

    def update(self) -> None:
        now = time.monotonic()
        stat = self_stat()
        ticks = int(stat["utime"]) + int(stat["stime"])
        hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        if self._last_cpu is not None and now > self._last_cpu[0]:
            self.cpu_percent = (ticks - self._last_cpu[1]) / hz / (now - self._last_cpu[0])
        self._last_cpu = (now, ticks)
        sys = system_stat()
        total = sum(sys.values())
        busy = total - sys["idle"]
        if self._last_sys is not None and total > self._last_sys[0]:
            self.system_percent = (busy - self._last_sys[1]) / (total - self._last_sys[0])
        self._last_sys = (total, busy)

    def rss_pages(self) -> int:
        return int(self_stat()["rss"])

    def rusages(self) -> dict[str, JsonValue]:
        ru = resource.getrusage(resource.RUSAGE_SELF)
        return {
            "ok": True,
            "sample_time": now_ms(),
            "ru_utime": int(ru.ru_utime),
            "ru_stime": int(ru.ru_stime),
            "ru_maxrss": ru.ru_maxrss,
            "ru_ixrss": ru.ru_ixrss,
            "ru_idrss": ru.ru_idrss,
            "ru_isrss": ru.ru_isrss,
            "ru_minflt": ru.ru_minflt,
            "ru_majflt": ru.ru_majflt,
            "ru_nswap": ru.ru_nswap,
            "ru_inblock": ru.ru_inblock,
            "ru_oublock": ru.ru_oublock,
            "ru_msgsnd": ru.ru_msgsnd,
            "ru_msgrcv": ru.ru_msgrcv,
            "ru_nsignals": ru.ru_nsignals,
            "ru_nvcsw": ru.ru_nvcsw,
            "ru_nivcsw": ru.ru_nivcsw,
        }

    def self_proc_stats(self) -> dict[str, JsonValue]:
        data: dict[str, JsonValue] = {
            "ok": True,
            "sample_time": now_ms(),
            "percent": float(self.cpu_percent),
        }
        data.update(self_stat())
        return data

    def system_proc_stats(self) -> dict[str, JsonValue]:
        data: dict[str, JsonValue] = {
            "ok": True,
            "sample_time": now_ms(),
            "percent": float(self.system_percent),
        }
        data.update(system_stat())
        return data

    def meminfos(self) -> dict[str, JsonValue]:
        m = meminfo()
        total = m.get("MemTotal", 0)
        free = m.get("MemFree", 0)
        buffers = m.get("Buffers", 0)
        cached = m.get("Cached", 0)
        swap_total = m.get("SwapTotal", 0)
        swap_free = m.get("SwapFree", 0)
        in_use = total - free - buffers - cached
        return {
            "ok": True,
            "sample_time": now_ms(),
            "percent_ram": float(in_use / total) if total else 0.0,
            "percent_swap": float((swap_total - swap_free) / swap_total) if swap_total else 0.0,
            "MemActive": m.get("Active", 0),
            "RealInUse": in_use,
            "NotInUse": total - in_use,
            "MemTotal": total,
            "MemFree": free,
            "Buffers": buffers,
            "Cached": cached,
            "SwapTotal": swap_total,
            "SwapFree": swap_free,
        }

    def summaries(
        self, argv: str, cwd: str, srs_send: int, srs_recv: int, conn_srs: int
    ) -> dict[str, JsonValue]:
        ru = resource.getrusage(resource.RUSAGE_SELF)
        m = meminfo()
        total = m.get("MemTotal", 0)
        in_use = total - m.get("MemFree", 0) - m.get("Buffers", 0) - m.get("Cached", 0)
        swap_total = m.get("SwapTotal", 0)
        uptime_parts = [*_read("/proc/uptime").split(), "0", "0"][:2]
        load_parts = [*_read("/proc/loadavg").split(), "0", "0", "0"][:3]
        cpus = os.cpu_count() or 1
        stamp = now_ms()
        return {
            "ok": True,
            "now_ms": stamp,
            "self": {
                "version": "6.0.155",
                "pid": os.getpid(),
                "ppid": os.getppid(),
                "argv": argv,
                "cwd": cwd,
                "mem_kbyte": ru.ru_maxrss,
                "mem_percent": float(ru.ru_maxrss / total) if total else 0.0,
                "cpu_percent": float(self.cpu_percent),
                "srs_uptime": int(time.time() - self.start),
            },
            "system": {
                "cpu_percent": float(self.system_percent),
                "disk_read_KBps": 0,
                "disk_write_KBps": 0,
                "disk_busy_percent": 0.0,
                "mem_ram_kbyte": total,
                "mem_ram_percent": float(in_use / total) if total else 0.0,
                "mem_swap_kbyte": swap_total,
                "mem_swap_percent": 0.0,
                "cpus": cpus,
                "cpus_online": len(os.sched_getaffinity(0))
                if hasattr(os, "sched_getaffinity")
                else cpus,
                "uptime": float(uptime_parts[0]),
                "ilde_time": float(uptime_parts[1]),
                "load_1m": float(load_parts[0]),
                "load_5m": float(load_parts[1]),
                "load_15m": float(load_parts[2]),
                "net_sample_time": stamp,
                "net_recv_bytes": 0,
                "net_send_bytes": 0,
                "net_recvi_bytes": 0,
                "net_sendi_bytes": 0,
                "srs_sample_time": stamp,
                "srs_recv_bytes": srs_recv,
                "srs_send_bytes": srs_send,
                "conn_sys": conn_srs,
                "conn_sys_et": conn_srs,
                "conn_sys_tw": 0,
                "conn_sys_udp": 0,
                "conn_srs": conn_srs,
            },
        }


def uname_labels() -> dict[str, str]:
    u = os.uname()
    return {
        "sysname": u.sysname,
        "nodename": u.nodename,
        "release": u.release,
        "version": u.version,
        "machine": u.machine,
    }


def public_ip() -> str:
    """A best guess of `srs_get_public_internet_address`: the first non-loopback address."""
    try:
        for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET):
            ip = str(info[4][0])
            if not ip.startswith("127."):
                return ip
    except OSError:
        pass
    return "127.0.0.1"
