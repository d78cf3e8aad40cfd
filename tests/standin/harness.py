"""Start the SRS stand-in as a real process for a test, and always take it down again.

    async with StandIn(tmp_path) as srs:
        player = srs.connect_player("live", "s1")
        ...
        srs.signal(signal.SIGQUIT)
        assert await srs.wait_exit(10) == 0

The config is a `string.Template` (`$rtmp_port`, `$api_port`, `$http_port`,
`$exporter_port`, `$pid_file`, `$html_dir`, `$workdir`, and the keyword settings below),
so SRS's own `{}` blocks need no escaping. Ports are fresh free ports on 127.0.0.1; if
another process takes one before the stand-in binds it, the start is retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from string import Template
from types import TracebackType
from typing import Any

LAUNCHER = Path(__file__).resolve().parent / "bin" / "srs"

# The config SRS ran with for the recordings in tests/fixtures/srs-6.0.155, on free ports.
DEFAULT_TEMPLATE = """\
listen              127.0.0.1:$rtmp_port;
max_connections     1000;
daemon              off;
srs_log_tank        console;
pid                 $pid_file;
grace_start_wait    $grace_start_wait;
grace_final_wait    $grace_final_wait;
force_grace_quit    $force_grace_quit;
inotify_auto_reload off;
http_api {
    enabled         on;
    listen          127.0.0.1:$api_port;
    raw_api {
        enabled         $raw_api;
        allow_reload    $raw_api;
    }
}
http_server {
    enabled         on;
    listen          127.0.0.1:$http_port;
    dir             $html_dir;
}
exporter {
    enabled         $exporter;
    listen          127.0.0.1:$exporter_port;
    label           test-label;
    tag             test-tag;
}
vhost __defaultVhost__ {
    hls {
        enabled         $hls;
        hls_fragment    $hls_fragment;
        hls_window      $hls_window;
        hls_dispose     $hls_dispose;
        hls_path        $html_dir;
    }
    http_remux {
        enabled     on;
        mount       [vhost]/[app]/[stream].flv;
    }
    dvr {
        enabled     $dvr;
        dvr_plan    session;
        dvr_path    $html_dir/[app]/[stream].[timestamp].flv;
    }
}
"""

BIND_FAILED = 1002 & 0xFF
_ports_lock = threading.Lock()
_ports_given: set[int] = set()


def free_port() -> int:
    """A port nobody listens on now, never handed out twice by this process."""
    with _ports_lock:
        while True:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind(("127.0.0.1", 0))
                port = int(s.getsockname()[1])
            if port not in _ports_given:
                _ports_given.add(port)
                return port


def on_off(value: bool | str) -> str:
    if isinstance(value, str):
        return value
    return "on" if value else "off"


class StandInError(RuntimeError):
    """The stand-in did not start, or did not do what a helper waited for."""


class StandIn:
    """One stand-in process, its config, ports, events file and client sockets."""

    def __init__(
        self,
        workdir: Path | str,
        *,
        template: str = DEFAULT_TEMPLATE,
        tick: float = 1.0,
        force_grace_quit: bool = True,
        grace_start_wait: int = 700,
        grace_final_wait: int = 800,
        raw_api: bool = True,
        exporter: bool = True,
        hls: bool = True,
        hls_fragment: float = 2,
        hls_window: float = 10,
        hls_dispose: int = 20,
        dvr: bool = False,
        fake_streams: int = 0,
        api_version: int = 6,
        extra_args: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
        start_timeout: float = 10.0,
    ) -> None:
        self.workdir = Path(workdir).resolve()
        self.template = template
        self.tick = tick
        self.settings: dict[str, str] = {
            "force_grace_quit": on_off(force_grace_quit),
            "grace_start_wait": str(grace_start_wait),
            "grace_final_wait": str(grace_final_wait),
            "raw_api": on_off(raw_api),
            "exporter": on_off(exporter),
            "hls": on_off(hls),
            "hls_fragment": str(hls_fragment),
            "hls_window": str(hls_window),
            "hls_dispose": str(hls_dispose),
            "dvr": on_off(dvr),
        }
        self.fake_streams = fake_streams
        self.api_version = api_version
        self.extra_args = extra_args
        self.env = env or {}
        self.start_timeout = start_timeout
        self.conf_path = self.workdir / "srs.conf"
        self.pid_file = self.workdir / "srs.pid"
        self.events_path = self.workdir / "events.jsonl"
        self.output_path = self.workdir / "srs.out"
        self.html_dir = self.workdir / "html"
        self.rtmp_port = self.api_port = self.http_port = self.exporter_port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self._sockets: list[socket.socket] = []
        self._output: Any = None

    # --- life cycle ---
    async def __aenter__(self) -> StandIn:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def values(self) -> dict[str, str]:
        return {
            **self.settings,
            "rtmp_port": str(self.rtmp_port),
            "api_port": str(self.api_port),
            "http_port": str(self.http_port),
            "exporter_port": str(self.exporter_port),
            "pid_file": str(self.pid_file),
            "html_dir": str(self.html_dir),
            "workdir": str(self.workdir),
        }

    def render(self, template: str | None = None, **overrides: str) -> str:
        return Template(template or self.template).substitute({**self.values(), **overrides})

    def write_config(self, text: str) -> None:
        """Replace srs.conf in place (as an editor would), for reload tests."""
        self.conf_path.write_text(text, encoding="utf-8")

    def command(self) -> list[str]:
        cmd = [sys.executable, str(LAUNCHER), "-c", str(self.conf_path), "--tick", str(self.tick)]
        cmd += ["--events", str(self.events_path), "--api-version", str(self.api_version)]
        if self.fake_streams:
            cmd += ["--fake-streams", str(self.fake_streams)]
        return cmd + list(self.extra_args)

    async def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.html_dir.mkdir(parents=True, exist_ok=True)
        for _attempt in range(3):
            self.rtmp_port, self.api_port = free_port(), free_port()
            self.http_port, self.exporter_port = free_port(), free_port()
            self.write_config(self.render())
            with contextlib.suppress(FileNotFoundError):
                self.events_path.unlink()
            env = {k: v for k, v in os.environ.items() if not k.startswith("SRS_")}
            env.update(self.env)
            self._output = open(self.output_path, "ab")  # noqa: SIM115 - closed in stop()
            self.proc = subprocess.Popen(
                self.command(),
                cwd=self.workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=self._output,
                stderr=subprocess.STDOUT,
            )
            code = await self._wait_ready()
            if code is None:
                return
            self._output.close()
            if code != BIND_FAILED:
                raise StandInError(f"stand-in exited with {code} at start:\n{self.output()}")
        raise StandInError(f"stand-in could not bind its ports:\n{self.output()}")

    async def _wait_ready(self) -> int | None:
        """None once the stand-in is ready; its exit code if it died first."""
        assert self.proc is not None
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            code = self.proc.poll()
            if code is not None:
                return code
            if any(e["event"] == "ready" for e in self.events()):
                return None
            await asyncio.sleep(0.02)
        await self.stop()
        raise StandInError(f"stand-in not ready after {self.start_timeout}s:\n{self.output()}")

    async def stop(self) -> None:
        """Close our client sockets and kill the process if it still runs."""
        for s in self._sockets:
            with contextlib.suppress(OSError):
                s.close()
        self._sockets.clear()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            for _ in range(200):
                if self.proc.poll() is not None:
                    break
                await asyncio.sleep(0.01)
        if self._output is not None:
            self._output.close()

    # --- what tests use ---
    @property
    def pid(self) -> int:
        assert self.proc is not None, "not started"
        return self.proc.pid

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def exporter_url(self) -> str:
        return f"http://127.0.0.1:{self.exporter_port}"

    def output(self) -> str:
        """Everything the stand-in wrote (its SRS-format log and stderr)."""
        try:
            return self.output_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        try:
            lines = self.events_path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        found = [json.loads(line) for line in lines if line.strip()]
        return [e for e in found if name is None or e["event"] == name]

    async def wait_event(
        self, event: str, /, timeout: float = 10.0, count: int = 1, **match: Any
    ) -> dict[str, Any]:
        """Wait until `count` events `event` (with fields equal to `match`) were written."""
        deadline = time.monotonic() + timeout
        while True:
            found = [e for e in self.events(event) if all(e.get(k) == v for k, v in match.items())]
            if len(found) >= count:
                return found[count - 1]
            if time.monotonic() > deadline:
                raise StandInError(f"no event {event} {match} after {timeout}s")
            await asyncio.sleep(0.02)

    def signal(self, sig: int) -> None:
        os.kill(self.pid, sig)

    async def wait_exit(self, timeout: float) -> int:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while (code := self.proc.poll()) is None:
            if time.monotonic() > deadline:
                raise StandInError(f"stand-in still running after {timeout}s")
            await asyncio.sleep(0.01)
        return code

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _connect(self, port: int, first: bytes) -> socket.socket:
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        self._sockets.append(s)
        if first:
            s.sendall(first)
        return s

    def connect_publisher(
        self, app: str, stream: str, *, video: bool = True, audio: bool = True
    ) -> socket.socket:
        """A publisher on the RTMP port (the stand-in's `PUBLISH app/stream` line)."""
        words = [f"PUBLISH {app}/{stream}"]
        if not video:
            words.append("video=none")
        if not audio:
            words.append("audio=none")
        return self._connect(self.rtmp_port, (" ".join(words) + "\n").encode())

    def connect_player(self, app: str, stream: str) -> socket.socket:
        """An RTMP player (the stand-in's `PLAY app/stream` line)."""
        return self._connect(self.rtmp_port, f"PLAY {app}/{stream}\n".encode())

    def connect_raw(self, port: int | None = None) -> socket.socket:
        """A bare TCP connection (to the RTMP port by default) that says nothing."""
        return self._connect(port or self.rtmp_port, b"")

    def connect_flv_player(self, app: str, stream: str) -> socket.socket:
        """An HTTP-FLV player on the HTTP server port, held open."""
        request = f"GET /{app}/{stream}.flv HTTP/1.1\r\nHost: 127.0.0.1:{self.http_port}\r\n\r\n"
        return self._connect(self.http_port, request.encode())

    def close(self, sock: socket.socket) -> None:
        with contextlib.suppress(OSError):
            sock.close()

    async def get_json(self, path: str, base: str | None = None) -> Any:
        """GET a JSON document from the API (in a thread: urllib blocks)."""
        return json.loads(await self.get(path, base))

    async def get(self, path: str, base: str | None = None) -> str:
        url = (base or self.api_url) + path

        def fetch() -> str:
            with urllib.request.urlopen(url, timeout=5) as r:
                return str(r.read().decode("utf-8"))

        return await asyncio.to_thread(fetch)

    async def wait_clients(self, count: int, timeout: float = 10.0) -> None:
        """Wait until the API lists `count` clients."""
        deadline = time.monotonic() + timeout
        while True:
            got = len((await self.get_json("/api/v1/clients/?count=10000"))["clients"])
            if got == count:
                return
            if time.monotonic() > deadline:
                raise StandInError(f"{got} clients, not {count}, after {timeout}s")
            await asyncio.sleep(0.05)


def port_accepts(port: int) -> bool:
    """Whether a TCP connect to 127.0.0.1:port succeeds now."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


__all__ = ["DEFAULT_TEMPLATE", "StandIn", "StandInError", "free_port", "port_accepts"]
