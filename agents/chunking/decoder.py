"""PyAV adapter: probe a video and take keyframe images at planned times.

Decode failures are wrapped in :class:`VideoDecodeError` subclasses with readable reasons.
Up to ``MAX_CONSECUTIVE_BAD_PACKETS`` corrupt packets in a row are tolerated (as PySceneDetect
does); a stream that ends well before its declared duration is reported as truncated.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import av
import av.error
from PIL import Image

from agents.chunking.strip import StripBuilder

MAX_CONSECUTIVE_BAD_PACKETS = 8
# A stream whose last packet ends this much before its declared duration is truncated.
TRUNCATION_TOLERANCE_S = 1.0
JPEG_QUALITY = 88


class VideoDecodeError(Exception):
    """Root of the decoder's errors; all are permanent for the given bytes."""


class UnreadableVideo(VideoDecodeError):
    pass


class NoVideoStream(VideoDecodeError):
    pass


class TruncatedVideo(VideoDecodeError):
    pass


class CorruptVideo(VideoDecodeError):
    pass


@dataclass(frozen=True)
class VideoProbe:
    duration: float
    width: int
    height: int
    frame_rate: float | None
    codec: str
    keyframe_times: tuple[float, ...]
    packet_count: int
    # Presentation time of the first frame. Every other time here is relative to it, so that
    # 0 s is the first frame even in streams that start late (MPEG-PS often starts at 0.5 s).
    origin: float = 0.0


@dataclass(frozen=True)
class Keyframe:
    time: float
    jpeg: bytes
    width: int
    height: int


def _open(path: Path) -> av.container.InputContainer:
    try:
        return av.open(str(path), mode="r")
    except FileNotFoundError as exc:
        raise UnreadableVideo(f"{path}: no such file") from exc
    except PermissionError as exc:
        raise UnreadableVideo(f"{path}: permission denied") from exc
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as exc:
        raise UnreadableVideo(f"{path}: not a readable video ({exc})") from exc


def probe(path: Path) -> VideoProbe:
    """Read the container's packet index without decoding pixels."""
    with _open(path) as container:
        if not container.streams.video:
            raise NoVideoStream(f"{path}: the file has no video stream")
        stream = container.streams.video[0]
        time_base = stream.time_base
        if time_base is None:
            raise UnreadableVideo(f"{path}: the video stream has no time base")
        declared = None
        if stream.duration:
            declared = float(stream.duration * time_base)
        elif container.duration:
            declared = container.duration / av.time_base
        keyframes: list[float] = []
        count, last_end, first = 0, 0.0, float("inf")
        try:
            for packet in container.demux(stream):
                if packet.pts is None:
                    continue
                count += 1
                t = float(packet.pts * time_base)
                first = min(first, t)
                if packet.is_keyframe:
                    keyframes.append(t)
                length = float(packet.duration * time_base) if packet.duration else 0.0
                last_end = max(last_end, t + length)
        except av.error.FFmpegError as exc:
            raise CorruptVideo(f"{path}: demuxing failed after {count} packets ({exc})") from exc
        if count == 0:
            raise CorruptVideo(f"{path}: the video stream holds no packets")
        origin = max(0.0, first)
        last_end -= origin
        duration = declared if declared else last_end
        if declared and last_end < declared - TRUNCATION_TOLERANCE_S:
            raise TruncatedVideo(
                f"{path}: truncated: video data ends at {last_end:.2f}s "
                f"of a declared {declared:.2f}s"
            )
        rate = float(stream.average_rate) if stream.average_rate else None
        return VideoProbe(
            duration=duration,
            width=stream.codec_context.width,
            height=stream.codec_context.height,
            frame_rate=rate,
            codec=stream.codec_context.name,
            keyframe_times=tuple(round(t - origin, 6) for t in keyframes),
            packet_count=count,
            origin=origin,
        )


def _frames(container: av.container.InputContainer, path: Path) -> Iterator[av.VideoFrame]:
    stream = container.streams.video[0]
    # Frame and slice threads: the same frames in the same order (the demuxer's final empty
    # packet flushes the ones still in flight), about 1.5x sooner for 720p H.264 and VP8 on two
    # cores, for the same CPU time (docs/benchmarks.md "Chunking throughput").
    stream.thread_type = "AUTO"
    bad_in_a_row = 0
    for packet in container.demux(stream):
        try:
            frames = packet.decode()
        except av.error.FFmpegError as exc:
            bad_in_a_row += 1
            if bad_in_a_row > MAX_CONSECUTIVE_BAD_PACKETS:
                raise CorruptVideo(
                    f"{path}: more than {MAX_CONSECUTIVE_BAD_PACKETS} corrupt packets in a row "
                    f"({exc})"
                ) from exc
            continue
        bad_in_a_row = 0
        yield from frames


