"""The exporter's pure core: one read of SRS's HTTP API -> Prometheus metric families.

No I/O here: `agents.exporter` reads SRS and hands the results in as plain values.

What shapes this module:
- SRS's built-in exporter (5.0+) has 10 global series and nothing per stream. Ours keeps
  those names with SRS's exact meaning, units and HELP text, so one dashboard works on
  both: when SRS serves its own /metrics they are passed through; otherwise (SRS 3/4, or
  the exporter off) they are computed from the same sources SRS's code uses
  (SrsGoApiMetrics::serve_http: `rss * 4` KiB, `percent * 100`, the statistic's byte
  counters, the stream and client tables).
- Stream series are bounded: at most `max_streams` streams get their own labels (most
  clients first); the rest, and streams the include/exclude globs keep out, are summed
  per vhost into one series with `app` and `stream` = `__other__`. So `sum()` over a
  stream gauge (clients, kbps, publish_active) still equals SRS's total; byte counters
  differ: see the next point.
- A sum of byte counters over a changing set of streams is not monotonic (a stream moving
  to its own series takes its bytes away), which Prometheus would read as a reset. The
  `__other__` byte counters therefore add only what each stream moved while it was
  summed there (`OtherBytes`), so they never go down.
- SRS's streams and clients name their vhost by id (`vid-...`); labels use vhost names.
"""

from __future__ import annotations

import fnmatch
import hashlib
import heapq
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from agents.srs.api import SelfProcStats, Stream, Summary, Version, Vhost, byte_totals

OTHER = "__other__"
"""`app` and `stream` label of the series that sums the streams without their own."""

LABEL_MAX = 128
"""Longest label value; longer ones are cut and end in `~` and 8 hex of their hash."""

ERROR_REASONS = ("timeout", "refused", "protocol", "api_code")
"""Why a read of SRS failed: no reply within --srs-timeout; no connection (refused,
reset, unresolvable) or a proxy's 502/503/504; a reply that is not SRS's (not JSON,
wrong shape, HTTP status other than 200, unparsable /metrics); SRS answered `code != 0`."""

STREAM_LABELS = ["vhost", "app", "stream"]
DIRECTIONS = ("receive", "send")

# SRS's built-in exporter (SrsGoApiMetrics::serve_http, 5.0 to 7.0): name, type, HELP.
BUILTIN: tuple[tuple[str, str, str], ...] = (
    ("srs_node_uname_info", "gauge",
     "Labeled system information as provided by the uname system call."),
    ("srs_build_info", "gauge",
     "A metric with a constant '1' value labeled by build_date, version from which SRS was "
     "built."),
    ("srs_cpu_percent", "gauge", "SRS cpu used percent."),
    ("srs_memory", "gauge", "SRS memory used."),
    ("srs_send_bytes_total", "counter", "SRS total sent bytes."),
    ("srs_receive_bytes_total", "counter", "SRS total received bytes."),
    ("srs_streams", "gauge", "The number of SRS concurrent streams."),
    ("srs_clients", "gauge", "The number of SRS concurrent clients."),
    ("srs_clients_total", "counter", "The total counts of SRS clients."),
    ("srs_clients_errs_total", "counter", "The total errors of SRS clients."),
)
BUILTIN_NAMES = frozenset(name for name, _, _ in BUILTIN)
_HELP = {name: help_text for name, _, help_text in BUILTIN}
_TYPE = {name: kind for name, kind, _ in BUILTIN}

# Control characters, and lone surrogates (a JSON "\ud800" escape), which UTF-8 cannot
# encode: one of them in a label would fail every scrape.
_UNSAFE = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")


# ---------------------------------------------------------------------------
# Labels and filters
# ---------------------------------------------------------------------------


def safe_label(value: str) -> str:
    """A label value that is safe and bounded: control characters and lone surrogates
    become `_`, and a value longer than LABEL_MAX is cut and given a hash suffix, so two
    long names stay apart.
    (Quotes, backslashes and newlines are escaped by the exposition format itself.)"""
    if len(value) <= LABEL_MAX and value.isprintable():
        return value  # the common case, kept cheap: it runs for every labelled stream
    text = _UNSAFE.sub("_", value)
    if len(text) <= LABEL_MAX:
        return text
    digest = hashlib.sha256(value.encode("utf-8", errors="surrogatepass")).hexdigest()[:8]
    return f"{text[:LABEL_MAX - 9]}~{digest}"


