"""The job reducer: per-stage progress, status, errors and timings folded from topic events."""

from __future__ import annotations

import base64
import random
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import orjson

from agents.chunking.agent import _processing as chunking_processing_delta
from agents.graph.core import moment_delta
from agents.jobs.core import fold, is_complete
from agents.shared.failures import video_failed
from streams import topics
from streams.records import (
    ChunkAnalysed,
    ChunkCut,
    ChunkSpan,
    DeadLettered,
    DeadLetterReplayed,
    Event,
    GraphUpdated,
    JobState,
    MomentEmbedded,
    VideoUploaded,
    decode,
    encode,
)

VIDEO = "v-jobs"
T0 = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def uploaded(upload_id: str = "up-1", source: str = "/media/clip.mp4") -> VideoUploaded:
    return VideoUploaded(
        event_id=upload_id,
        video_id=VIDEO,
        source=source,
        size_bytes=1234,
        content_hash="0" * 64,
        providers=("local", "vila"),
    )


def span(index: int, count: int = 2, upload_id: str = "up-1") -> ChunkSpan:
    return ChunkSpan(
        source="/media/clip.mp4",
        upload_id=upload_id,
        chunk_index=index,
        chunk_count=count,
        start=10.0 * index,
        end=10.0 * (index + 1),
        video_duration=10.0 * count,
    )


def cut(index: int, count: int = 2, upload_id: str = "up-1") -> ChunkCut:
    return ChunkCut(
        event_id=f"cut-{upload_id}-{index}",
        video_id=VIDEO,
        span=span(index, count, upload_id),
        keyframes=(),
    )


def analysed(
    index: int, count: int = 2, upload_id: str = "up-1", cache_hit: bool = False
) -> ChunkAnalysed:
    return ChunkAnalysed(
        video_id=VIDEO, span=span(index, count, upload_id), keyframes=(), cache_hit=cache_hit
    )


def embedded(index: int, count: int = 2, upload_id: str = "up-1") -> MomentEmbedded:
    return MomentEmbedded(
        video_id=VIDEO,
        moment_id=f"{VIDEO}:{index:05d}",
        span=span(index, count, upload_id),
        text="a moment",
        model="text_embedding:1",
        vector=(0.1, 0.2),
    )


def graphed(index: int, count: int = 2, upload_id: str = "up-1") -> GraphUpdated:
    return moment_delta(embedded(index, count, upload_id))


def letter(
    original: Event | bytes,
    original_topic: str,
    stage: str,
    reason: str = "boom",
    letter_id: str = "letter-1",
) -> DeadLettered:
    raw = original if isinstance(original, bytes) else encode(original)
    try:
        payload, encoding = raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        payload, encoding = base64.b64encode(raw).decode(), "base64"
    return DeadLettered(
        event_id=letter_id,
        video_id=VIDEO,
        stage=stage,
        reason=reason,
        error_type="streams.errors.MalformedEvent",
        attempts=3,
        original_topic=original_topic,
        original_partition=1,
        original_offset=7,
        original_key=VIDEO,
        payload=payload,
        payload_encoding=encoding,
    )


Step = tuple[str, Event, datetime]


def run(steps: list[Step], state: JobState | None = None) -> JobState:
    for topic, record, when in steps:
        state = fold(state, topic, record, when)
    assert state is not None
    return state


def whole_video(count: int = 2, upload_id: str = "up-1", start: float = 0.0) -> list[Step]:
    """One upload of ``count`` chunks through every stage, a second per hop."""
    steps: list[Step] = [(topics.VIDEOS_UPLOADED, uploaded(upload_id), at(start))]
    for i in range(count):
        base = start + 1 + i
        steps += [
            (topics.CHUNKS, cut(i, count, upload_id), at(base)),
            (topics.ANALYSES, analysed(i, count, upload_id), at(base + 10)),
            (topics.EMBEDDINGS, embedded(i, count, upload_id), at(base + 20)),
            (topics.GRAPH_UPDATES, graphed(i, count, upload_id), at(base + 30)),
        ]
    return steps


def chunks_by_stage(state: JobState) -> dict[str, tuple[int, ...]]:
    return {name: progress.chunks for name, progress in state.upload.stages.items()}


def test_an_upload_alone_is_a_queued_job_with_its_source_and_providers():
    state = run([(topics.VIDEOS_UPLOADED, uploaded(), at(0))])

    assert state.video_id == VIDEO
    assert state.status == "queued"
    assert state.upload.upload_id == "up-1"
    assert state.upload.source == "/media/clip.mp4"
    assert state.upload.providers == ("local", "vila")
    assert state.upload.uploaded_at == at(0)
    assert state.upload.chunks_planned is None
    assert state.upload.stages == {}


def test_the_first_chunk_cut_says_how_many_chunks_are_planned():
    state = run([(topics.VIDEOS_UPLOADED, uploaded(), at(0)), (topics.CHUNKS, cut(0, 3), at(2))])

    assert state.status == "processing"
    assert state.upload.chunks_planned == 3
    assert state.upload.video_duration == 30.0
    assert chunks_by_stage(state) == {"chunking": (0,)}


