"""PyAV adapter: open a feed's source and copy its packets into segment files.

Sources: a local file (played at real-time pace when asked), http(s) and HLS URLs (seekable
when they declare a duration, as a file or a VOD playlist does), rtsp/rtmp/srt/udp URLs and
capture devices (``/dev/video0``), which are live. Segments are stream copies (no
re-encoding) into MP4, so cutting costs next to no CPU.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.error

from vip.live.errors import SourceDropped, SourceUnavailable

__all__ = ["OpenedSource", "SegmentWriter", "SourcePacket", "is_live_url"]

LIVE_SCHEMES = frozenset({"rtsp", "rtsps", "rtmp", "rtmps", "srt", "udp", "rtp", "tcp"})
# (open, read) timeouts in seconds: a source that stops answering is a dropped source.
TIMEOUTS_S = (10.0, 10.0)
# A seekable source whose packets end this much before its declared duration was cut short.
END_TOLERANCE_S = 1.0


def is_live_url(source: str) -> bool:
    """Whether the source can only be read as it comes (no seeking back after a drop)."""
    scheme = source.split("://", 1)[0].lower() if "://" in source else ""
    return scheme in LIVE_SCHEMES or source.startswith("/dev/video")


def _open_options(source: str) -> tuple[str | None, dict[str, str]]:
    if source.startswith("/dev/video"):
        return "v4l2", {}
    if source.lower().startswith(("rtsp://", "rtsps://")):
        return None, {"rtsp_transport": "tcp"}
    return None, {}


@dataclass(frozen=True)
class SourcePacket:
    """One demuxed packet and its presentation time in seconds on the source's clock."""

    packet: av.Packet
    time: float
    is_video: bool
    is_keyframe: bool


class OpenedSource:
    """An open source: its video stream (and first audio stream, if any), whether it can be
    sought, and its declared duration (None for live sources)."""

    def __init__(self, source: str) -> None:
        self.source = source
        fmt, options = _open_options(source)
        try:
            self._container = av.open(source, mode="r", format=fmt, options=options,
                                      timeout=TIMEOUTS_S)  # fmt: skip
        except (av.error.FFmpegError, OSError) as exc:
            raise SourceUnavailable(f"{source}: cannot be opened ({exc})") from exc
        if not self._container.streams.video:
            self._container.close()
            raise SourceUnavailable(f"{source}: has no video stream")
        self.video = self._container.streams.video[0]
        audio = self._container.streams.audio
        self.audio = audio[0] if audio else None
        declared = self._container.duration
        self.duration = declared / av.time_base if declared and declared > 0 else None
        self.seekable = not is_live_url(source) and self.duration is not None
        start = self._container.start_time
        self.start_time = start / av.time_base if start is not None else 0.0

    def seek(self, source_time: float) -> None:
        """Position the demuxer on the keyframe at or before ``source_time``."""
        target = int(source_time / float(self.video.time_base)) if self.video.time_base else 0
        try:
            self._container.seek(target, stream=self.video, backward=True, any_frame=False)
        except (av.error.FFmpegError, OSError) as exc:
            reason = f"{self.source}: seeking to {source_time:.3f}s failed ({exc})"
            raise SourceDropped(reason) from exc

    def packets(self) -> Iterator[SourcePacket]:
        streams = [s for s in (self.video, self.audio) if s is not None]
        try:
            for packet in self._container.demux(streams):
                if packet.pts is None or packet.time_base is None or packet.size == 0:
                    continue
                is_video = packet.stream is self.video
                yield SourcePacket(
                    packet=packet,
                    time=float(packet.pts * packet.time_base),
                    is_video=is_video,
                    is_keyframe=is_video and packet.is_keyframe,
                )
        except (av.error.FFmpegError, OSError) as exc:
            raise SourceDropped(f"{self.source}: reading failed ({exc})") from exc

    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> OpenedSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SegmentWriter:
    """Copies packets into one MP4 segment file whose clock starts at the segment's start."""

    def __init__(self, opened: OpenedSource, source_start: float) -> None:
        fd, name = tempfile.mkstemp(prefix="vip-live-", suffix=".mp4")
        os.close(fd)
        self.path = Path(name)
        self._output = av.open(name, mode="w", format="mp4")
        self._streams: dict[int, Any] = {}
        self._shift: dict[int, int] = {}
        for stream in (opened.video, opened.audio):
            if stream is None:
                continue
            out = self._output.add_stream_from_template(stream)
            self._streams[stream.index] = out
            base = stream.time_base or Fraction(1, 90000)
            self._shift[stream.index] = round(source_start / base)
        self.packets = 0

    def write(self, item: SourcePacket) -> None:
        packet = item.packet
        index = packet.stream.index
        out = self._streams.get(index)
        if out is None:
            return
        shift = self._shift[index]
        packet.pts = packet.pts - shift if packet.pts is not None else None
        packet.dts = packet.dts - shift if packet.dts is not None else None
        packet.stream = out
        self._output.mux(packet)
        self.packets += 1

    def finish(self) -> bytes:
        """Close the file and return its bytes (the temporary file is removed)."""
        try:
            self._output.close()
            return self.path.read_bytes()
        finally:
            self.path.unlink(missing_ok=True)

    def discard(self) -> None:
        # A half-written segment is thrown away whatever state its muxer is in.
        with contextlib.suppress(av.error.FFmpegError, OSError, ValueError):
            self._output.close()
        self.path.unlink(missing_ok=True)
