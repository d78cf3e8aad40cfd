"""Render images/dashboard.png: the Grafana dashboard's panels, drawn from real data.

This is a rendering of the dashboard's own queries, not a Grafana screenshot. It runs,
for --minutes:
- two SRS stand-ins as two pods: `srs-origin-0` (--streams synthetic streams, a second
  vhost, real RTMP publishers and players that come and go) and `srs-edge-0` (fewer
  synthetic streams, real players); the edge stalls (SIGSTOP) for a while midway;
- `srs-agent sidecar` (reload + exporter) beside each, as in the manifests; the origin's
  with --max-streams below its stream count, so the `__other__` series shows; the
  origin's srs.conf gets a valid change, an invalid one and a fix (kubelet swaps);
- near the end the edge pod "is deleted": `srs-agent drain` quits its SRS gracefully
  while its players leave, the edge's sidecar serves the drain's figures, then stops;
- a real Prometheus server scraping them every 2 s, with `namespace`/`pod` labels.
The drawn window starts after --warmup seconds: SRS's kbps are 30 s averages, and those
of the synthetic streams settle only after their first windows.

Then it evaluates every panel's PromQL from manifests/monitoring/dashboards/srs-agents.json
against that Prometheus ($namespace=demo, $pod=.*, $__rate_interval=--rate-interval) and
draws the panels at their grid positions with matplotlib. Panels of agents that did not
run (cleanup, controller) say "No data", as Grafana would.

Run by hand:  .venv/bin/python -m tools.render_dashboard [--minutes 2] [--streams 300]
              [--out images/dashboard.png]
Needs the `prometheus` server binary (on PATH or $PROMETHEUS) and matplotlib.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD = ROOT / "manifests" / "monitoring" / "dashboards" / "srs-agents.json"
AGENT = str(Path(sys.executable).with_name("srs-agent"))
NAMESPACE = "demo"
SCRAPE = 2  # seconds

# Grafana's dark theme, approximately.
BG, PANEL, BORDER, TEXT, DIM = "#111217", "#181b1f", "#2c3235", "#ccccdc", "#8e8e9a"
PALETTE = ["#73bf69", "#f2cc0c", "#5794f2", "#ff9830", "#f2495c", "#b877d9", "#8ab8ff",
           "#fade2a", "#96d98d", "#ffb357", "#ca95e5", "#ff7383"]
COLORS = {"green": "#73bf69", "red": "#f2495c", "orange": "#ff9830", "yellow": "#fade2a"}


# ---------------------------------------------------------------------------
# The scenario
# ---------------------------------------------------------------------------


def origin_template() -> str:
    from tests.standin.harness import DEFAULT_TEMPLATE  # noqa: PLC0415 - dev-only import

    return DEFAULT_TEMPLATE + (
        "vhost live.example.com {\n    hls {\n        enabled on;\n        hls_fragment 4;\n"
        "        hls_path $html_dir;\n    }\n}\n"
    )


@dataclass
class Proc:
    """An agent or Prometheus as a real process, its output in a file."""

    name: str
    cmd: list[str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(self.cmd, stdout=out, stderr=subprocess.STDOUT)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@dataclass
class Clients:
    """Real RTMP publishers and players on a stand-in, each an asyncio task."""

    port: int
    tasks: dict[str, asyncio.Task[None]] = field(default_factory=dict)

    async def _publisher(self, target: str, kbit: int) -> None:
        _, writer = await asyncio.open_connection("127.0.0.1", self.port)
        writer.write(f"PUBLISH {target}\n".encode())
        chunk = b"\x00" * (kbit * 1000 // 8 // 4)
        try:
            while True:
                writer.write(chunk)
                await writer.drain()
                await asyncio.sleep(0.25)
        finally:
            writer.close()

    async def _player(self, target: str) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        writer.write(f"PLAY {target}\n".encode())
        try:
            while await reader.read(65536):
                pass
            await asyncio.sleep(3600)  # the stream ended: stay, as an RTMP player does
        finally:
            writer.close()

    def publish(self, key: str, target: str, kbit: int) -> None:
        self.tasks[key] = asyncio.create_task(self._publisher(target, kbit))

    def play(self, key: str, target: str) -> None:
        self.tasks[key] = asyncio.create_task(self._player(target))

    def leave(self, key: str) -> None:
        task = self.tasks.pop(key, None)
        if task is not None:
            task.cancel()

    def keys(self, prefix: str) -> list[str]:
        return [k for k in self.tasks if k.startswith(prefix)]

    async def close(self) -> None:
        for task in self.tasks.values():
            task.cancel()
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)


def prometheus_config(targets: dict[str, tuple[int, str]]) -> str:
    jobs = []
    for name, (port, pod) in targets.items():
        jobs.append(
            f"  - job_name: {name}\n"
            f"    static_configs:\n"
            f"      - targets: ['127.0.0.1:{port}']\n"
            f"        labels: {{namespace: {NAMESPACE}, pod: {pod}}}\n"
        )
    return (f"global:\n  scrape_interval: {SCRAPE}s\n  scrape_timeout: {SCRAPE}s\n"
            "scrape_configs:\n" + "".join(jobs))


def srs_conf_with(text: str, fragment: str, extra: str = "") -> str:
    """The origin's srs.conf with another default-vhost hls_fragment (and extra lines)."""
    changed = re.sub(r"(hls_fragment\s+)\S+;", rf"\g<1>{fragment};", text, count=1)
    return changed + extra