@dataclass(frozen=True)
class StreamFilter:
    """--streams-include / --streams-exclude: globs on `vhost/app/stream` (names, not ids).

    An empty include list lets every stream in; exclude wins over include. `*` also
    matches `/`, so `*/live/*` is app `live` on any vhost.
    """

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    _include: re.Pattern[str] | None = field(init=False, repr=False, compare=False)
    _exclude: re.Pattern[str] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_include", _globs(self.include))
        object.__setattr__(self, "_exclude", _globs(self.exclude))

    def allows(self, vhost: str, app: str, stream: str) -> bool:
        if self._include is None and self._exclude is None:
            return True
        path = f"{vhost}/{app}/{stream}"
        if self._include is not None and not self._include.match(path):
            return False
        return self._exclude is None or not self._exclude.match(path)


def _globs(patterns: tuple[str, ...]) -> re.Pattern[str] | None:
    if not patterns:
        return None
    return re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in patterns), re.DOTALL)


# ---------------------------------------------------------------------------
# One read of SRS
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Reading:
    """What one read of SRS's API returned; the optional parts are None when not read
    or not available (SRS before 5.0 has no /metrics; 3.0/4.0 replies lack some ids)."""

    summary: Summary
    streams: Sequence[Stream]
    vhosts: Sequence[Vhost]
    builtin: Mapping[str, Sample] | None = None  # SRS's own /metrics, parsed
    version: Version | None = None
    proc: SelfProcStats | None = None


def parse_builtin(text: str) -> dict[str, Sample]:
    """SRS's /metrics text -> its samples by name (ValueError if not parsable).

    Keyed by sample name, not family name: a parser names the counter
    `srs_clients_total` family `srs_clients`, the name of SRS's gauge. Only SRS's 10
    names are kept; anything SRS may add later is ignored.
    """
    found: dict[str, Sample] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in BUILTIN_NAMES:
                found.setdefault(sample.name, sample)
    if not found:
        raise ValueError("no srs_* series of SRS's exporter in the reply")
    return found


def _builtin_copy(name: str, sample: Sample) -> Metric:
    """SRS's sample, typed and described as SRS declares it, its labels made safe."""
    labels = {k: safe_label(v) for k, v in sample.labels.items()}
    family: Metric
    if _TYPE[name] == "counter":
        family = CounterMetricFamily(name, _HELP[name], labels=list(labels))
    else:
        family = GaugeMetricFamily(name, _HELP[name], labels=list(labels))
    family.add_metric(list(labels.values()), sample.value)
    return family


def global_families(reading: Reading) -> list[Metric]:
    """SRS's 10 built-in series: SRS's own values when it served /metrics, else computed
    from the API the way SRS computes them. What neither source has is left out."""
    parsed = reading.builtin or {}
    out: list[Metric] = []
    derived = _derived_globals(reading)
    for name, _, _ in BUILTIN:
        family = _builtin_copy(name, parsed[name]) if name in parsed else derived.get(name)
        if family is not None:
            out.append(family)
    return out


def _gauge(name: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, _HELP[name], value=value)


def _counter(name: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, _HELP[name], value=value)


def _derived_globals(reading: Reading) -> dict[str, Metric]:
    out: dict[str, Metric] = {}
    version = reading.version
    if version is not None:
        labels = {
            "server": version.server_id,
            "service": version.service_id,  # 5.0+
            "pid": version.service_pid,  # 5.0+
            "major": str(version.major),
            "version": version.version,
        }
        present = {k: safe_label(v) for k, v in labels.items() if v is not None}
        build = GaugeMetricFamily("srs_build_info", _HELP["srs_build_info"], labels=list(present))
        build.add_metric(list(present.values()), 1)
        out["srs_build_info"] = build
    # srs_get_self_proc_stat(): the same sample behind self_proc_stats and summaries.
    proc = reading.proc
    ratio = proc.percent if proc and proc.percent is not None \
        else reading.summary.process.cpu_percent
    if ratio is not None:
        out["srs_cpu_percent"] = _gauge("srs_cpu_percent", ratio * 100)
    if proc is not None and proc.rss_pages is not None:
        out["srs_memory"] = _gauge("srs_memory", proc.rss_pages * 4)  # KiB, as SRS: rss * 4
    sent, received = byte_totals(reading.vhosts)
    out["srs_send_bytes_total"] = _counter("srs_send_bytes_total", sent)
    out["srs_receive_bytes_total"] = _counter("srs_receive_bytes_total", received)
    out["srs_streams"] = _gauge("srs_streams", len(reading.streams))
    # SRS counts its client table; each client is counted once in its vhost.
    out["srs_clients"] = _gauge("srs_clients", sum(v.clients for v in reading.vhosts))
    return out


