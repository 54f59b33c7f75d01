"""A feed restarted under the same id on the running stack continues from the last segment it
had on ``live.segments``: a run killed after two segments of bikes.mp4 (no final segment),
then a new run that publishes only the two segments left, and the feed's video, job and
vectors hold each of the four moments once."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from agents.shared.blob_store import create_blob_store
from agents.shared.milvus_store import MilvusMoments
from streams.records import LiveSegmentRecorded
from tests.integration.conftest import poll
from vip.live.errors import PublishFailed
from vip.live.history import KafkaSegmentHistory
from vip.live.publisher import FeedSpec, run_feed
from vip.live.sink import KafkaSegmentSink
from vip.live.timeline import Backoff
from vip.settings import Settings

pytestmark = pytest.mark.stack

BIKES_SEGMENTS_2S = [(0.0, 3.04), (3.04, 5.48), (5.48, 7.48), (7.48, 10.0)]
DEADLINE_S = 90.0


class KilledAfter(KafkaSegmentSink):
    """The real sink, until the publisher dies before sending segment ``index``."""

    def __init__(self, settings: Settings, index: int) -> None:
        blobs = create_blob_store(
            settings.blob_store,
            settings.blobs_dir,
            settings.s3_bucket,
            settings.s3_prefix,
            settings.s3_endpoint_url,
        )
        super().__init__(settings, blobs)
        self._index = index

    def publish(self, record: LiveSegmentRecorded) -> None:
        if record.segment_index >= self._index:
            raise PublishFailed("the publisher was killed")
        super().publish(record)


@pytest.mark.allow_error_logs  # the "killed" run logs that it gave up
def test_a_restarted_file_feed_publishes_only_the_segments_left(
    running_stack: Settings, api: httpx.Client, media: Path
) -> None:
    feed_id = f"test-live-resume-{uuid.uuid4().hex[:8]}"
    spec = FeedSpec(feed_id, str(media / "video" / "bikes.mp4"), 2.0, realtime=False)
    first: list[LiveSegmentRecorded] = []
    killed = run_feed(
        running_stack,
        spec,
        threading.Event(),
        backoff=Backoff(max_tries=1),
        sink=KilledAfter(running_stack, index=2),
        on_segment=first.append,
    )
    history = KafkaSegmentHistory(running_stack)
    left_at = history(feed_id)

    second: list[LiveSegmentRecorded] = []
    resumed = run_feed(running_stack, spec, threading.Event(), on_segment=second.append)

    assert (killed.ended, [r.segment_index for r in first]) == ("gave-up", [0, 1])
    assert left_at is not None and (left_at.segment_index, left_at.final) == (1, False)
    assert (resumed.ended, resumed.first_index) == ("source-ended", 2)
    assert [(r.segment_index, r.start, r.end, r.final) for r in second] == [
        (2, 5.48, 7.48, False),
        (3, 7.48, 10.0, True),
    ]
    last = history(feed_id)
    assert last is not None and (last.segment_index, last.final) == (3, True)

    def completed() -> dict[str, Any] | None:
        body: dict[str, Any] = api.get(f"/v1/videos/{feed_id}").json() or {}
        return body if body.get("status") == "completed" else None

    video = poll(completed, DEADLINE_S, f"{feed_id}'s video to complete")
    assert [(c["start"], c["end"]) for c in video["chunks"]] == BIKES_SEGMENTS_2S
    assert (video["chunk_count"], video["indexed_chunks"]) == (4, 4)
    job = poll(
        lambda: (
            (body := api.get(f"/v1/jobs/{feed_id}").json()).get("status") == "completed" and body
        ),
        DEADLINE_S,
        f"{feed_id}'s job to complete",
    )
    assert (job["upload_id"], job["chunks"]["planned"], job["video_duration"]) == (
        f"live:{feed_id}", 4, 10.0,
    )  # fmt: skip
    moments = MilvusMoments(running_stack.milvus_uri, running_stack.milvus_collection)
    try:
        assert moments.ids(feed_id) == [f"{feed_id}:{i:05d}" for i in range(4)]
    finally:
        moments.close()