async def wait_http(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=2).read())
            return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not answer") from None
            await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def scenario(
    work: Path, args: argparse.Namespace
) -> AsyncIterator[tuple[str, float, asyncio.Task[None]]]:
    """Run everything; yield (Prometheus URL, start time, the churn task); the caller
    waits for the churn, queries, and leaves the context to stop it all."""
    from tests.kubelet import ConfigMapVolume  # noqa: PLC0415 - dev-only imports
    from tests.standin.harness import StandIn, free_port  # noqa: PLC0415

    class OriginStandIn(StandIn):
        """The stand-in reading <workdir>/conf/srs.conf, a kubelet-kept ConfigMap volume."""

        def __init__(self, workdir: Path, **kw: Any) -> None:
            super().__init__(workdir, **kw)
            self.conf_dir = self.workdir / "conf"
            self.conf_path = self.conf_dir / "srs.conf"
            self.text = ""

        def write_config(self, text: str) -> None:
            self.text = text
            ConfigMapVolume(str(self.conf_dir)).update({"srs.conf": text})

    origin = OriginStandIn(work / "origin", fake_streams=args.streams, tick=0.5,
                           template=origin_template(), start_timeout=120)
    edge = StandIn(work / "edge", fake_streams=max(10, args.streams // 5), tick=0.5,
                   start_timeout=120)
    procs: list[Proc] = []
    origin_clients = edge_clients = None
    async with origin, edge:
        ports = {name: free_port() for name in ("origin", "edge", "prom")}
        common = ["--log-format", "text", "--srs-timeout", "1s"]
        edge_run = work / "edge-run"  # the pod's shared /run/srs-agents
        edge_run.mkdir()
        procs += [
            Proc("sidecar-origin", [
                AGENT, "sidecar", "--srs-api", origin.api_url,
                "--config-dir", str(origin.conf_dir),
                "--srs-process", f"-c {origin.conf_path}( |$)", "--reload-method", "api",
                "--max-streams", str(args.streams * 2 // 3),
                "--drain-state-file", "", "--drain-done-file", "",
                "--listen", f"127.0.0.1:{ports['origin']}", *common],
                work / "sidecar-origin.log"),
            Proc("sidecar-edge", [
                AGENT, "sidecar", "--srs-api", edge.api_url, "--config-dir", str(edge.workdir),
                "--srs-process", f"-c {edge.conf_path}( |$)",
                "--drain-state-file", str(edge_run / "drain.json"),
                "--drain-done-file", str(edge_run / "drained"),
                "--listen", f"127.0.0.1:{ports['edge']}", *common],
                work / "sidecar-edge.log"),
        ]
        drain = Proc("drain-edge", [
            AGENT, "drain", "--srs-api", edge.api_url, "--config-dir", str(edge.workdir),
            "--srs-process", f"-c {edge.conf_path}( |$)", "--done-file", str(edge_run / "drained"),
            "--grace-period", "40s", "--progress-interval", "1s", *common],
            work / "drain-edge.log")
        config = work / "prometheus.yml"
        config.write_text(prometheus_config({
            "srs-agents-origin": (ports["origin"], "srs-origin-0"),
            "srs-agents-edge": (ports["edge"], "srs-edge-0"),
        }))
        prometheus = os.environ.get("PROMETHEUS") or shutil.which("prometheus") or "prometheus"
        procs.append(Proc("prometheus", [
            prometheus, f"--config.file={config}", f"--storage.tsdb.path={work / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{ports['prom']}", "--log.level=warn",
        ], work / "prometheus.log"))
        prom_url = f"http://127.0.0.1:{ports['prom']}"
        try:
            for proc in procs:
                proc.start()
            await wait_http(prom_url + "/-/ready")
            for port in (ports["origin"], ports["edge"]):
                await wait_http(f"http://127.0.0.1:{port}/readyz")
            origin_clients, edge_clients = Clients(origin.rtmp_port), Clients(edge.rtmp_port)
            await asyncio.sleep(args.warmup)
            started = time.time()
            procs.append(drain)  # started by churn(), stopped with the rest
            run = asyncio.create_task(churn(
                origin, edge, origin_clients, edge_clients, drain=drain, edge_sidecar=procs[1],
                duration=args.minutes * 60.0))
            try:
                yield prom_url, started, run
            finally:
                run.cancel()
                await asyncio.gather(run, return_exceptions=True)
        finally:
            for clients in (origin_clients, edge_clients):
                if clients is not None:
                    await clients.close()
            with contextlib.suppress(ProcessLookupError):
                os.kill(edge.pid, signal.SIGCONT)
            for proc in procs:
                proc.stop()


async def churn(origin: Any, edge: Any, oc: Clients, ec: Clients, *, drain: Proc,
                edge_sidecar: Proc, duration: float) -> None:
    """What happens during the run, at fractions of its duration."""
    rng = random.Random(7)
    base = origin.text or origin.conf_path.read_text()
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    events: list[tuple[float, Callable[[], object]]] = [
        (0.02, lambda: oc.publish("pub-cam1", "live/cam1", 5000)),
        (0.05, lambda: oc.publish("pub-cam2", "live/cam2", 4500)),
        (0.08, lambda: oc.publish("pub-cam3", "live/cam3?vhost=live.example.com", 6000)),
        (0.12, lambda: oc.publish("pub-cam4", "live/cam4?vhost=live.example.com", 800)),
        (0.10, lambda: ec.publish("pub-relay1", "live/relay1", 5000)),
        (0.30, lambda: origin.write_config(srs_conf_with(base, "4"))),
        (0.40, lambda: os.kill(edge.pid, signal.SIGSTOP)),
        (0.52, lambda: os.kill(edge.pid, signal.SIGCONT)),
        (0.58, lambda: origin.write_config(srs_conf_with(base, "4", "hls_typo_directive on;\n"))),
        (0.66, lambda: oc.leave("pub-cam2")),
        (0.72, lambda: origin.write_config(srs_conf_with(base, "3"))),
        (0.80, drain.start),  # the edge pod is deleted: preStop drains SRS
    ]
    events.sort(key=lambda e: e[0])
    done = 0
    pod_gone = False
    while (elapsed := loop.time() - t0) < duration:
        if not pod_gone and drain.proc is not None and drain.proc.poll() is not None:
            # the drain is over: the kubelet stops the pod's other containers
            await asyncio.sleep(2 * SCRAPE)
            await asyncio.to_thread(edge_sidecar.stop)
            pod_gone = True
        at = elapsed / duration
        while done < len(events) and events[done][0] <= at:
            events[done][1]()
            done += 1
        # players: cam1 ramps up then down, cam3 grows, relay1 on the edge follows cam1
        want = {
            "cam1": int(40 * min(1.0, at / 0.5)) if at < 0.8 else int(40 * (1.0 - at) * 5),
            "cam2": 12 if 0.1 < at < 0.66 else 0,
            "cam3": int(20 * at),
        }
        for stream, count in want.items():
            target = f"live/{stream}" + ("?vhost=live.example.com" if stream == "cam3" else "")
            have = oc.keys(f"play-{stream}-")
            for i in range(len(have), count):
                oc.play(f"play-{stream}-{i}-{rng.random()}", target)
            for key in have[count:]:
                oc.leave(key)
        # on the edge, players join; once the drain began they leave, two a second
        edge_want = int(25 * min(1.0, at / 0.4))
        if drain.proc is not None:
            edge_want = max(0, 25 - 2 * int(loop.time() - t0 - 0.8 * duration))
            if edge_want == 0:
                ec.leave("pub-relay1")
        have = ec.keys("play-relay1-")
        for i in range(len(have), edge_want):
            ec.play(f"play-relay1-{i}", "live/relay1")
        for key in have[edge_want:]:
            ec.leave(key)
        await asyncio.sleep(1.0)
    while done < len(events):
        events[done][1]()
        done += 1


# ---------------------------------------------------------------------------
# Queries
# ---------------------------------------------------------------------------


@dataclass
class Series:
    labels: dict[str, str]
    times: list[float]
    values: list[float]


def prom_get(base: str, path: str, params: dict[str, str]) -> Any:
    url = f"{base}{path}?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=30) as resp:
        doc = json.loads(resp.read())
    if doc.get("status") != "success":
        raise RuntimeError(f"{params.get('query')}: {doc}")
    return doc["data"]


def expand(expr: str, rate_interval: str) -> str:
    return (expr.replace("$namespace", NAMESPACE).replace("$pod", ".*")
            .replace("$__rate_interval", rate_interval))


def query_range(base: str, expr: str, start: float, end: float, step: float) -> list[Series]:
    data = prom_get(base, "/api/v1/query_range", {
        "query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"})
    out = []
    for item in data["result"]:
        times = [float(t) for t, _ in item["values"]]
        values = [float(v) for _, v in item["values"]]
        out.append(Series(item["metric"], times, values))
    return out


def query_instant(base: str, expr: str, at: float) -> list[Series]:
    data = prom_get(base, "/api/v1/query", {"query": expr, "time": f"{at:.3f}"})
    if data["resultType"] == "scalar":
        return [Series({}, [float(data["result"][0])], [float(data["result"][1])])]
    return [Series(item["metric"], [float(item["value"][0])], [float(item["value"][1])])
            for item in data["result"]]


def legend(fmt: str, labels: dict[str, str]) -> str:
    if not fmt:
        return "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), fmt)


# ---------------------------------------------------------------------------
# Drawing
# ---------------------------------------------------------------------------


def human(value: float, unit: str) -> str:
    """A value as Grafana would show it, roughly."""
    if math.isnan(value):
        return "NaN"
    if unit == "percent":
        return f"{value:.1f}%"
    if unit == "s":
        if abs(value) >= 3600:
            return f"{value / 3600:.1f} h"
        if abs(value) >= 60:
            return f"{value / 60:.1f} min"
        return f"{value * 1000:.0f} ms" if abs(value) < 1 and value else f"{value:.2f} s"
    prefixes = [(1e9, "G"), (1e6, "M"), (1e3, "k")]
    if unit == "bytes":
        for power, prefix in ((1 << 30, "Gi"), (1 << 20, "Mi"), (1 << 10, "Ki")):
            if abs(value) >= power:
                return f"{value / power:.1f} {prefix}B"
        return f"{value:.0f} B"
    suffix = {"bps": "b/s"}.get(unit, "")
    for size, prefix in prefixes:
        if abs(value) >= size:
            return f"{value / size:.2f} {prefix}{suffix}".rstrip()
    return f"{value:.3g} {suffix}".rstrip() if value % 1 else f"{value:.0f} {suffix}".rstrip()


def threshold_color(panel: dict[str, Any], value: float) -> str:
    steps = panel.get("fieldConfig", {}).get("defaults", {}).get("thresholds", {}).get("steps", [])
    color = "green"
    for step in steps:
        if step["value"] is None or value >= step["value"]:
            color = step["color"]
    return COLORS.get(color, color)


@dataclass
class Canvas:
    fig: Any
    rows: int
    top: float = 0.985
    bottom: float = 0.005
    left: float = 0.006
    right: float = 0.994

    def box(self, grid: dict[str, int]) -> tuple[float, float, float, float]:
        """(x, y, w, h) in figure fractions for a gridPos, with a small gap."""
        unit_w = (self.right - self.left) / 24
        unit_h = (self.top - self.bottom) / self.rows
        gap_w, gap_h = unit_w * 0.08, unit_h * 0.12
        x = self.left + grid["x"] * unit_w + gap_w
        w = grid["w"] * unit_w - 2 * gap_w
        h = grid["h"] * unit_h - 2 * gap_h
        y = self.top - (grid["y"] + grid["h"]) * unit_h + gap_h
        return x, y, w, h


def draw_frame(canvas: Canvas, panel: dict[str, Any]) -> tuple[float, float, float, float]:
    from matplotlib.patches import FancyBboxPatch  # noqa: PLC0415

    x, y, w, h = canvas.box(panel["gridPos"])
    canvas.fig.patches.append(FancyBboxPatch(
        (x, y), w, h, boxstyle="round,pad=0,rounding_size=0.002", transform=canvas.fig.transFigure,
        facecolor=PANEL, edgecolor=BORDER, linewidth=0.8, zorder=-1))
    canvas.fig.text(x + 0.004, y + h - 0.004, panel["title"], color=TEXT, fontsize=8.5,
                    fontweight="bold", va="top", ha="left")
    return x, y, w, h


def no_data(canvas: Canvas, x: float, y: float, w: float, h: float) -> None:
    canvas.fig.text(x + w / 2, y + h / 2 - 0.004, "No data", color=DIM, fontsize=10,
                    ha="center", va="center")


def draw_stat(canvas: Canvas, panel: dict[str, Any], series: list[Series]) -> None:
    x, y, w, h = draw_frame(canvas, panel)
    defaults = panel.get("fieldConfig", {}).get("defaults", {})
    values = [s.values[-1] for s in series if s.values]
    if not values:
        if "noValue" in defaults:
            values = [float(defaults["noValue"])]
        else:
            no_data(canvas, x, y, w, h)
            return
    value = values[0]
    text = human(value, defaults.get("unit", "short"))
    if "decimals" in defaults and defaults.get("unit", "short") == "short":
        text = f"{value:.{defaults['decimals']}f}"
    color = threshold_color(panel, value)
    spark = [s for s in series if len(s.values) > 1]
    if spark and panel.get("options", {}).get("graphMode") == "area":
        ax = canvas.fig.add_axes((x, y, w, h * 0.45))
        ax.fill_between(spark[0].times, spark[0].values, color=color, alpha=0.18, linewidth=0)
        ax.plot(spark[0].times, spark[0].values, color=color, linewidth=0.8, alpha=0.6)
        ax.set_axis_off()
        low = min(spark[0].values)
        ax.set_ylim(low - (max(spark[0].values) - low) * 0.1 - 1e-9, None)
    canvas.fig.text(x + w / 2, y + h * 0.42, text, color=color, fontsize=17, fontweight="bold",
                    ha="center", va="center")


def draw_timeseries(canvas: Canvas, panel: dict[str, Any], series: list[tuple[str, Series]],
                    window: tuple[float, float]) -> None:
    import matplotlib.dates as mdates  # noqa: PLC0415

    x, y, w, h = draw_frame(canvas, panel)
    defaults = panel.get("fieldConfig", {}).get("defaults", {})
    unit = defaults.get("unit", "short")
    if not series and "noValue" in defaults:
        series = []
    if not series:
        if "noValue" in defaults:
            canvas.fig.text(x + w / 2, y + h / 2 - 0.004, defaults["noValue"],
                            color=COLORS["green"], fontsize=17, fontweight="bold", ha="center",
                            va="center")
        else:
            no_data(canvas, x, y, w, h)
        return
    shown = series[:10]
    legend_rows = (len(shown) + 2) // 3
    unit_h = (canvas.top - canvas.bottom) / canvas.rows
    legend_h = min(h * 0.4, legend_rows * unit_h * 0.42)
    ax = canvas.fig.add_axes((x + w * 0.085, y + legend_h + unit_h * 0.7, w * 0.9,
                              h - legend_h - unit_h * 1.5))
    ax.set_facecolor(PANEL)
    step = any(panel_custom(panel).get("lineInterpolation") == "stepAfter" for _ in [0])
    for i, (name, s) in enumerate(shown):
        times = [datetime.fromtimestamp(t) for t in s.times]
        color = PALETTE[i % len(PALETTE)]
        if step:
            ax.step(times, s.values, where="post", color=color, linewidth=1.1, label=name)
        else:
            ax.plot(times, s.values, color=color, linewidth=1.1, label=name)
            if len(shown) <= 3:  # Grafana's 10 % fill, which many series turn opaque
                ax.fill_between(times, s.values, color=color, alpha=0.08, linewidth=0)
    ax.set_xlim(datetime.fromtimestamp(window[0]), datetime.fromtimestamp(window[1]))
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S"))  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(mdates.AutoDateLocator(maxticks=5))  # type: ignore[no-untyped-call]
    ax.yaxis.set_major_formatter(lambda v, _pos: human(v, unit))
    if "min" in defaults:
        ax.set_ylim(bottom=defaults["min"])
    top = max((max(s.values) for _, s in shown if s.values), default=1)
    if top <= 0:
        ax.set_ylim(top=1)
    ax.tick_params(colors=DIM, labelsize=6, length=2)
    ax.grid(color=BORDER, linewidth=0.5)
    for spine in ax.spines.values():
        spine.set_visible(False)
    columns = 3
    for i, (name, _) in enumerate(shown):
        lx = x + 0.006 + (i % columns) * (w - 0.01) / columns
        ly = y + legend_h - (i // columns) * unit_h * 0.42 - unit_h * 0.05
        canvas.fig.text(lx, ly, "▬ ", color=PALETTE[i % len(PALETTE)], fontsize=6, va="top")
        canvas.fig.text(lx + 0.008, ly, name[:38], color=TEXT, fontsize=6, va="top")


def panel_custom(panel: dict[str, Any]) -> dict[str, Any]:
    custom: dict[str, Any] = panel.get("fieldConfig", {}).get("defaults", {}).get("custom", {})
    return custom


def draw_table(canvas: Canvas, panel: dict[str, Any], rows: list[dict[str, str]],
               columns: list[str]) -> None:
    x, y, w, h = draw_frame(canvas, panel)
    if not rows:
        no_data(canvas, x, y, w, h)
        return
    unit_h = (canvas.top - canvas.bottom) / canvas.rows
    line_h = unit_h * 0.5
    widths = [1.6 if c in ("pod", "vhost") else 1.0 for c in columns]
    total = sum(widths)
    top = y + h - unit_h * 0.9
    max_rows = int((h - unit_h * 1.1) / line_h) - 1
    cx = x + 0.005
    for col, width in zip(columns, widths, strict=True):
        canvas.fig.text(cx, top, col, color=COLORS["green"] if col == "clients" else "#6e9fff",
                        fontsize=6.5, fontweight="bold", va="top")
        for r, row in enumerate(rows[:max_rows]):
            canvas.fig.text(cx, top - (r + 1) * line_h, row.get(col, ""), color=TEXT,
                            fontsize=6.5, va="top")
        cx += (w - 0.01) * width / total


def draw_row(canvas: Canvas, panel: dict[str, Any]) -> None:
    x, y, _, h = canvas.box(panel["gridPos"])
    canvas.fig.text(x, y + h / 2, panel["title"], color=TEXT, fontsize=11, fontweight="bold",
                    va="center")


def panel_rows(doc: dict[str, Any]) -> int:
    return int(max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in doc["panels"]))


def iter_panels(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield from doc["panels"]


def table_rows(base: str, panel: dict[str, Any], at: float, rate: str) -> list[dict[str, str]]:
    """Grafana's 'merge': instant results joined on their common labels."""
    keys = ("pod", "vhost", "app", "stream")
    merged: dict[tuple[str, ...], dict[str, str]] = {}
    names = panel["transformations"][1]["options"]["renameByName"]
    first = True
    for target in panel["targets"]:
        column = names.get(f"Value #{target['refId']}")
        for s in query_instant(base, expand(target["expr"], rate), at):
            key = tuple(s.labels.get(k, "") for k in keys)
            if first:
                merged[key] = {k: s.labels.get(k, "") for k in keys}
            row = merged.get(key)
            if row is None:
                continue
            if column:
                row[column] = f"{s.values[0]:.0f}"
            else:
                row.update({k: v for k, v in s.labels.items() if k not in ("namespace",)})
        first = False
    return sorted(merged.values(), key=lambda r: -float(r.get("clients", "0")))


def render(base: str, start: float, end: float, out: Path, rate: str) -> None:
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    doc = json.loads(DASHBOARD.read_text())
    rows = panel_rows(doc)
    width_in = 16.0
    height_in = rows * 0.265 + 0.6
    fig = plt.figure(figsize=(width_in, height_in), dpi=110, facecolor=BG)
    header = 0.45 / height_in
    canvas = Canvas(fig, rows, top=1 - header)
    fig.text(0.006, 1 - header * 0.45, f"{doc['title']}   ·   namespace {NAMESPACE}   ·   "
             f"{datetime.fromtimestamp(start):%H:%M:%S}–{datetime.fromtimestamp(end):%H:%M:%S}",
             color=TEXT, fontsize=12, fontweight="bold", va="center")
    fig.text(0.994, 1 - header * 0.45, "rendered from real scrapes of srs-agents by "
             "tools/render_dashboard.py — not a Grafana screenshot", color=DIM, fontsize=8,
             ha="right", va="center")
    step = float(SCRAPE)
    for panel in iter_panels(doc):
        kind = panel["type"]
        if kind == "row":
            draw_row(canvas, panel)
        elif kind == "stat":
            expr = expand(panel["targets"][0]["expr"], rate)
            draw_stat(canvas, panel, query_range(base, expr, start, end, step))
        elif kind == "timeseries":
            found: list[tuple[str, Series]] = []
            for target in panel["targets"]:
                for s in query_range(base, expand(target["expr"], rate), start, end, step):
                    found.append((legend(target.get("legendFormat", ""), s.labels), s))
            draw_timeseries(canvas, panel, found, (start, end))
        elif kind == "table":
            columns = list(panel["transformations"][1]["options"]["indexByName"])
            draw_table(canvas, panel, table_rows(base, panel, end, rate), columns)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, facecolor=BG)
    plt.close(fig)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--streams", type=int, default=300)
    parser.add_argument("--rate-interval", default="10s")
    parser.add_argument("--warmup", type=float, default=70.0,
                        help="seconds before the scenario starts (SRS's 30 s kbps windows "
                             "of the synthetic streams settle), not drawn")
    parser.add_argument("--out", type=Path, default=ROOT / "images" / "dashboard.png")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    work = Path(tempfile.mkdtemp(prefix="render-dashboard-"))
    try:
        async with scenario(work, args) as (prom, started, run):
            print(f"ran {args.warmup:g} s of warm-up; running the scenario for "
                  f"{args.minutes:g} min (work dir {work})", flush=True)
            await run
            await asyncio.sleep(2 * SCRAPE)  # the last scrapes
            render(prom, started + 4 * SCRAPE, time.time(), args.out, args.rate_interval)
        print(f"wrote {args.out}")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
