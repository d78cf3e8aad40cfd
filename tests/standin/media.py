"""The HLS and DVR files a publishing stream leaves on disk, named and timed like SRS's.

HLS (SrsHlsMuxer, srs_app_hls.cpp): the current segment is `[stream]-[seq].ts.tmp`,
renamed to `.ts` when reaped every `hls_fragment` seconds; the playlist is written to
`[stream].m3u8.temp` and renamed over `[stream].m3u8`; segments that fall out of
`hls_window` are deleted (`hls_cleanup`). DVR (SrsDvrSessionPlan): one
`[stream].[timestamp].flv.tmp` per publish, renamed to `.flv` on unpublish only.
The stand-in has no media: segment and DVR bytes are the publisher's raw bytes, padded
with MPEG-TS null packets so that no segment is empty.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

TS_NULL_PACKET = b"\x47\x1f\xff\x10" + b"\xff" * 184
FLV_HEADER = b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00"
MIN_SEGMENT_PACKETS = 10


def build_path(
    template: str, vhost: str, app: str, stream: str, when: float, *, seq: int | None = None
) -> str:
    """`srs_path_build_stream` + `srs_path_build_timestamp` for the variables in use."""
    t = time.localtime(when)
    out = (
        template.replace("[vhost]", vhost)
        .replace("[app]", app)
        .replace("[stream]", stream)
        .replace("[timestamp]", str(int(when * 1000)))
        .replace("[2006]", f"{t.tm_year:04d}")
        .replace("[01]", f"{t.tm_mon:02d}")
        .replace("[02]", f"{t.tm_mday:02d}")
        .replace("[15]", f"{t.tm_hour:02d}")
        .replace("[04]", f"{t.tm_min:02d}")
        .replace("[05]", f"{t.tm_sec:02d}")
        .replace("[999]", f"{int(when * 1000) % 1000:03d}")
    )
    if seq is not None:
        out = out.replace("[seq]", str(seq))
    return out


@dataclass
class HlsSettings:
    path: str
    m3u8_file: str
    ts_file: str
    fragment: float
    window: float
    dispose: int
    cleanup: bool


@dataclass
class Segment:
    seq: int
    path: str
    uri: str
    started: float
    duration: float = 0.0
    discontinuity: bool = False
    size: int = 0


class HlsMuxer:
    """One stream's HLS output. `now` is wall-clock seconds."""

    def __init__(
        self, vhost: str, app: str, stream: str, url: str, log: Callable[[str], None]
    ) -> None:
        self.vhost, self.app, self.stream, self.url = vhost, app, stream, url
        self.log = log
        self.settings: HlsSettings | None = None
        self.seq = 0
        self.segments: list[Segment] = []
        self.current: Segment | None = None
        self.enabled = False
        self._file: _Writable | None = None
        self._discontinuity = True
        self.m3u8_path = ""

    # --- life cycle ---
    def on_publish(self, settings: HlsSettings, now: float) -> None:
        self.settings = settings
        self.m3u8_path = os.path.join(
            settings.path, build_path(settings.m3u8_file, self.vhost, self.app, self.stream, now)
        )
        self.log(
            f"hls: win={int(settings.window * 1000)}ms, frag={int(settings.fragment * 1000)}ms, "
            f"prefix=, path={settings.path}, m3u8={settings.m3u8_file}, ts={settings.ts_file}, "
            f"tdr=1.00, aof=2.10, floor=0, clean={int(settings.cleanup)}, waitk=1, "
            f"dispose={settings.dispose * 1000}ms, dts_directly=1"
        )
        self.enabled = True
        self._discontinuity = True
        self._open_segment(now)

    def reload(self, settings: HlsSettings) -> None:
        """A reload changes fragment/window at once and marks a discontinuity."""
        self.settings = settings
        self._discontinuity = True
        if self.enabled:
            self.log(f"async reload hls {self.url}, reloading=1, reloaded=1, refreshed=1")

    def write(self, data: bytes) -> None:
        if self.current is None or self._fh is None:
            return
        self._fh.write(data)
        self.current.size += len(data)

    def tick(self, now: float) -> None:
        if not self.enabled or self.current is None or self.settings is None:
            return
        if now - self.current.started >= self.settings.fragment:
            self._reap(now)
            self._open_segment(now)

    def on_unpublish(self, now: float) -> None:
        """Reap the current segment and refresh the playlist; no #EXT-X-ENDLIST (as SRS)."""
        if not self.enabled:
            return
        if self.current is not None:
            self._reap(now)
        self.enabled = False

    def dispose(self) -> None:
        """`SrsHlsMuxer::dispose`: delete the window's segments, the .tmp and the playlist."""
        for seg in self.segments:
            _unlink(seg.path)
        self.segments = []
        if self.current is not None:
            self._close_file()
            _unlink(self.current.path + ".tmp")
            self.current = None
        _unlink(self.m3u8_path)
        self.log(f"gracefully dispose hls {self.url}")

    def abandon(self) -> None:
        """The process ends without cleanup: the .ts.tmp stays as it is."""
        self._close_file()

    # --- internals ---
    @property
    def _fh(self) -> _Writable | None:
        return self._file

    def _open_segment(self, now: float) -> None:
        assert self.settings is not None
        rel = build_path(
            self.settings.ts_file, self.vhost, self.app, self.stream, now, seq=self.seq
        )
        path = os.path.join(self.settings.path, rel)
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        uri = os.path.relpath(path, os.path.dirname(self.m3u8_path) or ".")
        self.current = Segment(self.seq, path, uri, now, discontinuity=self._discontinuity)
        self._discontinuity = False
        self.seq += 1
        self._file = _Writable(path + ".tmp")

    def _close_file(self) -> None:
        if self._fh is not None:
            self._fh.close()
        self._file = None

    def _reap(self, now: float) -> None:
        seg = self.current
        assert seg is not None and self.settings is not None
        if seg.size < MIN_SEGMENT_PACKETS * len(TS_NULL_PACKET):
            self.write(TS_NULL_PACKET * MIN_SEGMENT_PACKETS)
        self._close_file()
        seg.duration = max(0.001, now - seg.started)
        os.replace(seg.path + ".tmp", seg.path)
        self.current = None
        self.segments.append(seg)
        self._shrink()
        self._write_m3u8()

    def _shrink(self) -> None:
        """`SrsFragmentWindow::shrink` + `clear_expired`."""
        assert self.settings is not None
        duration = 0.0
        remove_index = -1
        for i in range(len(self.segments) - 1, -1, -1):
            duration += self.segments[i].duration
            if duration > self.settings.window:
                remove_index = i
                break
        expired = self.segments[: max(0, remove_index)]
        self.segments = self.segments[max(0, remove_index) :]
        if self.settings.cleanup:
            for seg in expired:
                _unlink(seg.path)

    def _write_m3u8(self) -> None:
        assert self.settings is not None
        if not self.segments:
            return
        max_duration = max(s.duration for s in self.segments)
        target = math.ceil(max(max_duration, self.settings.fragment))
        lines = [
            "#EXTM3U",
            "#EXT-X-VERSION:3",
            f"#EXT-X-MEDIA-SEQUENCE:{self.segments[0].seq}",
            f"#EXT-X-TARGETDURATION:{target}",
        ]
        for seg in self.segments:
            if seg.discontinuity:
                lines.append("#EXT-X-DISCONTINUITY")
            lines.append(f"#EXTINF:{int(seg.duration * 1000) / 1000.0:.3f}, no desc")
            lines.append(seg.uri)
        temp = self.m3u8_path + ".temp"
        os.makedirs(os.path.dirname(temp) or ".", exist_ok=True)
        with open(temp, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
        os.replace(temp, self.m3u8_path)


class DvrSession:
    """`dvr_plan session`: one file per publish, finalized only by an unpublish."""

    def __init__(
        self,
        template: str,
        vhost: str,
        app: str,
        stream: str,
        now: float,
        *,
        log: Callable[[str], None],
    ) -> None:
        self.path = build_path(template, vhost, app, stream, now)
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        self._file: _Writable | None = _Writable(self.path + ".tmp")
        log(f"dvr stream {stream} to file {self.path}")

    def write(self, data: bytes) -> None:
        if self._file is not None:
            if self._file.size == 0:
                self._file.write(FLV_HEADER)
            self._file.write(data)

    def close(self) -> None:
        """Unpublish: `.flv.tmp` becomes `.flv`."""
        if self._file is None:
            return
        if self._file.size == 0:
            self._file.write(FLV_HEADER)
        self._file.close()
        self._file = None
        os.replace(self.path + ".tmp", self.path)

    def abandon(self) -> None:
        """Quit or crash with the publisher still connected: `.flv.tmp` stays."""
        if self._file is not None:
            self._file.close()
            self._file = None


class _Writable:
    """An append-only file that is flushed on every write, like SRS's unbuffered writer."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        self.size = 0

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.write(self.fd, view)
            view = view[n:]
        self.size += len(data)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _unlink(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
