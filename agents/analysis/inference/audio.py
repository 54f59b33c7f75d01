"""Decode a media file's audio into 16 kHz mono float32 samples, the speech model's input.

Sample ``i`` of the result lies at ``(start or 0) + i / 16000`` seconds on the file's
presentation timeline, the clock of PyAV's ``frame.time`` that keyframe times use. So audio that
begins after ``start`` is preceded by silence, encoder priming before it is dropped, and gaps
in the audio's timestamps are filled with silence. The result ends where the audio ends or at
``end``, whichever comes first. The file is demuxed once, audio packets only.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Final

import av
import av.error
import numpy as np

__all__ = ["SAMPLE_RATE", "AudioDecodeError", "decode_audio_16k_mono"]

SAMPLE_RATE: Final = 16_000
MAX_CONSECUTIVE_BAD_PACKETS: Final = 8
# WebM stores millisecond timestamps, and its Vorbis frames jitter by up to 11 ms; a real gap
# is at least one missing frame (21 ms of AAC at 48 kHz, 26 ms of MP3 at 44.1 kHz).
_GAP_TOLERANCE_S: Final = 0.02
# A jump this large is a broken timestamp rather than a pause; the samples stay contiguous.
_MAX_GAP_S: Final = 60.0
# Below this start time, decoding from the top costs less than a seek and its checks.
_SEEK_FROM_S: Final = 5.0
# Decoding starts this long before ``start`` after a seek: AAC and MP3 frames overlap their
# neighbours, so the first frames after a seek come out wrong.
_PREROLL_S: Final = 0.5


class AudioDecodeError(RuntimeError):
    """The file cannot be opened, or its audio stream is corrupt beyond repair."""


class _SeekOvershot(Exception):
    """The demuxer's seek landed after the wanted time; decode from the top instead."""


class _Timeline:
    """Output samples placed by index from ``start``; what falls before 0 or at ``limit`` and
    beyond is dropped."""

    def __init__(self, limit: int | None) -> None:
        self.position = 0
        self.limit = limit
        self.started = False
        self._parts: list[np.ndarray] = []

    @property
    def full(self) -> bool:
        return self.limit is not None and self.position >= self.limit

    def begin_at(self, index: int) -> None:
        """Place the first sample; a negative index drops that many samples."""
        self.started = True
        if index > 0:
            self._advance(index, None)
        else:
            self.position = index

    def silence_until(self, index: int) -> None:
        if index > self.position:
            self._advance(index - self.position, None)

    def write(self, samples: np.ndarray) -> None:
        self._advance(len(samples), samples)

    def _advance(self, count: int, samples: np.ndarray | None) -> None:
        first = self.position
        self.position += count
        low = max(0, -first)
        high = count if self.limit is None else min(count, self.limit - first)
        if high <= low:
            return
        if samples is None:
            self._parts.append(np.zeros(high - low, dtype=np.float32))
        else:
            self._parts.append(samples[low:high])

    def samples(self) -> np.ndarray:
        if not self._parts:
            return np.zeros(0, dtype=np.float32)
        return np.concatenate(self._parts).astype(np.float32, copy=False)


def decode_audio_16k_mono(
    path: Path, start: float | None = None, end: float | None = None
) -> np.ndarray:
    """The first audio stream of ``path`` between ``start`` and ``end`` seconds, as float32
    samples at 16 kHz, channels mixed down to mono; an empty array when there is no audio."""
    origin = 0.0 if start is None else float(start)
    if origin < 0 or (end is not None and end < origin):
        raise ValueError(f"need 0 <= start <= end, got start={start} end={end}")
    limit = None if end is None else round((end - origin) * SAMPLE_RATE)
    with _open(path) as container:
        if not container.streams.audio:
            return np.zeros(0, dtype=np.float32)
        stream = container.streams.audio[0]
        if origin >= _SEEK_FROM_S and stream.time_base is not None:
            target = int((origin - _PREROLL_S) / stream.time_base)
            container.seek(target, stream=stream, backward=True)
            try:
                return _decode(container, stream, path, origin, limit, seeked=True)
            except _SeekOvershot:
                container.seek(0, stream=stream, backward=True)
        return _decode(container, stream, path, origin, limit, seeked=False)


def _open(path: Path) -> av.container.InputContainer:
    try:
        return av.open(str(path), mode="r")
    except FileNotFoundError as exc:
        raise AudioDecodeError(f"{path}: no such file") from exc
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as exc:
        raise AudioDecodeError(f"{path}: not a readable media file ({exc})") from exc


def _decode(
    container: av.container.InputContainer,
    stream: av.AudioStream,
    path: Path,
    origin: float,
    limit: int | None,
    *,
    seeked: bool,
) -> np.ndarray:
    timeline = _Timeline(limit)
    resampler: av.AudioResampler | None = None
    input_kind: tuple[str, str, int] | None = None
    expected: float | None = None  # where the next frame should start, in seconds
    for frame in _frames(container, stream, path):
        if timeline.full:
            break
        time = frame.time if frame.time is not None else expected
        if not timeline.started:
            time = 0.0 if time is None else time
            if seeked and time > origin + _GAP_TOLERANCE_S:
                raise _SeekOvershot
            timeline.begin_at(round((time - origin) * SAMPLE_RATE))
        elif time is not None and expected is not None:
            if _GAP_TOLERANCE_S < time - expected < _MAX_GAP_S:
                # Flush what the resampler holds so that it lands before the silence.
                _drain(resampler, None, timeline)
                resampler = None
                timeline.silence_until(round((time - origin) * SAMPLE_RATE))
            else:
                time = expected
        kind = (frame.format.name, frame.layout.name, frame.sample_rate)
        if resampler is None or kind != input_kind:
            # A mid-stream change of layout or rate needs a new resampler.
            _drain(resampler, None, timeline)
            resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
            input_kind = kind
        _drain(resampler, frame, timeline)
        expected = (time if time is not None else 0.0) + frame.samples / frame.sample_rate
    if not timeline.full:
        _drain(resampler, None, timeline)
    return timeline.samples()


def _drain(
    resampler: av.AudioResampler | None, frame: av.AudioFrame | None, timeline: _Timeline
) -> None:
    if resampler is None:
        return
    for out in resampler.resample(frame):
        if out is not None:  # a pass-through resampler answers a flush with [None]
            timeline.write(out.to_ndarray().reshape(-1))


def _frames(
    container: av.container.InputContainer, stream: av.AudioStream, path: Path
) -> Iterator[av.AudioFrame]:
    bad_in_a_row = 0
    try:
        packets = container.demux(stream)
        for packet in packets:
            try:
                frames = packet.decode()
            except av.error.FFmpegError as exc:
                bad_in_a_row += 1
                if bad_in_a_row > MAX_CONSECUTIVE_BAD_PACKETS:
                    raise AudioDecodeError(
                        f"{path}: more than {MAX_CONSECUTIVE_BAD_PACKETS} corrupt audio packets "
                        f"in a row ({exc})"
                    ) from exc
                continue
            bad_in_a_row = 0
            for frame in frames:
                if isinstance(frame, av.AudioFrame):
                    yield frame
    except av.error.FFmpegError as exc:
        raise AudioDecodeError(f"{path}: demuxing the audio failed ({exc})") from exc
