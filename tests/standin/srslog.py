"""SRS's log format, so log-reading tools meet the same lines as in production.

`[2026-11-26 18:34:37.546][INFO][21437][1qic7422] msg`; WARN and ERROR add `[errno]`.
On the console (`srs_log_tank console`) WARN is wrapped in ESC[33m and ERROR in ESC[31m,
with the reset code written after the newline, as SRS does. With a file tank the lines
go to `srs_log_file` and SIGUSR1 reopens it (for logrotate).
"""

from __future__ import annotations

import os
import sys
import time
from typing import TextIO


class SrsLog:
    def __init__(self, pid: int, to_file: str | None) -> None:
        self.pid = pid
        self.path = to_file
        self._file: TextIO | None = None
        if to_file:
            self._open()

    def _open(self) -> None:
        assert self.path is not None
        parent = os.path.dirname(self.path)
        if parent:
            os.makedirs(parent, exist_ok=True)
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - kept open

    def reopen(self) -> None:
        if self._file is not None:
            self._file.close()
            self._open()

    def _write(self, level: str, cid: str, msg: str, errno: int | None) -> None:
        now = time.time()
        stamp = (
            time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now)) + f".{int(now % 1 * 1000):03d}"
        )
        extra = f"[{errno}]" if errno is not None else ""
        line = f"[{stamp}][{level}][{self.pid}][{cid}]{extra} {msg}"
        if self._file is not None:
            self._file.write(line + "\n")
            self._file.flush()
            return
        color = {"WARN": "\033[33m", "ERROR": "\033[31m"}.get(level, "")
        text = f"{color}{line}\n\033[0m" if color else line + "\n"
        try:
            sys.stdout.write(text)
            sys.stdout.flush()
        except (BrokenPipeError, ValueError):
            pass

    def trace(self, cid: str, msg: str) -> None:
        self._write("INFO", cid, msg, None)

    def warn(self, cid: str, msg: str, errno: int = 11) -> None:
        self._write("WARN", cid, msg, errno)

    def error(self, cid: str, msg: str, errno: int = 0) -> None:
        self._write("ERROR", cid, msg, errno)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