def test_the_chunking_stages_processing_delta_brings_the_plan_before_any_chunk():
    plan = SimpleNamespace(
        upload=uploaded(),
        probe=SimpleNamespace(duration=30.16, width=640, height=360, codec="h264"),
        plan=[object(), object(), object()],
    )
    processing = chunking_processing_delta(plan)

    state = run(
        [(topics.VIDEOS_UPLOADED, uploaded(), at(0)), (topics.GRAPH_UPDATES, processing, at(1))]
    )

    assert state.status == "processing"
    assert (state.upload.chunks_planned, state.upload.video_duration) == (3, 30.16)
    assert state.upload.stages == {}


def test_a_job_completes_when_every_planned_chunk_is_through_every_stage():
    steps = whole_video(count=2)
    before_last = run(steps[:-1])
    state = run(steps[-1:], before_last)

    assert before_last.status == "processing"
    assert state.status == "completed"
    assert chunks_by_stage(state) == {
        "chunking": (0, 1),
        "analysis": (0, 1),
        "embedding": (0, 1),
        "graph": (0, 1),
    }
    timings = {
        name: (progress.first_at, progress.last_at)
        for name, progress in state.upload.stages.items()
    }
    assert timings == {
        "chunking": (at(1), at(2)),
        "analysis": (at(11), at(12)),
        "embedding": (at(21), at(22)),
        "graph": (at(31), at(32)),
    }
    assert state.finished_at == at(32)
    assert state.error is None and state.failed_stage is None
    assert state.upload.started_at == at(0) and state.upload.updated_at == at(32)


def test_redelivered_events_count_once():
    steps = whole_video(count=2)
    redelivered = [*steps, steps[1], steps[2], steps[4], steps[8]]

    state = run(redelivered)

    assert state == run(steps)
    assert {name: len(p.chunks) for name, p in state.upload.stages.items()} == dict.fromkeys(
        ("chunking", "analysis", "embedding", "graph"), 2
    )


def test_events_in_any_order_fold_to_the_same_job():
    steps = whole_video(count=3)
    expected = run(steps)
    shuffler = random.Random(20250501)

    for _ in range(40):
        shuffled = steps[:]
        shuffler.shuffle(shuffled)
        assert run(shuffled) == expected

    assert expected.status == "completed"


def test_a_graphed_chunk_seen_before_its_cut_still_counts():
    state = run(
        [
            (topics.GRAPH_UPDATES, graphed(1), at(30)),
            (topics.VIDEOS_UPLOADED, uploaded(), at(0)),
        ]
    )

    assert chunks_by_stage(state) == {"graph": (1,)}
    assert state.upload.chunks_planned == 2
    assert state.upload.source == "/media/clip.mp4"
    assert state.status == "processing"


def test_analysis_cache_hits_are_counted_per_chunk():
    state = run(
        [
            (topics.ANALYSES, analysed(0, cache_hit=True), at(1)),
            (topics.ANALYSES, analysed(0, cache_hit=True), at(2)),
            (topics.ANALYSES, analysed(1, cache_hit=False), at(3)),
        ]
    )

    assert state.upload.cache_hits == (0,)


def test_a_chunking_dead_letter_fails_the_job_with_its_stage_and_reason():
    reason = "truncated: video data ends at 11.84s of a declared 30.16s"
    state = run(
        [
            (topics.VIDEOS_UPLOADED, uploaded(), at(0)),
            (topics.CHUNKS, cut(0, 3), at(2)),
            (
                topics.dead_letter_topic(topics.VIDEOS_UPLOADED),
                letter(uploaded(), topics.VIDEOS_UPLOADED, "chunking", reason),
                at(3),
            ),
        ]
    )

    assert state.status == "failed"
    assert state.error == reason
    assert state.failed_stage == "chunking"
    assert state.finished_at == at(3)
    (dead,) = state.upload.dead_letters
    assert (dead.stage, dead.attempts, dead.original_topic, dead.original_offset) == (
        "chunking",
        3,
        topics.VIDEOS_UPLOADED,
        7,
    )
    assert dead.chunk_index is None and dead.original_event_id == "up-1"
    assert state.upload.chunks_planned == 3 and not is_complete(state.upload)


def test_a_replayed_poisoned_chunk_reopens_the_job_and_its_progress_completes_it():
    steps = whole_video(count=2)
    without_chunk_1_analysis = [s for s in steps if s[1] not in (steps[6][1], steps[7][1])]
    failed = run(
        [
            *[s for s in without_chunk_1_analysis if s[0] != topics.GRAPH_UPDATES or s[2] < at(32)],
            (
                topics.dead_letter_topic(topics.CHUNKS),
                letter(cut(1), topics.CHUNKS, "analysis", "bad frame"),
                at(40),
            ),
        ]
    )
    replayed = run([(topics.CHUNKS, cut(1), at(50))], failed)
    finished = run(
        [
            (topics.ANALYSES, analysed(1), at(51)),
            (topics.EMBEDDINGS, embedded(1), at(52)),
            (topics.GRAPH_UPDATES, graphed(1), at(53)),
        ],
        replayed,
    )

    assert (failed.status, failed.error, failed.failed_stage) == ("failed", "bad frame", "analysis")
    assert failed.upload.dead_letters[0].chunk_index == 1
    assert replayed.status == "processing"
    assert replayed.upload.dead_letters[0].replayed_at == at(50)
    assert finished.status == "completed" and finished.finished_at == at(53)
    assert len(finished.upload.dead_letters) == 1


