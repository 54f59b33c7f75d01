"""A live feed's job: its chunk count grows with the feed, so the job stays "processing" while
the feed runs and completes once its final segment is through every stage."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from agents.graph.core import moment_delta
from agents.jobs.core import fold
from agents.live.core import feed_video_delta, segment_span
from streams import topics
from streams.records import (
    ChunkAnalysed,
    ChunkCut,
    Event,
    GraphUpdated,
    JobState,
    LiveSegmentRecorded,
    MomentEmbedded,
)

FEED = "cam-1"
T0 = datetime(2026, 11, 29, 13, 0, tzinfo=UTC)
# Three segments of a feed on its timeline: [0, 3.04), [3.04, 7.48), [7.48, 10.0).
BOUNDS = [(0.0, 3.04), (3.04, 7.48), (7.48, 10.0)]

Step = tuple[str, Event, datetime]


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def segment(index: int, final: bool = False, feed: str = FEED) -> LiveSegmentRecorded:
    start, end = BOUNDS[index]
    return LiveSegmentRecorded(
        video_id=feed,
        segment_index=index,
        start=start,
        end=end,
        started_at=at(start),
        uri=f"file:///blobs/live/{feed}/{index:05d}.mp4",
        source="rtsp://camera.example.com/stream",
        final=final,
    )


def through_every_stage(index: int, final: bool = False, after: float = 0.0) -> list[Step]:
    """The events the stages publish for one segment, as the jobs stage reads them: the live
    stage's Video delta and chunk, then analysis, embedding and the graph stage's delta."""
    recorded = segment(index, final)
    span = segment_span(recorded)
    moment = MomentEmbedded(
        video_id=FEED,
        moment_id=f"{FEED}:{index:05d}",
        span=span,
        text="cyclists on a road",
        model="text_embedding:1",
        vector=(0.1, 0.2),
    )
    base = BOUNDS[index][1] + after
    return [
        (topics.GRAPH_UPDATES, video_delta(index, final), at(base)),
        (topics.CHUNKS, ChunkCut(video_id=FEED, span=span, keyframes=()), at(base + 0.5)),
        (topics.ANALYSES, ChunkAnalysed(video_id=FEED, span=span, keyframes=()), at(base + 1)),
        (topics.EMBEDDINGS, moment, at(base + 2)),
        (topics.GRAPH_UPDATES, moment_delta(moment), at(base + 3)),
    ]


def video_delta(index: int, final: bool = False) -> GraphUpdated:
    return feed_video_delta(segment(index, final), 640, 360, "h264")


def run(steps: list[Step], state: JobState | None = None) -> JobState:
    for topic, record, when in steps:
        state = fold(state, topic, record, when)
    assert state is not None
    return state


def test_a_running_feed_stays_processing_after_its_first_chunks_are_through_every_stage():
    state = run(through_every_stage(0) + through_every_stage(1))

    assert state.status == "processing"
    assert state.finished_at is None
    assert state.upload.upload_id == f"live:{FEED}"
    assert state.upload.chunks_planned == 3
    assert state.upload.video_duration == 7.48
    assert {name: p.chunks for name, p in state.upload.stages.items()} == {
        "chunking": (0, 1),
        "analysis": (0, 1),
        "embedding": (0, 1),
        "graph": (0, 1),
    }


def test_a_late_event_of_an_early_chunk_does_not_lower_the_count_or_the_timeline():
    running = run(through_every_stage(0) + through_every_stage(1))
    late_analysis_of_chunk_0 = through_every_stage(0, after=20)[2]

    state = run([late_analysis_of_chunk_0], running)

    assert (state.upload.chunks_planned, state.upload.video_duration) == (3, 7.48)
    assert state.status == "processing"


def test_the_final_segments_video_delta_alone_does_not_complete_the_feed():
    running = run(through_every_stage(0) + through_every_stage(1))

    state = run([(topics.GRAPH_UPDATES, video_delta(2, final=True), at(10))], running)

    assert (state.upload.chunks_planned, state.upload.video_duration) == (3, 10.0)
    assert state.status == "processing"


def test_the_feed_completes_once_its_final_segment_is_through_every_stage():
    steps = through_every_stage(0) + through_every_stage(1) + through_every_stage(2, final=True)

    before_last = run(steps[:-1])
    state = run(steps[-1:], before_last)

    assert before_last.status == "processing"
    assert state.status == "completed"
    assert state.finished_at == at(13.0)
    assert (state.upload.chunks_planned, state.upload.video_duration) == (3, 10.0)


def test_the_feed_completes_the_same_whatever_order_the_topics_are_read_in():
    steps = through_every_stage(0) + through_every_stage(1) + through_every_stage(2, final=True)
    shuffled = steps.copy()
    random.Random(7).shuffle(shuffled)

    state = run(shuffled)

    assert state.status == "completed"
    assert (state.upload.chunks_planned, state.upload.video_duration) == (3, 10.0)


def test_a_completed_feed_that_runs_again_is_processing_until_its_new_final_segment():
    done = run(through_every_stage(0) + through_every_stage(1, final=True))
    assert done.status == "completed" and done.upload.chunks_planned == 2

    state = run(through_every_stage(2, after=60), done)

    assert state.status == "processing"
    assert state.finished_at is None
    assert state.upload.chunks_planned == 4


def test_an_uploaded_video_still_keeps_the_first_count_it_saw():
    recorded = segment(0, final=True)
    span = segment_span(recorded).model_copy(update={"upload_id": "up-1"})
    bigger = span.model_copy(update={"chunk_count": 5, "video_duration": 50.0})

    state = run(
        [
            (topics.CHUNKS, ChunkCut(video_id=FEED, span=span, keyframes=()), at(1)),
            (topics.ANALYSES, ChunkAnalysed(video_id=FEED, span=bigger, keyframes=()), at(2)),
        ]
    )

    assert (state.upload.chunks_planned, state.upload.video_duration) == (1, 3.04)
