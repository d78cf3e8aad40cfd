"""The statistics SRS serves on /api/v1/{vhosts,streams,clients}/ and /metrics.

A port of `SrsStatistic` (trunk/src/app/srs_app_statistic.cpp, SRS 6.0.155): the same
objects, the same counting rules (a stream's `clients` counts its publisher and every
player; a stream without publisher and clients is removed at once; vhosts are never
removed), the same id-ordered paging (`std::map` iterates ids in sorted order), and the
same 30 s rate windows (`SrsPps`: a rate is 0 until 30 s have passed, then refreshed every
30 s). Pure: time is passed in; the server feeds it bytes and events.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from tests.standin.srsconf import atoi
from tests.standin.srsjson import JsonValue

ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"

ERROR_SUCCESS = 0
ERROR_RTMP_VHOST_NOT_FOUND = 2014
ERROR_RTMP_STREAM_NOT_FOUND = 2048
ERROR_RTMP_CLIENT_NOT_FOUND = 2049

# Client types (SrsRtmpConnType) and whether they publish.
PUBLISH_TYPES = frozenset(
    {"fmle-publish", "flash-publish", "haivision-publish", "rtc-publish", "srt-publish"}
)


def random_str(rng: random.Random, length: int) -> str:
    """`srs_random_str`: the ids SRS gives to clients, services and reloads."""
    return "".join(rng.choice(ALPHABET) for _ in range(length))


def generate_vid(rng: random.Random) -> str:
    """`srs_generate_stat_vid`: `vid-` and 7 characters, for vhosts, streams, servers."""
    return "vid-" + random_str(rng, 7)


def stream_url(vhost: str, app: str, stream: str) -> str:
    """`srs_generate_stream_url`: the default vhost is left out, any extension dropped."""
    name = stream.rsplit(".", 1)[0] if "." in stream else stream  # srs_path_filename
    prefix = "" if vhost == "__defaultVhost__" else vhost
    return f"{prefix}/{app}/{name}"


class RateSample:
    """`SrsRateSample` driven like `SrsPps::update` for the 30 s window."""

    WINDOW = 30.0

    def __init__(self) -> None:
        self.total = -1
        self.time = -1.0
        self.rate = 0

    def update(self, total: int, now: float) -> None:
        if self.time < 0 or total < self.total:
            self.total, self.time, self.rate = total, now, 0
        if now - self.time >= self.WINDOW:
            elapsed_ms = max(1, int((now - self.time) * 1000))
            rate = (total - self.total) * 1000 // elapsed_ms
            if rate == 0 and total > self.total:
                rate = 1
            self.total, self.time, self.rate = total, now, rate


class Traffic:
    """Bytes received and sent, real and synthetic, with their 30 s kbps (`SrsKbps`).

    Real bytes are added as they flow. Synthetic load (`--fake-streams`) is a constant
    rate since a start time: bytes(now) = rate * (now - start), kept as sums so that an
    aggregate (stream, vhost, server) can carry the rates of many clients.
    """

    def __init__(self) -> None:
        self.recv = 0
        self.send = 0
        self._recv_rate = 0.0
        self._recv_offset = 0.0
        self._send_rate = 0.0
        self._send_offset = 0.0
        self._recv_sample = RateSample()
        self._send_sample = RateSample()

    def add(self, recv: int = 0, send: int = 0) -> None:
        self.recv += recv
        self.send += send

    def add_rates(self, recv_rate: float, send_rate: float, since: float) -> None:
        self._recv_rate += recv_rate
        self._recv_offset += recv_rate * since
        self._send_rate += send_rate
        self._send_offset += send_rate * since

    def remove_rates(self, recv_rate: float, send_rate: float, since: float, now: float) -> None:
        """Stop a synthetic rate, keeping the bytes it produced."""
        self.recv += int(recv_rate * (now - since))
        self.send += int(send_rate * (now - since))
        self._recv_rate -= recv_rate
        self._recv_offset -= recv_rate * since
        self._send_rate -= send_rate
        self._send_offset -= send_rate * since

    def recv_bytes(self, now: float) -> int:
        return self.recv + max(0, int(self._recv_rate * now - self._recv_offset))

    def send_bytes(self, now: float) -> int:
        return self.send + max(0, int(self._send_rate * now - self._send_offset))

    def prime(self, now: float) -> None:
        """Start the windows 30 s in the past, so a synthetic rate shows at once."""
        past = now - RateSample.WINDOW
        self._recv_sample, self._send_sample = RateSample(), RateSample()
        self._recv_sample.update(self.recv_bytes(past), past)
        self._send_sample.update(self.send_bytes(past), past)
        self.sample(now)

    def sample(self, now: float) -> None:
        self._recv_sample.update(self.recv_bytes(now), now)
        self._send_sample.update(self.send_bytes(now), now)

    def kbps(self) -> tuple[int, int]:
        """(recv_30s, send_30s) in kbps, as `get_recv_kbps_30s` computes them."""
        return self._recv_sample.rate * 8 // 1000, self._send_sample.rate * 8 // 1000


@dataclass(frozen=True)
class StreamRef:
    """What a client asked for (`SrsRequest`): vhost, app, stream (with any extension)."""

    vhost: str
    app: str
    stream: str
    tc_url: str
    ip: str


@dataclass
class VideoInfo:
    codec: str = "H264"
    profile: str = "Other"
    level: str = "1.3"
    width: int = 320
    height: int = 240


@dataclass
class AudioInfo:
    codec: str = "AAC"
    sample_rate: int = 44100
    channel: int = 2
    profile: str = "LC"


@dataclass
class Vhost:
    id: str
    name: str
    nb_clients: int = 0
    nb_streams: int = 0
    traffic: Traffic = field(default_factory=Traffic)


@dataclass
class Stream:
    id: str
    vhost: Vhost
    app: str
    name: str
    url: str
    tc_url: str
    nb_clients: int = 0
    active: bool = False
    publisher_id: str = ""
    video: VideoInfo | None = None
    audio: AudioInfo | None = None
    frames: int = 0
    fps: float = 0.0
    frames_since: float = 0.0
    traffic: Traffic = field(default_factory=Traffic)

    def frame_count(self, now: float) -> int:
        if self.fps <= 0:
            return self.frames
        return self.frames + int(self.fps * (now - self.frames_since))


@dataclass
class Client:
    id: str
    stream: Stream
    ip: str
    tc_url: str
    name: str
    type: str
    created: float
    page_url: str = ""
    swf_url: str = ""
    traffic: Traffic = field(default_factory=Traffic)
    kick: Callable[[], None] | None = None  # the connection's expire(); None for synthetic
    recv_rate: float = 0.0
    send_rate: float = 0.0

    @property
    def publish(self) -> bool:
        return self.type in PUBLISH_TYPES


class Statistic:
    """`SrsStatistic`: every vhost, stream and client the server knows of."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.vhosts: dict[str, Vhost] = {}
        self.rvhosts: dict[str, Vhost] = {}
        self.streams: dict[str, Stream] = {}
        self.rstreams: dict[str, Stream] = {}
        self.clients: dict[str, Client] = {}
        self.nb_clients_total = 0
        self.nb_errs = 0
        self.traffic = Traffic()

    # --- creation, as SrsStatistic::create_vhost / create_stream ---
    def create_vhost(self, name: str) -> Vhost:
        vhost = self.rvhosts.get(name)
        if vhost is None:
            vhost = Vhost(generate_vid(self.rng), name)
            self.rvhosts[name] = vhost
            self.vhosts[vhost.id] = vhost
        return vhost

    def create_stream(self, vhost: Vhost, app: str, name: str, tc_url: str) -> Stream:
        url = stream_url(vhost.name, app, name)
        stream = self.rstreams.get(url)
        if stream is None:
            stream = Stream(generate_vid(self.rng), vhost, app, name, url, tc_url)
            self.rstreams[url] = stream
            self.streams[stream.id] = stream
        return stream

    # --- events ---
    def on_client(
        self,
        client_id: str,
        ref: StreamRef,
        client_type: str,
        now: float,
        kick: Callable[[], None] | None = None,
    ) -> Client:
        vhost = self.create_vhost(ref.vhost)
        stream = self.create_stream(vhost, ref.app, ref.stream, ref.tc_url)
        client = self.clients.get(client_id)
        if client is None:
            client = Client(client_id, stream, ref.ip, ref.tc_url, ref.stream, client_type, now)
            self.clients[client_id] = client
        client.kick = kick
        client.type = client_type
        stream.nb_clients += 1
        vhost.nb_clients += 1
        self.nb_clients_total += 1
        return client

    def on_disconnect(self, client_id: str, now: float, error: bool = False) -> None:
        client = self.clients.pop(client_id, None)
        if client is None:
            return
        if client.recv_rate or client.send_rate:
            self.remove_rates(client, now)
        stream = client.stream
        stream.nb_clients -= 1
        stream.vhost.nb_clients -= 1
        if error:
            self.nb_errs += 1
        self._cleanup_stream(stream)

    def on_stream_publish(
        self,
        stream: Stream,
        publisher_id: str,
        now: float,
        *,
        video: VideoInfo | None,
        audio: AudioInfo | None,
        fps: float = 25.0,
    ) -> None:
        if stream.active:
            return
        stream.publisher_id = publisher_id
        stream.active = True
        stream.vhost.nb_streams += 1
        stream.video = video
        stream.audio = audio
        stream.fps = fps if video is not None else 0.0
        stream.frames_since = now

    def on_stream_close(self, stream: Stream, now: float) -> None:
        if not stream.active:
            return
        stream.frames = stream.frame_count(now)
        stream.fps = 0.0
        stream.video = None
        stream.audio = None
        stream.active = False
        stream.vhost.nb_streams -= 1

    def _cleanup_stream(self, stream: Stream) -> None:
        if stream.active or stream.nb_clients > 0:
            return
        self.streams.pop(stream.id, None)
        if self.rstreams.get(stream.url) is stream:
            del self.rstreams[stream.url]

    def add_bytes(self, client: Client, recv: int = 0, send: int = 0) -> None:
        """`kbps_add_delta`: a client's bytes count for its stream, vhost and the server."""
        for t in (client.traffic, client.stream.traffic, client.stream.vhost.traffic, self.traffic):
            t.add(recv, send)

    def add_rates(
        self, client: Client, recv_rate: float, send_rate: float, since: float, now: float
    ) -> None:
        """Give a client a synthetic constant rate (and its stream, vhost and server)."""
        client.recv_rate, client.send_rate = recv_rate, send_rate
        for t in (client.traffic, client.stream.traffic, client.stream.vhost.traffic, self.traffic):
            t.add_rates(recv_rate, send_rate, since)
            t.prime(now)

    def remove_rates(self, client: Client, now: float) -> None:
        since = client.created
        for t in (client.traffic, client.stream.traffic, client.stream.vhost.traffic, self.traffic):
            t.remove_rates(client.recv_rate, client.send_rate, since, now)
        client.recv_rate = client.send_rate = 0.0

    def sample(self, now: float) -> None:
        """`kbps_sample`: refresh every 30 s window that is due."""
        self.traffic.sample(now)
        for v in self.vhosts.values():
            v.traffic.sample(now)
        for s in self.streams.values():
            s.traffic.sample(now)
        for c in self.clients.values():
            c.traffic.sample(now)

    def find_stream_by_url(self, url: str) -> Stream | None:
        return self.rstreams.get(url)

    # --- JSON, as the dumps() methods; `api_version` trims what SRS 4 did not have ---
    def dump_vhost(
        self, vhost: Vhost, now: float, hls_enabled: bool, enabled: bool, hls_fragment: float
    ) -> dict[str, JsonValue]:
        recv_kbps, send_kbps = vhost.traffic.kbps()
        hls: dict[str, JsonValue] = {"enabled": hls_enabled}
        if hls_enabled:
            hls["fragment"] = float(int(hls_fragment * 1000) / 1000.0)
        return {
            "id": vhost.id,
            "name": vhost.name,
            "enabled": enabled,
            "clients": vhost.nb_clients,
            "streams": vhost.nb_streams,
            "send_bytes": vhost.traffic.send_bytes(now),
            "recv_bytes": vhost.traffic.recv_bytes(now),
            "kbps": {"recv_30s": recv_kbps, "send_30s": send_kbps},
            "hls": hls,
        }

    def dump_stream(self, stream: Stream, now: float, api_version: int) -> dict[str, JsonValue]:
        recv_kbps, send_kbps = stream.traffic.kbps()
        obj: dict[str, JsonValue] = {
            "id": stream.id,
            "name": stream.name,
            "vhost": stream.vhost.id,
            "app": stream.app,
        }
        if api_version >= 5:
            obj["tcUrl"] = stream.tc_url
            obj["url"] = stream.url
        publish: dict[str, JsonValue] = {"active": stream.active}
        if stream.publisher_id or api_version < 5:
            publish["cid"] = stream.publisher_id
        video: JsonValue = None
        if stream.video is not None:
            video = {
                "codec": stream.video.codec,
                "profile": stream.video.profile,
                "level": stream.video.level,
                "width": stream.video.width,
                "height": stream.video.height,
            }
        audio: JsonValue = None
        if stream.audio is not None:
            audio = {
                "codec": stream.audio.codec,
                "sample_rate": stream.audio.sample_rate,
                "channel": stream.audio.channel,
                "profile": stream.audio.profile,
            }
        obj.update(
            {
                "live_ms": int(now * 1000),
                "clients": stream.nb_clients,
                "frames": stream.frame_count(now),
                "send_bytes": stream.traffic.send_bytes(now),
                "recv_bytes": stream.traffic.recv_bytes(now),
                "kbps": {"recv_30s": recv_kbps, "send_30s": send_kbps},
                "publish": publish,
                "video": video,
                "audio": audio,
            }
        )
        return obj

    def dump_client(self, client: Client, now: float, api_version: int) -> dict[str, JsonValue]:
        recv_kbps, send_kbps = client.traffic.kbps()
        alive_ms = int((now - client.created) * 1000)
        obj: dict[str, JsonValue] = {
            "id": client.id,
            "vhost": client.stream.vhost.id,
            "stream": client.stream.id,
            "ip": client.ip,
            "pageUrl": client.page_url,
            "swfUrl": client.swf_url,
            "tcUrl": client.tc_url,
            "url": client.stream.url,
        }
        if api_version >= 5:
            obj["name"] = client.name
        obj.update(
            {
                "type": client.type,
                "publish": client.publish,
                "alive": alive_ms / 1000.0,
            }
        )
        if api_version >= 5:
            obj["send_bytes"] = client.traffic.send_bytes(now)
            obj["recv_bytes"] = client.traffic.recv_bytes(now)
        obj["kbps"] = {"recv_30s": recv_kbps, "send_30s": send_kbps}
        return obj


def page_bounds(start_text: str, count_text: str) -> tuple[int, int]:
    """The [start, end) SRS serves: start = max(0, atoi(start)), count = max(10, atoi(count)).

    `dumps_streams` loops `for (i = 0; i < start + count && ...)`: the sum is a 32-bit int.
    """
    start = max(0, atoi(start_text))
    count = max(10, atoi(count_text))
    end = (start + count) & 0xFFFFFFFF
    if end >= 2**31:
        end -= 2**32
    return start, max(start, end)
