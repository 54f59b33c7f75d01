"""A feed started again under the same id continues from the last segment an earlier run
published: where it restarts (pure), which partition holds a feed's records, and a real file
cut from where a killed run stopped."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from streams.records import LiveSegmentRecorded
from vip.live.history import key_partition, murmur2
from vip.live.publisher import FeedSpec, run_feed
from vip.live.timeline import Resume, restart_after
from vip.settings import load_settings

CAMERA = "rtsp://camera.example.com/stream"
FILE = "/media/bikes.mp4"
T0 = datetime(2026, 11, 29, 13, 0, tzinfo=UTC)


def published(
    index: int,
    start: float,
    end: float,
    source: str = CAMERA,
    final: bool = False,
    at: datetime = T0,
    feed: str = "cam-1",
) -> LiveSegmentRecorded:
    return LiveSegmentRecorded(
        video_id=feed,
        occurred_at=at,
        segment_index=index,
        start=start,
        end=end,
        started_at=at - timedelta(seconds=end - start),
        uri=f"file:///blobs/live/{feed}/{index:05d}.mp4",
        source=source,
        final=final,
    )


def test_a_feed_never_published_starts_at_segment_zero():
    assert restart_after(None, CAMERA, seekable=False, now=T0) == Resume(0, 0.0, None)


def test_a_live_source_continues_at_the_next_index_after_the_time_it_was_away():
    last = published(4, 16.0, 20.0, at=T0)

    resume = restart_after(last, CAMERA, seekable=False, now=T0 + timedelta(seconds=7.5))

    assert resume == Resume(5, 27.5, None)


def test_a_live_source_stopped_with_a_final_segment_continues_too():
    last = published(4, 16.0, 20.0, final=True, at=T0)

    resume = restart_after(last, CAMERA, seekable=False, now=T0 + timedelta(seconds=2))

    assert resume == Resume(5, 22.0, None)


def test_a_clock_behind_the_last_segment_adds_no_gap():
    last = published(4, 16.0, 20.0, at=T0)

    resume = restart_after(last, CAMERA, seekable=False, now=T0 - timedelta(seconds=3))

    assert resume == Resume(5, 20.0, None)


def test_a_file_cut_short_seeks_to_the_end_of_its_last_segment():
    last = published(1, 3.04, 5.48, source=FILE)

    assert restart_after(last, FILE, seekable=True, now=T0) == Resume(2, 5.48, seek_to=5.48)


def test_a_file_played_to_its_end_starts_afresh():
    last = published(3, 7.48, 10.0, source=FILE, final=True)

    assert restart_after(last, FILE, seekable=True, now=T0) == Resume(0, 0.0, None)


def test_another_file_under_the_same_feed_starts_on_its_own_clock():
    last = published(1, 3.04, 5.48, source=FILE)

    assert restart_after(last, "/media/other.mp4", seekable=True, now=T0) == Resume(0, 0.0, None)


@pytest.mark.parametrize(
    ("key", "signed"),
    [
        # Kafka's own vectors (clients UtilsTest.testMurmur2).
        (b"21", -973932308),
        (b"foobar", -790332482),
        (b"a-little-bit-long-string", -985981536),
        (b"a-little-bit-longer-string", -1486304829),
        (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
        (b"abc", 479470107),
    ],
)
def test_murmur2_hashes_as_kafka_does(key: bytes, signed: int):
    assert murmur2(key) == signed & 0xFFFFFFFF


def test_a_key_goes_to_its_positive_hash_modulo_the_partitions():
    assert key_partition(b"21", 6) == (-973932308 & 0x7FFFFFFF) % 6 == 0
    assert key_partition(b"abc", 6) == 479470107 % 6 == 3


class KeptSink:
    """Keeps what a feed publishes, in memory."""

    def __init__(self) -> None:
        self.records: list[LiveSegmentRecorded] = []

    def store(self, feed_id: str, segment_index: int, data: bytes) -> str:
        assert data[4:8] == b"ftyp"
        return f"memory://{feed_id}/{segment_index}"

    def publish(self, record: LiveSegmentRecorded) -> None:
        self.records.append(record)

    def close(self) -> None:
        pass


def test_a_file_feed_restarted_after_its_run_was_killed_publishes_only_the_rest(media: Path):
    source = str(media / "video" / "bikes.mp4")
    killed_after = published(1, 3.04, 5.48, source=source, feed="bikes")
    sink = KeptSink()

    stats = run_feed(
        load_settings(),
        FeedSpec("bikes", source, segment_seconds=2.0, realtime=False),
        threading.Event(),
        sink=sink,
        last_segment=lambda feed_id: killed_after if feed_id == "bikes" else None,
    )

    assert (stats.ended, stats.first_index, stats.segments_published) == ("source-ended", 2, 2)
    assert [(r.segment_index, r.start, r.end, r.final) for r in sink.records] == [
        (2, 5.48, 7.48, False),
        (3, 7.48, 10.0, True),
    ]