# ---------------------------------------------------------------------------
# Vhosts
# ---------------------------------------------------------------------------


def vhost_names(vhosts: Iterable[Vhost]) -> dict[str, str]:
    """vhost id -> vhost name."""
    return {v.id: v.name for v in vhosts}


def vhost_families(vhosts: Sequence[Vhost]) -> list[Metric]:
    clients = GaugeMetricFamily(
        "srs_vhost_clients", "Clients of the vhost (publishers and players, hls-play "
        "sessions included).", labels=["vhost"])
    streams = GaugeMetricFamily(
        "srs_vhost_streams", "Streams of the vhost that are publishing.", labels=["vhost"])
    sent = CounterMetricFamily(
        "srs_vhost_send_bytes_total", "Bytes SRS sent to the vhost's clients.",
        labels=["vhost"])
    received = CounterMetricFamily(
        "srs_vhost_receive_bytes_total", "Bytes SRS received from the vhost's clients.",
        labels=["vhost"])
    kbps = GaugeMetricFamily(
        "srs_vhost_kbps", "Bitrate of the vhost in kbit/s, SRS's 30 s average.",
        labels=["vhost", "direction"])
    fragment = GaugeMetricFamily(
        "srs_vhost_hls_fragment_seconds", "HLS fragment length of the vhost, as SRS runs it "
        "(changes on a successful reload); absent when HLS is off.", labels=["vhost"])
    seen: set[str] = set()
    for vhost in vhosts:
        name = safe_label(vhost.name)
        if name in seen:
            continue
        seen.add(name)
        clients.add_metric([name], vhost.clients)
        streams.add_metric([name], vhost.streams)
        sent.add_metric([name], vhost.send_bytes)
        received.add_metric([name], vhost.recv_bytes)
        kbps.add_metric([name, "receive"], vhost.kbps_recv)
        kbps.add_metric([name, "send"], vhost.kbps_send)
        if vhost.hls_enabled and vhost.hls_fragment is not None:
            fragment.add_metric([name], vhost.hls_fragment)
    families: list[Metric] = [clients, streams, sent, received, kbps]
    if fragment.samples:
        families.append(fragment)
    return families


# ---------------------------------------------------------------------------
# Streams: top N with their own labels, the rest summed per vhost
# ---------------------------------------------------------------------------


@dataclass
class OtherBytes:
    """Monotonic byte counters of the `__other__` series, per vhost label.

    Each read adds, for every stream summed in `__other__`, what it moved since it was
    last seen (all of it when first seen, or when its counter went back: a new stream
    object behind the same id). State is kept for every stream id SRS listed in the last
    read, and for one read more for those it then missed (paging can skip a stream when
    many before it go away between two requests: it must not count again from 0), so
    it stays bounded by twice SRS's own stream count.
    """

    last: dict[str, tuple[int, int]] = field(default_factory=dict)
    missed: dict[str, tuple[int, int]] = field(default_factory=dict)
    totals: dict[str, list[int]] = field(default_factory=dict)

    def update(self, streams: Sequence[Stream], others: Sequence[tuple[str, Stream]]) -> None:
        last, missed = self.last, self.missed
        for vhost, stream in others:
            total = self.totals.setdefault(vhost, [0, 0])
            before = last.get(stream.id) or missed.get(stream.id)
            if before is None or stream.send_bytes < before[0] or stream.recv_bytes < before[1]:
                before = (0, 0)
            total[0] += stream.send_bytes - before[0]
            total[1] += stream.recv_bytes - before[1]
        self.last = {s.id: (s.send_bytes, s.recv_bytes) for s in streams}
        self.missed = {sid: seen for sid, seen in last.items() if sid not in self.last}


