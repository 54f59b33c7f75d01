"""The chunker on real shared media (PyAV only; no servers)."""

from pathlib import Path

import pytest

from agents.chunking import decoder
from agents.chunking.cutter import CutOptions, cut_video
from agents.chunking.strip import decode_strip
from agents.shared.blob_store import LocalBlobStore
from streams.records import VideoUploaded

OPTIONS = CutOptions(chunk_seconds=10.0, keyframe_every_s=2.0, keyframe_max_side=320)


def _upload(path: Path) -> VideoUploaded:
    return VideoUploaded(
        video_id="vtest", source=str(path), size_bytes=path.stat().st_size, content_hash="0" * 64
    )


def test_car_detection_is_cut_on_its_keyframes(media: Path, tmp_path: Path):
    video = media / "video" / "car-detection.mp4"
    result = cut_video(_upload(video), video, LocalBlobStore(tmp_path), OPTIONS)
    # Keyframes every 4.8 s: the first at/after 10 s is 14.4 s; 30.16 - 14.4 > 12.5 so 28.8
    # would be next but the remaining 1.36 s tail is merged.
    assert [(c.span.start, c.span.end) for c in result.chunks] == [(0.0, 14.4), (14.4, 30.16)]
    assert result.probe.keyframe_times[:3] == (0.0, 4.8, 9.6)
    first = result.chunks[0]
    # Every 2 s plus the stream's own keyframes (4.8, 9.6): 10.0 gives way to 9.6, and 4.8
    # is too close to 4.0 to be worth a second image.
    assert [k.time for k in first.keyframes] == [0.0, 2.0, 4.0, 6.0, 8.0, 9.6, 12.0, 14.0]
    assert first.keyframes[0].width == 320 and first.keyframes[0].height == 180
    stored = LocalBlobStore(tmp_path).get(first.keyframes[1].uri)
    assert stored[:2] == b"\xff\xd8"  # a JPEG


def test_a_gif_is_one_chunk(media: Path, tmp_path: Path):
    video = media / "video" / "person-bicycle-car-detection.gif"
    result = cut_video(_upload(video), video, LocalBlobStore(tmp_path), OPTIONS)
    assert [(c.span.start, c.span.end) for c in result.chunks] == [(0.0, 3.41)]
    assert [k.time for k in result.chunks[0].keyframes] == [0.0, 2.0]


def test_a_truncated_video_is_reported_with_where_it_ends(media: Path, tmp_path: Path):
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes((media / "video" / "car-detection.mp4").read_bytes()[:1_200_000])
    with pytest.raises(
        decoder.TruncatedVideo, match=r"video data ends at 12\.\d+s of a declared 30\.16s"
    ):
        decoder.probe(truncated)


def test_a_text_file_is_not_a_video(tmp_path: Path):
    bogus = tmp_path / "notes.mp4"
    bogus.write_text("hello, I am not a video")
    with pytest.raises(decoder.UnreadableVideo, match="not a readable video"):
        decoder.probe(bogus)


def test_an_audio_file_has_no_video_stream(media: Path):
    with pytest.raises(decoder.NoVideoStream, match="no video stream"):
        decoder.probe(media / "audio" / "jfk.flac")


@pytest.mark.parametrize(
    ("name", "chunks"),
    [
        ("fire2.mp4", 1),  # VFR, display matrix -180 degrees, near-silent mono AAC
        ("person-bicycle-car-detection.gif", 1),  # GIF (bgra frames)
        ("id2_vcd_swwp2s.mpg", 1),  # MPEG-1 video + MP2 in a program stream
        ("big_buck_bunny_0_30.webm", 3),  # VP8 + Vorbis
        ("bigbuckbunny.mp4", 1),  # H.264 + 5.1 AAC
        ("video_with_failing_audio.mp4", 1),  # audio stops at 4.6 s
        ("car-detection.mp4", 2),  # silent audio track
        ("bikes.mp4", 1),  # no audio track
    ],
)
def test_awkward_media_is_cut_without_crashing(media: Path, tmp_path: Path, name, chunks):
    video = media / "video" / name
    result = cut_video(_upload(video), video, LocalBlobStore(tmp_path), OPTIONS)
    assert len(result.chunks) == chunks
    assert result.chunks[-1].span.end == pytest.approx(result.probe.duration)
    assert all(chunk.keyframes for chunk in result.chunks)


