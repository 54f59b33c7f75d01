"""The chunker on real shared media (PyAV only; no servers)."""

from pathlib import Path

import pytest

from agents.chunking import decoder
from agents.chunking.cutter import CutOptions, cut_video
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