@dataclass
class _OtherSum:
    streams: int = 0
    clients: int = 0
    kbps_recv: int = 0
    kbps_send: int = 0
    publishing: int = 0


def _rank(stream: Stream) -> tuple[int, int]:
    return stream.clients, stream.kbps_recv + stream.kbps_send


def split_streams(
    streams: Sequence[Stream],
    names: Mapping[str, str],
    max_streams: int,
    stream_filter: StreamFilter,
) -> tuple[list[tuple[tuple[str, str, str], Stream]], list[tuple[str, Stream]]]:
    """(labelled, other): at most `max_streams` streams the filter lets in, most clients
    first (then highest bitrate, then SRS's order), with their labels, sorted; every other
    stream with its vhost label. A vhost id SRS does not list keeps the id as label."""
    vhosts: dict[str, tuple[str, str]] = {}  # id -> (name, label)

    def vhost_of(stream: Stream) -> tuple[str, str]:
        found = vhosts.get(stream.vhost_id)
        if found is None:
            name = names.get(stream.vhost_id) or stream.vhost_id
            found = vhosts[stream.vhost_id] = (name, safe_label(name))
        return found

    candidates: list[Stream] = []
    others: list[tuple[str, Stream]] = []
    for stream in streams:
        name, label = vhost_of(stream)
        if max_streams > 0 and stream_filter.allows(name, stream.app, stream.name):
            candidates.append(stream)
        else:
            others.append((label, stream))
    if len(candidates) > max_streams:
        # nlargest keeps the input (SRS's) order among equals
        chosen = set(heapq.nlargest(max_streams, range(len(candidates)),
                                    key=lambda i: _rank(candidates[i])))
        others.extend((vhost_of(s)[1], s) for i, s in enumerate(candidates) if i not in chosen)
        candidates = [candidates[i] for i in sorted(chosen)]
    named = sorted((((vhost_of(s)[1], safe_label(s.app), safe_label(s.name)), s)
                    for s in candidates), key=lambda item: item[0])
    labelled: list[tuple[tuple[str, str, str], Stream]] = []
    taken: set[tuple[str, str, str]] = set()
    for labels, stream in named:
        if labels in taken or labels[1:] == (OTHER, OTHER):
            others.append((labels[0], stream))  # clash after cutting, or our own marker
            continue
        taken.add(labels)
        labelled.append((labels, stream))
    return labelled, others


class StreamSeries:
    """Stream families of successive reads; keeps the `__other__` byte counters."""

    def __init__(self, max_streams: int, stream_filter: StreamFilter) -> None:
        self.max_streams = max_streams
        self.filter = stream_filter
        self.other_bytes = OtherBytes()

    def families(self, streams: Sequence[Stream], names: Mapping[str, str]) -> list[Metric]:
        labelled, others = split_streams(streams, names, self.max_streams, self.filter)
        self.other_bytes.update(streams, others)
        sums: dict[str, _OtherSum] = {vhost: _OtherSum() for vhost in self.other_bytes.totals}
        for vhost, stream in others:
            total = sums.setdefault(vhost, _OtherSum())
            total.streams += 1
            total.clients += stream.clients
            total.kbps_recv += stream.kbps_recv
            total.kbps_send += stream.kbps_send
            total.publishing += stream.publish_active
        return _stream_families(labelled, sums, self.other_bytes.totals)