def scaled_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """The size that fits ``max_side`` keeping the aspect ratio (even numbers for swscale)."""
    longest = max(width, height)
    if longest <= max_side:
        return width, height
    scale = max_side / longest
    return max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)


def _encode(frame: av.VideoFrame, max_side: int, time: float) -> Keyframe:
    # Scaling in swscale while converting to RGB is several times cheaper than converting at
    # full size and resizing in Pillow.
    width, height = scaled_size(frame.width, frame.height, max_side)
    image: Image.Image = frame.to_image(width=width, height=height)
    if frame.rotation:
        # The display matrix's angle is counter-clockwise, as PIL's rotate() is (phone clips).
        image = image.rotate(frame.rotation, expand=True)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return Keyframe(
        time=time,
        jpeg=buffer.getvalue(),
        width=image.width,
        height=image.height,
    )


def take_keyframes(
    path: Path,
    times: Sequence[float],
    max_side: int,
    strip: StripBuilder | None = None,
    origin: float = 0.0,
) -> list[Keyframe]:
    """Decode once, front to back, keeping the first frame at or after each requested time,
    and, with ``strip``, a tiny thumbnail of every frame (for shot detection). Times are
    relative to ``origin``, the first frame's presentation time (see :class:`VideoProbe`)."""
    groups = keyframes_by_span(path, [sorted(times)], [float("inf")], max_side, strip, origin)
    return [frame for group in groups for frame in group]


def keyframes_by_span(
    path: Path,
    times_per_span: Sequence[Sequence[float]],
    span_ends: Sequence[float],
    max_side: int,
    strip: StripBuilder | None = None,
    origin: float = 0.0,
) -> Iterator[list[Keyframe]]:
    """:func:`take_keyframes` for consecutive spans (chunks), yielding each span's keyframes as
    soon as the decoder has passed the span's end, so that a chunk can be analysed while the
    rest of the video is still decoding. With ``strip``, every frame before the end is in the
    strip by then. ``times_per_span`` must be ascending across spans.

    Scaling and JPEG encoding run on a helper thread (both release the GIL) so that they
    overlap with decoding instead of adding to it.
    """
    wanted = [t for times in times_per_span for t in times]
    if any(b < a for a, b in itertools.pairwise(wanted)):
        raise ValueError("keyframe times must be ascending across spans")
    bounds = list(itertools.accumulate(len(times) for times in times_per_span))
    if not wanted and strip is None:
        for _ in times_per_span:
            yield []
        return
    picked: list[Future[Keyframe]] = []
    span = 0

    def ready(last_time: float) -> bool:
        # A span is complete once its keyframes are picked and (for the strip) the decoder
        # has reached its end.
        return (
            span < len(bounds)
            and len(picked) >= bounds[span]
            and (strip is None or last_time + 1e-3 >= span_ends[span])
        )

    def emit() -> list[Keyframe]:
        nonlocal span
        begin = bounds[span - 1] if span else 0
        span += 1
        return [future.result() for future in picked[begin : bounds[span - 1]]]

    with _open(path) as container, ThreadPoolExecutor(1, "keyframe-encoder") as encoder:
        if not container.streams.video:
            raise NoVideoStream(f"{path}: the file has no video stream")
        last: av.VideoFrame | None = None
        last_time = 0.0
        for frame in _frames(container, path):
            if frame.time is None:
                continue
            last, last_time = frame, float(frame.time) - origin
            if strip is not None:
                strip.append(frame, last_time)
            if len(picked) < len(wanted) and last_time + 1e-3 >= wanted[len(picked)]:
                encoded = encoder.submit(_encode, frame, max_side, round(last_time, 6))
                # Several requested times may fall before the next frame (low frame rates).
                while len(picked) < len(wanted) and last_time + 1e-3 >= wanted[len(picked)]:
                    picked.append(encoded)
            while ready(last_time):
                yield emit()
            if span == len(bounds):
                break
        if len(picked) < len(wanted):
            if last is None:
                raise CorruptVideo(f"{path}: no frame could be decoded")
            missing = len(wanted) - len(picked)
            if wanted[len(picked)] - last_time > TRUNCATION_TOLERANCE_S:
                raise TruncatedVideo(
                    f"{path}: truncated: frames end at {last_time:.2f}s, "
                    f"{missing} keyframe(s) after that could not be taken"
                )
            final = encoder.submit(_encode, last, max_side, round(last_time, 6))
            picked.extend([final] * missing)
        while span < len(bounds):
            yield emit()