def test_a_replay_record_clears_a_graph_sink_letter():
    steps = whole_video(count=1)
    delta = graphed(0)
    sink_letter = letter(delta, topics.GRAPH_UPDATES, "graph-sink", "Neo4j said no", "sink-1")
    failed = run([*steps, (topics.dead_letter_topic(topics.GRAPH_UPDATES), sink_letter, at(60))])
    replay = DeadLetterReplayed(
        video_id=VIDEO,
        letter_id="sink-1",
        dead_letter_topic=topics.dead_letter_topic(topics.GRAPH_UPDATES),
        dead_letter_partition=0,
        dead_letter_offset=3,
        replayed_to=topics.GRAPH_UPDATES,
    )
    replayed = run([(topics.DLQ_REPLAYS, replay, at(70))], failed)

    assert (failed.status, failed.failed_stage) == ("failed", "graph-sink")
    assert replayed.status == "completed"
    assert replayed.upload.dead_letters[0].replayed_at == at(70)


def test_a_letter_for_a_chunk_its_stage_published_anyway_holds_nothing_back():
    # A redelivery failed after the first delivery's output was out: downstream has the chunk.
    steps = whole_video(count=1)
    redelivery_failed = letter(cut(0), topics.CHUNKS, "analysis")
    state = run([*steps, (topics.dead_letter_topic(topics.CHUNKS), redelivery_failed, at(5))])

    assert state.status == "completed"
    assert len(state.upload.dead_letters) == 1


def test_a_letter_read_on_a_retry_topic_counts_for_its_pipeline_topic():
    state = run(
        [
            (topics.CHUNKS, cut(0, 1), at(1)),
            (
                topics.dead_letter_topic(topics.CHUNKS),
                letter(cut(0, 1), topics.retry_topic(topics.CHUNKS, 2), "analysis"),
                at(9),
            ),
            (topics.ANALYSES, analysed(0, 1), at(12)),
        ]
    )

    assert state.upload.dead_letters[0].chunk_index == 0
    assert state.status == "processing"  # the letter is resolved; embedding is still to come


def test_a_poisoned_event_that_is_not_json_fails_the_current_upload():
    poison = b"\xff\xfe not json"
    state = run(
        [
            (topics.VIDEOS_UPLOADED, uploaded(), at(0)),
            (
                topics.dead_letter_topic(topics.CHUNKS),
                letter(poison, topics.CHUNKS, "analysis", "value is not JSON"),
                at(4),
            ),
        ]
    )

    assert (state.status, state.error) == ("failed", "value is not JSON")
    assert state.upload.dead_letters[0].chunk_index is None
    assert state.upload.dead_letters[0].original_event_id is None


def test_a_letter_with_no_video_and_status_deltas_make_no_job():
    unknown = letter(b"garbage", topics.CHUNKS, "analysis").model_copy(
        update={"video_id": "unknown"}
    )

    assert fold(None, topics.dead_letter_topic(topics.CHUNKS), unknown, at(1)) is None
    failed_delta = video_failed(VIDEO, "analysis", "boom")
    assert fold(None, topics.GRAPH_UPDATES, failed_delta, at(1)) is None


def test_a_reupload_starts_a_new_job_and_late_events_of_the_old_one_are_ignored():
    first = whole_video(count=2, upload_id="up-1")[:3]  # upload, chunk 0 cut and analysed
    second = whole_video(count=2, upload_id="up-2", start=100)
    late_old = [(topics.EMBEDDINGS, embedded(0, upload_id="up-1"), at(150))]

    state = run([*first, *second[:2], *late_old, *second[2:]])

    assert state.upload.upload_id == "up-2"
    assert state.upload.uploaded_at == at(100)
    assert state.superseded_uploads == ("up-1",)
    assert state.other_uploads == ()
    assert state.status == "completed"
    assert state.upload.stages["embedding"].first_at == at(121)


def test_a_new_uploads_events_read_before_its_upload_are_kept():
    old = whole_video(count=1, upload_id="up-1")
    new = whole_video(count=1, upload_id="up-2", start=100)
    early_chunk = new[1]

    state = run([*old, early_chunk, new[0], *new[2:]])

    assert state.upload.upload_id == "up-2"
    assert chunks_by_stage(state)["chunking"] == (0,)
    assert state.status == "completed"
    assert state.superseded_uploads == ("up-1",)


def test_a_job_state_survives_its_topic_encoding():
    state = run(
        [
            *whole_video(count=2),
            (
                topics.dead_letter_topic(topics.CHUNKS),
                letter(cut(0), topics.CHUNKS, "analysis"),
                at(50),
            ),
        ]
    )

    assert decode(encode(state), JobState) == state
    assert orjson.loads(encode(state))["upload"]["stages"]["graph"]["chunks"] == [0, 1]