def test_a_rotated_phone_clip_gives_upright_keyframes(media: Path, tmp_path: Path):
    import io

    import av
    from PIL import Image

    video = media / "video" / "fire2.mp4"
    result = cut_video(_upload(video), video, LocalBlobStore(tmp_path), OPTIONS)
    first = result.chunks[0].keyframes[0]
    stored = Image.open(io.BytesIO(LocalBlobStore(tmp_path).get(first.uri)))
    with av.open(str(video)) as container:
        frame = next(container.decode(video=0))
        assert frame.rotation == -180
        raw = frame.to_image(width=first.width, height=first.height)
    upright = raw.rotate(-180, expand=True)
    assert stored.size == upright.size == (320, 180)

    # JPEG round trip: compare coarse means of top and bottom halves, which a 180 degree turn
    # swaps.
    def halves(image):
        from PIL import ImageStat

        gray = image.convert("L")
        top = gray.crop((0, 0, gray.width, gray.height // 2))
        bottom = gray.crop((0, gray.height // 2, gray.width, gray.height))
        return ImageStat.Stat(top).mean[0], ImageStat.Stat(bottom).mean[0]

    assert halves(stored) == pytest.approx(halves(upright), abs=3)
    assert abs(halves(raw)[0] - halves(raw)[1]) > 5  # the turn is visible in the data


def test_a_one_frame_video_is_one_chunk(tmp_path: Path):
    import av
    import numpy as np

    video = tmp_path / "one.mp4"
    with av.open(str(video), "w") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 128, np.uint8), format="rgb24")
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    result = cut_video(_upload(video), video, LocalBlobStore(tmp_path / "blobs"), OPTIONS)
    assert len(result.chunks) == 1
    assert len(result.chunks[0].keyframes) == 1


def test_times_start_at_the_first_frame_when_the_stream_starts_late(media: Path, tmp_path: Path):
    from tests.integration.media_copies import unique_copy

    # A remux through the MPEG-PS muxer presents the first frame at 0.5 s (its mux delay).
    video = unique_copy(media / "video" / "id2_vcd_swwp2s.mpg", tmp_path)
    result = cut_video(_upload(video), video, LocalBlobStore(tmp_path), OPTIONS)
    assert result.probe.origin == pytest.approx(0.5)
    assert result.probe.keyframe_times[:2] == (0.0, 0.48)
    [chunk] = result.chunks
    assert (chunk.span.start, chunk.span.end) == (0.0, 2.98)
    _, times = decode_strip(LocalBlobStore(tmp_path).get(chunk.strip_uri))
    assert len(times) == 75 and times[0] == 0.0 and times[-1] == pytest.approx(2.96)
    audio = LocalBlobStore(tmp_path).get(chunk.audio_uri)
    assert len(audio) / 4 / 16000 == pytest.approx(2.98, abs=0.05)


def test_chunks_are_yielded_as_the_decoder_passes_each_chunk_end(
    media: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    # The streaming cut hands out chunk 0 before the rest of the video is decoded, and gives
    # the same chunks as the one-shot cut.
    from agents.chunking.cutter import VideoCut

    video = media / "video" / "car-detection.mp4"
    upload = _upload(video)
    whole = cut_video(upload, video, LocalBlobStore(tmp_path), OPTIONS).chunks
    cut = VideoCut(upload, video, LocalBlobStore(tmp_path), OPTIONS)
    seen_at_first_chunk = []
    original = decoder.keyframes_by_span

    def spy(*args, **kwargs):
        strip = args[4]
        for group in original(*args, **kwargs):
            seen_at_first_chunk.append(strip.slice(0.0, 1e9).times.max())
            yield group

    monkeypatch.setattr(decoder, "keyframes_by_span", spy)
    streamed = list(cut.chunks())
    assert len(streamed) == 2
    assert [c.model_dump(exclude={"event_id", "occurred_at"}) for c in streamed] == [
        c.model_dump(exclude={"event_id", "occurred_at"}) for c in whole
    ]
    # At chunk 0's hand-out (end 14.4 s) the decoder has not gone past the next frame.
    assert 14.4 <= seen_at_first_chunk[0] < 14.6
    assert seen_at_first_chunk[1] > 30.0
