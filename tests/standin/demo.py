"""`make demo`: the agents as they run in an SRS pod, in a local sandbox, narrated.

The sandbox (./demo-sandbox) is laid out like the pod's volumes:
    conf/   the config volume, written the way the kubelet writes a ConfigMap
    html/   the shared html volume (SRS's HLS/DVR output, seeded by copy-html)
    run/    the small shared emptyDir (drain's done file and state)
    image-html/  what the agent image carries as SRS's default html
SRS is the stand-in (tests/standin) or, when SRS_BIN points at one, a real SRS binary.
`--no-wait` runs straight through (the test suite does that); otherwise the ops URLs
stay up until Ctrl-C, then the pod's shutdown is played: drain, then the sidecar stops.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from agents.configdir import AtomicDir

ROOT = Path(__file__).resolve().parents[2]
STANDIN = ROOT / "tests" / "standin" / "bin" / "srs"
AGENT = [sys.executable, "-m", "agents"]

CONFIG = """\
# srs.conf of the demo pod (a ConfigMap in Kubernetes).
listen              127.0.0.1:{rtmp};
max_connections     1000;
daemon              off;
srs_log_tank        console;
pid                 {run}/srs.pid;
grace_start_wait    700;
grace_final_wait    800;
force_grace_quit    on;
# The agent's validated reload is the only reload path:
inotify_auto_reload off;
auto_reload_for_docker off;
http_api {{
    enabled         on;
    listen          127.0.0.1:{api};
    raw_api {{
        enabled         on;
        allow_reload    on;
    }}
}}
http_server {{
    enabled         on;
    listen          127.0.0.1:{http};
    dir             {html};
}}
vhost __defaultVhost__ {{
    hls {{
        enabled         on;
        hls_fragment    {fragment};
        hls_window      10;
        hls_dispose     20;
        hls_path        {html};
    }}
    http_remux {{
        enabled     on;
        mount       [vhost]/[app]/[stream].flv;
    }}
}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Demo:
    def __init__(self, sandbox: Path, srs_bin: str | None, wait: bool) -> None:
        self.sandbox = sandbox
        self.srs_bin = srs_bin
        self.wait = wait
        self.conf = sandbox / "conf"
        self.html = sandbox / "html"
        self.run_dir = sandbox / "run"
        self.image_html = sandbox / "image-html"
        self.logs = sandbox / "logs"
        self.ports = {"rtmp": free_port(), "api": free_port(), "http": free_port()}
        self.ops_port = free_port()
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.log_offsets: dict[str, int] = {}
        self.sockets: list[socket.socket] = []
        self.step_no = 0
        self.fragment = 2

    # -- narration -----------------------------------------------------------------

    def step(self, title: str) -> None:
        self.step_no += 1
        print(f"\n\033[1m[{self.step_no}] {title}\033[0m", flush=True)

    def say(self, text: str) -> None:
        print(f"    {text}", flush=True)

    def show_log(self, name: str, must: str | None = None, timeout: float = 10.0) -> str:
        """Print what agent `name` logged since last time (waiting for `must`)."""
        path = self.logs / f"{name}.log"
        deadline = time.monotonic() + timeout
        while True:
            text = path.read_text(errors="replace") if path.exists() else ""
            new = text[self.log_offsets.get(name, 0) :]
            if must is None or must in new or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        self.log_offsets[name] = len(text)
        for line in new.splitlines():
            print(f"    {name}| {line}", flush=True)
        if must is not None and must not in new:
            raise SystemExit(f"demo: expected {must!r} in the {name} log; see {path}")
        return new

    # -- processes -------------------------------------------------------------------

    def agent(self, *args: str) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [*AGENT, *args, "--log-format", "text"],
            cwd=self.sandbox,
            capture_output=True,
            text=True,
            check=False,
        )
        for line in (result.stdout + result.stderr).splitlines():
            print(f"    {args[0]}| {line}", flush=True)
        return result

    def start(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        self.logs.mkdir(exist_ok=True)
        out = (self.logs / f"{name}.log").open("ab")
        # Its own session: a terminal's Ctrl-C reaches the whole foreground process group,
        # and it must reach only the demo, which then plays the pod's deletion in order.
        proc = subprocess.Popen(argv, cwd=self.sandbox, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        self.procs[name] = proc
        return proc

    def get(self, url: str) -> str:
        with urllib.request.urlopen(url, timeout=5) as resp:
            body: bytes = resp.read()
            return body.decode()

    def metrics(self, *prefixes: str) -> list[str]:
        text = self.get(f"http://127.0.0.1:{self.ops_port}/metrics")
        return [
            line
            for line in text.splitlines()
            if not line.startswith("#") and line.startswith(prefixes)
        ]

    def wait_metric(self, line_start: str, timeout: float = 10.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.metrics(line_start):
                return line
            time.sleep(0.1)
        raise SystemExit(f"demo: metric {line_start!r} did not appear")

    def srs_regex(self) -> str:
        # Only this sandbox's SRS, even if another SRS runs on the machine.
        return rf"(^|/)srs\s.*{self.conf}/srs\.conf"

    # -- the story --------------------------------------------------------------------

    def write_config(self, text: str | None = None) -> None:
        text = text or CONFIG.format(
            **self.ports, run=self.run_dir, html=self.html, fragment=self.fragment
        )
        AtomicDir(str(self.conf)).write({"srs.conf": text.encode()})

    def seed_image_html(self) -> None:
        if self.srs_bin:
            real = Path(self.srs_bin).resolve().parent / "nginx" / "html"
            if real.is_dir():
                shutil.copytree(real, self.image_html)
                self.say(f"using the html of the real SRS at {real}")
                return
        for rel, body in {
            "index.html": "<html><body>SRS (demo stand-in html)</body></html>\n",
            "favicon.ico": "\0" * 64,
            "crossdomain.xml": "<cross-domain-policy/>\n",
            "console/index.html": "<html>console</html>\n",
            "players/srs_player.html": "<html>player</html>\n",
            "demos/index.html": "<html>demos</html>\n",
        }.items():
            path = self.image_html / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(body)
        (self.image_html.parent / "html.version").write_text("demo-1\n")

    def run(self) -> int:
        if self.sandbox.exists():
            shutil.rmtree(self.sandbox)
        for d in (self.conf, self.html, self.run_dir, self.logs):
            d.mkdir(parents=True)
        srs_what = f"real SRS at {self.srs_bin}" if self.srs_bin else "the SRS stand-in"
        print(f"srs-agents demo: a pod in {self.sandbox}, SRS = {srs_what}")

        self.step("init container: copy-html seeds the shared html volume")
        self.seed_image_html()
        self.agent("copy-html", "--from", str(self.image_html), "--to", str(self.html))
        self.say("again, as the next pod's init container would (nothing to write):")
        self.agent("copy-html", "--from", str(self.image_html), "--to", str(self.html))

        self.step("the ConfigMap lands in the config volume (kubelet layout), check-config")
        self.write_config()
        self.say("conf/: " + " ".join(sorted(os.listdir(self.conf))))
        self.agent("check-config", str(self.conf / "srs.conf"))

        self.step("SRS starts")
        srs_argv = [self.srs_bin] if self.srs_bin else [sys.executable, str(STANDIN)]
        self.start("srs", [*srs_argv, "-c", str(self.conf / "srs.conf")])
        deadline = time.monotonic() + 15
        while True:
            try:
                version = json.loads(
                    self.get(f"http://127.0.0.1:{self.ports['api']}/api/v1/versions")
                )
                break
            except (OSError, urllib.error.URLError, ValueError):
                if time.monotonic() > deadline or self.procs["srs"].poll() is not None:
                    raise SystemExit("demo: SRS did not come up; see logs/srs.log") from None
                time.sleep(0.1)
        self.say(f"SRS {version['data']['version']} answers on 127.0.0.1:{self.ports['api']}")

        self.step("the sidecar starts: reload + exporter + ops server in one process")
        self.start(
            "sidecar",
            [
                *AGENT,
                "sidecar",
                "--log-format",
                "text",
                "--config-dir",
                str(self.conf),
                "--srs-api",
                f"http://127.0.0.1:{self.ports['api']}",
                "--listen",
                f"127.0.0.1:{self.ops_port}",
                "--srs-process",
                self.srs_regex(),
                "--drain-state-file",
                str(self.run_dir / "drain.json"),
            ],
        )
        self.show_log("sidecar", must="watching config")
        deadline = time.monotonic() + 10
        while True:
            try:
                ready = self.get(f"http://127.0.0.1:{self.ops_port}/readyz")
                break
            except (OSError, urllib.error.URLError):
                if time.monotonic() > deadline:
                    raise SystemExit("demo: the sidecar is not ready; see logs") from None
                time.sleep(0.1)
        self.say(f"/readyz: {ready}")

        if not self.srs_bin:
            self.step("viewers arrive: 2 publishers, 3 players (the stand-in's TCP clients)")
            for stream, players in (("camera1", 2), ("camera2", 1)):
                self.sockets.append(self.client("PUBLISH", stream))
                self.sockets.extend(self.client("PLAY", stream) for _ in range(players))
            time.sleep(1.2)  # past the exporter's --cache-ttl (1s)
            for line in self.metrics("srs_up", "srs_streams", "srs_clients ", "srs_stream_clients"):
                self.say(line)

        self.step("someone edits the ConfigMap: hls_fragment 2 -> 4 (a valid change)")
        self.fragment = 4
        self.write_config()
        # SRS applies a reload on its next one-second tick; the agent waits for its word.
        self.show_log("sidecar", must="SRS reloaded")
        for line in self.metrics(
            'srs_agent_reloads_total{result="success"}',
            "srs_agent_config_change_to_reload_seconds_sum",
            "srs_agent_config_change_to_reload_seconds_count",
        ):
            self.say(line)

        self.step("a broken edit (missing ';'): gated, SRS is never signalled")
        good = CONFIG.format(**self.ports, run=self.run_dir, html=self.html, fragment=self.fragment)
        self.write_config(good.replace("hls_window      10;", "hls_window      10"))
        self.show_log("sidecar", must="invalid")

        self.step("a change SRS 6 cannot reload (root listen): reported, not applied")
        self.write_config(
            good.replace(f"127.0.0.1:{self.ports['rtmp']};", f"127.0.0.1:{free_port()};", 1)
        )
        self.show_log("sidecar", must="listen")
        self.say("the fix (back to the running config) clears it:")
        self.write_config(good)
        time.sleep(0.5)
        self.show_log("sidecar")

        self.step("cleanup --once over the html volume (files left by a crash 4 days ago)")
        old = time.time() - 4 * 86400
        for rel in (
            "live/old-0.ts",
            "live/old-1.ts.tmp",
            "live/old.m3u8",
            "live/old.1795718081416.flv.tmp",
            "live/old.1795718081416.flv",
        ):
            path = self.html / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"x" * 1000)
            os.utime(path, (old, old))
        self.agent(
            "cleanup", "--once", "--dry-run", "--roots", str(self.html), "--listen", "127.0.0.1:0"
        )
        self.agent("cleanup", "--once", "--roots", str(self.html), "--listen", "127.0.0.1:0")
        self.say("left in live/: " + " ".join(sorted(os.listdir(self.html / "live"))))

        print(f"\nOps server: http://127.0.0.1:{self.ops_port}/metrics  /healthz  /readyz")
        print(f"SRS API:    http://127.0.0.1:{self.ports['api']}/api/v1/streams/")
        if self.wait:
            print("Ctrl-C plays the pod's deletion: drain, then the sidecar stops.")
            try:
                signal.pause()
            except KeyboardInterrupt:
                print()

        self.step("pod deletion: the preStop drain (SIGQUIT, follow connections, exit)")
        if self.sockets:
            self.say("the last viewers leave 2 s after the signal")
            leaving = self.sockets[:]
            self.sockets.clear()
            closer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(2)"])
        drain = subprocess.Popen(
            [
                *AGENT,
                "drain",
                "--log-format",
                "text",
                "--grace-period",
                "30",
                "--done-file",
                str(self.run_dir / "drained"),
                "--srs-api",
                f"http://127.0.0.1:{self.ports['api']}",
                "--config-dir",
                str(self.conf),
                "--srs-process",
                self.srs_regex(),
            ],
            cwd=self.sandbox,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        if "leaving" in locals():
            closer.wait()
            for s in leaving:
                s.close()
        out, _ = drain.communicate(timeout=40)
        for line in out.splitlines():
            self.say(f"drain| {line}")
        self.say(
            f"drain exit code {drain.returncode}; SRS exit code "
            f"{self.procs['srs'].wait(timeout=10)}"
        )
        for line in self.metrics("srs_agent_drain"):
            self.say(line)
        self.procs["sidecar"].send_signal(signal.SIGTERM)
        self.say(f"sidecar exit code {self.procs['sidecar'].wait(timeout=15)}")
        print(f"\nDone. Logs of every process are in {self.logs}.")
        return 0 if drain.returncode == 0 else 1

    def client(self, verb: str, stream: str) -> socket.socket:
        s = socket.create_connection(("127.0.0.1", self.ports["rtmp"]), timeout=5)
        s.sendall(f"{verb} live/{stream}\n".encode())
        return s

    def close(self) -> None:
        for s in self.sockets:
            s.close()
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sandbox", default=str(ROOT / "demo-sandbox"))
    parser.add_argument(
        "--no-wait", action="store_true", help="run straight through instead of waiting for Ctrl-C"
    )
    args = parser.parse_args()
    demo = Demo(
        Path(args.sandbox).resolve(), os.environ.get("SRS_BIN") or None, wait=not args.no_wait
    )
    try:
        return demo.run()
    finally:
        demo.close()


if __name__ == "__main__":
    raise SystemExit(main())
