"""A live segment's place in the pipeline (agents/live/core.py) and the feed's spec."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from agents.live.core import feed_upload_id, feed_video_delta, segment_span
from streams.records import ChunkSpan, LiveSegmentRecorded, decode, encode
from vip.live.cli import default_feed_id
from vip.live.publisher import FeedSpec
from vip.live.sink import segment_key

STARTED = datetime(2026, 1, 2, 3, 4, 10, tzinfo=UTC)


def segment(index: int, start: float, end: float, final: bool = False) -> LiveSegmentRecorded:
    return LiveSegmentRecorded(
        video_id="cam-1",
        segment_index=index,
        start=start,
        end=end,
        started_at=STARTED,
        uri=f"file:///blobs/live/cam-1/{index:05d}.mp4",
        source="rtsp://camera.local/stream",
        final=final,
    )


def test_a_running_feeds_chunk_says_one_more_chunk_follows():
    span = segment_span(segment(3, 15.0, 20.5))

    assert span == ChunkSpan(
        source="rtsp://camera.local/stream",
        upload_id="live:cam-1",
        chunk_index=3,
        chunk_count=5,
        start=15.0,
        end=20.5,
        video_duration=26.0,
    )


def test_the_final_segment_says_how_many_chunks_the_feed_had():
    span = segment_span(segment(3, 15.0, 18.0, final=True))

    assert (span.chunk_count, span.video_duration) == (4, 18.0)


def test_an_empty_segment_is_refused():
    with pytest.raises(ValueError, match=r"segment 2 of cam-1 is empty: \[5.0, 5.0\)"):
        segment_span(segment(2, 5.0, 5.0))


def test_every_chunk_of_a_feed_belongs_to_one_upload():
    assert feed_upload_id("cam-1") == "live:cam-1"
    assert segment_span(segment(0, 0, 5)).upload_id == segment_span(segment(9, 45, 50)).upload_id


def test_the_feed_video_is_live_while_segments_come():
    delta = feed_video_delta(segment(0, 0.0, 5.0), 640, 272, "h264")

    (video,) = delta.nodes
    assert (video.label, video.key) == ("Video", "cam-1")
    assert video.props == {
        "source": "rtsp://camera.local/stream",
        "status": "live",
        "upload_id": "live:cam-1",
        "error": None,
        "duration": 5.0,
        "width": 640,
        "height": 272,
        "codec": "h264",
        "live": True,
        "uploaded_at": "2026-01-02T03:04:10+00:00",
    }


def test_the_final_segment_hands_the_video_to_the_graph_sink_to_complete():
    delta = feed_video_delta(segment(4, 20.0, 22.5, final=True), 640, 272, "h264")

    props = delta.nodes[0].props
    assert (props["status"], props["chunk_count"], props["duration"]) == ("processing", 5, 22.5)
    assert "uploaded_at" not in props  # only the first segment knows when the feed began


def test_a_segment_record_round_trips_through_its_topic_encoding():
    record = segment(7, 35.0, 40.0, final=True)

    assert decode(encode(record), LiveSegmentRecorded) == record


def test_segment_blobs_are_named_by_feed_and_index():
    assert segment_key("cam-1", 42) == "live/cam-1/00042.mp4"


@pytest.mark.parametrize("feed_id", ["", "a:b", "../x", "a/b", "x" * 65, ".."])
def test_a_feed_id_must_be_a_plain_name(feed_id: str):
    with pytest.raises(ValueError, match="must be 1-64 letters, digits"):
        FeedSpec(feed_id=feed_id, source="/media/clip.mp4")


def test_a_feed_needs_a_positive_segment_length():
    with pytest.raises(ValueError, match="segment_seconds must be positive, got 0"):
        FeedSpec(feed_id="cam-1", source="/media/clip.mp4", segment_seconds=0)


@pytest.mark.parametrize(
    ("source", "feed_id"),
    [
        ("/work/media/bikes.mp4", "live-bikes.mp4"),
        ("rtsp://cam.local:554/live/main?token=x", "live-main"),
        ("/dev/video0", "live-video0"),
        ("http://host/", "live-host"),
    ],
)
def test_the_default_feed_id_comes_from_the_source(source: str, feed_id: str):
    assert default_feed_id(source) == feed_id