def _stream_families(
    labelled: Sequence[tuple[tuple[str, str, str], Stream]],
    sums: Mapping[str, _OtherSum],
    other_bytes: Mapping[str, list[int]],
) -> list[Metric]:
    clients = GaugeMetricFamily(
        "srs_stream_clients", "Clients of the stream: its publisher and every player, "
        "hls-play sessions included.", labels=STREAM_LABELS)
    sent = CounterMetricFamily(
        "srs_stream_send_bytes_total", "Bytes SRS sent to the stream's players (restarts at "
        "0 when the stream object is recreated).", labels=STREAM_LABELS)
    received = CounterMetricFamily(
        "srs_stream_receive_bytes_total", "Bytes SRS received for the stream (from its "
        "publisher).", labels=STREAM_LABELS)
    kbps = GaugeMetricFamily(
        "srs_stream_kbps", "Bitrate of the stream in kbit/s, SRS's 30 s average.",
        labels=[*STREAM_LABELS, "direction"])
    active = GaugeMetricFamily(
        "srs_stream_publish_active", "1 while the stream has a publisher (the __other__ "
        "series: how many of its streams do).", labels=STREAM_LABELS)
    frames = CounterMetricFamily(
        "srs_stream_video_frames_total", "Video frames SRS received for the stream; a "
        "publishing stream whose rate is 0 is frozen.", labels=STREAM_LABELS)
    info = GaugeMetricFamily(
        "srs_stream_info", "Codecs and resolution of the stream, as labels (empty while "
        "unknown).", labels=[*STREAM_LABELS, "video_codec", "video_profile", "resolution",
                             "audio_codec", "audio_sample_rate", "audio_channels"])
    folded = GaugeMetricFamily(
        "srs_exporter_streams_other", "Streams summed into the vhost's __other__ series "
        "(beyond --max-streams, or kept out by --streams-include/--streams-exclude).",
        labels=["vhost"])
    for labels, s in labelled:
        values = list(labels)
        clients.add_metric(values, s.clients)
        sent.add_metric(values, s.send_bytes)
        received.add_metric(values, s.recv_bytes)
        kbps.add_metric([*values, "receive"], s.kbps_recv)
        kbps.add_metric([*values, "send"], s.kbps_send)
        active.add_metric(values, 1 if s.publish_active else 0)
        frames.add_metric(values, s.frames)
        video, audio = s.video, s.audio
        resolution = f"{video.width}x{video.height}" if video and video.width and \
            video.height else ""
        info.add_metric([
            *values,
            safe_label(video.codec) if video else "",
            safe_label(video.profile or "") if video else "",
            resolution,
            safe_label(audio.codec) if audio else "",
            str(audio.sample_rate) if audio and audio.sample_rate else "",
            str(audio.channel) if audio and audio.channel else "",
        ], 1)
    for vhost in sorted(sums):
        total = sums[vhost]
        values = [vhost, OTHER, OTHER]
        clients.add_metric(values, total.clients)
        kbps.add_metric([*values, "receive"], total.kbps_recv)
        kbps.add_metric([*values, "send"], total.kbps_send)
        active.add_metric(values, total.publishing)
        send_total, recv_total = other_bytes.get(vhost, (0, 0))
        sent.add_metric(values, send_total)
        received.add_metric(values, recv_total)
        folded.add_metric([vhost], total.streams)
    return [clients, sent, received, kbps, active, frames, info, folded]


# ---------------------------------------------------------------------------
# The exporter's own series
# ---------------------------------------------------------------------------


def own_families(up: bool, duration: float, errors: Mapping[str, int]) -> list[Metric]:
    srs_up = GaugeMetricFamily(
        "srs_up", "1 if the last read of SRS's API succeeded (summaries, streams, vhosts), "
        "else 0 and no SRS series are exported.", value=1 if up else 0)
    took = GaugeMetricFamily(
        "srs_scrape_duration_seconds", "How long the last read of SRS's API took.",
        value=duration)
    errs = CounterMetricFamily(
        "srs_exporter_errors_total", "Failed reads of SRS's API, by reason: timeout, refused, "
        "protocol (not an SRS reply), api_code (SRS answered code != 0).", labels=["reason"])
    for reason in sorted({*ERROR_REASONS, *errors}):
        errs.add_metric([reason], errors.get(reason, 0))
    return [srs_up, took, errs]


class Model:
    """Successive readings -> the families of each scrape."""

    def __init__(self, max_streams: int, stream_filter: StreamFilter) -> None:
        self.streams = StreamSeries(max_streams, stream_filter)

    def families(self, reading: Reading) -> list[Metric]:
        """Every SRS family of one successful read (the exporter's own ones apart)."""
        names = vhost_names(reading.vhosts)
        return [
            *global_families(reading),
            *vhost_families(reading.vhosts),
            *self.streams.families(reading.streams, names),
        ]
