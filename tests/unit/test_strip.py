"""Per-frame thumbnail strips: cheap enough for every decoded frame, faithful to swscale's
nearest-neighbour thumbnail, and stored as an exact, validated ``.npz``."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import pytest

from agents.chunking.strip import (
    STRIP_SIZE,
    Strip,
    StripBuilder,
    decode_strip,
    encode_strip,
    tiny_rgb,
)

MEDIA = Path(__file__).resolve().parents[2].parent / "shared" / "media"
WIDTH, HEIGHT = STRIP_SIZE
# Mean absolute difference (0..255 scale) from swscale's POINT thumbnail; measured 3.1 on
# bikes.mp4 and 3.6 on testvideo.mp4 (swscale samples chroma slightly differently).
MAX_MEAN_ERROR = 6.0
MAX_FRAME_ERROR = 8.0
MAX_DECODE_OVERHEAD = 0.15


def _frames(name: str) -> Iterator[av.VideoFrame]:
    with av.open(str(MEDIA / "video" / name)) as container:
        yield from container.decode(video=0)


def _point_thumbnail(frame: av.VideoFrame) -> np.ndarray:
    return frame.reformat(
        width=WIDTH, height=HEIGHT, format="rgb24", interpolation="POINT"
    ).to_ndarray()


def _errors_against_swscale(frames: Iterator[av.VideoFrame], every: int) -> list[float]:
    errors = []
    for index, frame in enumerate(frames):
        if index % every:
            continue
        fast = tiny_rgb(frame).astype(np.int16)
        errors.append(float(np.abs(fast - _point_thumbnail(frame)).mean()))
    return errors


# tiny_rgb --------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["bikes.mp4", "testvideo.mp4"])
def test_fast_path_matches_swscale_point_thumbnail(name: str) -> None:
    first = next(_frames(name))
    assert first.format.name == "yuv420p", "this clip must exercise the fast path"

    errors = _errors_against_swscale(_frames(name), every=5)

    assert len(errors) >= 50
    assert np.mean(errors) < MAX_MEAN_ERROR
    assert max(errors) < MAX_FRAME_ERROR


def test_fast_path_converts_full_range_yuvj420p() -> None:
    rgb = next(_frames("bikes.mp4")).to_ndarray(format="rgb24")
    full_range = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuvj420p")

    [error] = _errors_against_swscale(iter([full_range]), every=1)

    assert error < MAX_MEAN_ERROR


def test_thumbnail_is_a_27_by_48_rgb_image() -> None:
    thumbnail = tiny_rgb(next(_frames("testvideo.mp4")))

    assert thumbnail.shape == (27, 48, 3)
    assert thumbnail.dtype == np.uint8
    assert thumbnail.flags.c_contiguous


def test_gif_frames_fall_back_to_swscale() -> None:
    frames = list(_frames("person-bicycle-car-detection.gif"))
    assert frames[0].format.name not in {"yuv420p", "yuvj420p"}

    for frame in frames[::10]:
        thumbnail = tiny_rgb(frame)
        assert thumbnail.shape == (27, 48, 3)
        assert thumbnail.dtype == np.uint8
        np.testing.assert_array_equal(thumbnail, _point_thumbnail(frame))
    assert tiny_rgb(frames[0]).std() > 10, "an overhead street scene, not a blank image"


def _thumbnail_share_of_decoding(name: str) -> float:
    """CPU time spent in tiny_rgb over the CPU time of the decode around it, in one pass.

    Attributing the time inside one pass, rather than comparing a plain pass with a pass that
    makes thumbnails, keeps load from other processes on a shared machine out of the ratio:
    both parts run under the same conditions. CPU time rather than wall time for the same
    reason."""
    thumbnails = 0.0
    started = time.process_time()
    for frame in _frames(name):
        before = time.process_time()
        tiny_rgb(frame)
        thumbnails += time.process_time() - before
    total = time.process_time() - started
    return thumbnails / (total - thumbnails)


def test_thumbnails_add_little_to_a_720p_decode() -> None:
    overhead = min(_thumbnail_share_of_decoding("testvideo.mp4") for _ in range(2))

    assert overhead < MAX_DECODE_OVERHEAD, f"tiny_rgb adds {overhead:.0%} to decoding"


# StripBuilder ----------------------------------------------------------------------------------
def _counter_builder() -> StripBuilder:
    builder = StripBuilder()
    for frame in _frames("counter.mp4"):
        builder.append(frame)
    return builder


def test_builder_keeps_one_thumbnail_per_frame_with_its_presentation_time() -> None:
    builder = _counter_builder()

    strip = builder.slice(0.0, 10.0)

    assert len(builder) == 30
    assert strip.frames.shape == (30, 27, 48, 3)
    np.testing.assert_allclose(strip.times, np.arange(30) / 10)


def test_slice_takes_the_frames_presented_in_a_half_open_span() -> None:
    # counter.mp4 shows slate grey for 0.0-0.9 s, dusty red for 1.0-1.9 s, green after.
    strip = _counter_builder().slice(1.0, 2.0)

    np.testing.assert_allclose(strip.times, np.arange(10, 20) / 10)
    red, green, blue = strip.frames[:, :10, :10].reshape(-1, 3).mean(axis=0)
    assert red > green + 30 and red > blue + 30


def test_slice_outside_the_video_is_empty() -> None:
    strip = _counter_builder().slice(5.0, 6.0)

    assert len(strip) == 0
    assert strip.frames.shape == (0, 27, 48, 3)


def test_slice_rejects_an_end_before_its_start() -> None:
    with pytest.raises(ValueError, match=r"end 1\.0 is before start 2\.0"):
        _counter_builder().slice(2.0, 1.0)


def test_discard_before_forgets_earlier_frames() -> None:
    builder = _counter_builder()

    builder.discard_before(2.0)

    assert len(builder) == 10
    np.testing.assert_allclose(builder.slice(0.0, 10.0).times, np.arange(20, 30) / 10)


# encode / decode -------------------------------------------------------------------------------
def test_strip_round_trips_exactly() -> None:
    strip = _counter_builder().slice(0.0, 10.0)

    frames, times = decode_strip(strip.encode())

    np.testing.assert_array_equal(frames, strip.frames)
    np.testing.assert_array_equal(times, strip.times)
    assert frames.dtype == np.uint8
    assert times.dtype == np.float64


def test_an_empty_strip_round_trips() -> None:
    frames, times = decode_strip(encode_strip(np.zeros((0, 27, 48, 3), np.uint8), np.zeros(0)))

    assert frames.shape == (0, 27, 48, 3)
    assert times.shape == (0,)


def test_bytes_that_are_not_an_npz_are_rejected() -> None:
    with pytest.raises(ValueError, match=r"strip is not a readable \.npz \(9 bytes starting"):
        decode_strip(b"not a zip")


def test_an_npz_without_times_is_rejected() -> None:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, frames=np.zeros((1, 27, 48, 3), np.uint8))

    with pytest.raises(ValueError, match=r"it holds \['frames'\], not 'frames' and 'times'"):
        decode_strip(buffer.getvalue())


def test_a_single_npy_array_is_rejected() -> None:
    buffer = io.BytesIO()
    np.save(buffer, np.zeros(3))

    with pytest.raises(ValueError, match=r"holds a single ndarray, not an \.npz archive"):
        decode_strip(buffer.getvalue())


@pytest.mark.parametrize(
    ("frames", "times", "message"),
    [
        (np.zeros((2, 27, 48, 3), np.float32), np.zeros(2), "frames must be uint8"),
        (np.zeros((2, 27, 48), np.uint8), np.zeros(2), "frames must be uint8"),
        (np.zeros((2, 27, 48, 3), np.uint8), np.zeros(3), "strip has 2 frames but 3 times"),
        (np.zeros((2, 27, 48, 3), np.uint8), np.zeros(2, np.float32), "times must be float64"),
        (np.zeros((2, 27, 48, 3), np.uint8), np.array([0.0, np.nan]), "times must be finite"),
    ],
)
def test_malformed_strips_are_rejected_with_the_reason(
    frames: np.ndarray, times: np.ndarray, message: str
) -> None:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, frames=frames, times=times)

    with pytest.raises(ValueError, match=message):
        decode_strip(buffer.getvalue())
    with pytest.raises(ValueError, match=message):
        encode_strip(frames, times)
    with pytest.raises(ValueError, match=message):
        Strip(frames=frames, times=times)
