"""A video's job, folded from the events of the pipeline's topics and their dead letters.

``fold(state, topic, record, at)`` is pure: ``at`` is the Kafka timestamp of the message that
carried ``record``. Progress is kept as sets of chunk indexes per stage, so a redelivered
event changes nothing, and events may arrive in any order across topics (the jobs stage reads
them in parallel). Each upload of a video (one VideoUploaded ``event_id``) is a job of its own:
the newest one is shown, and events of older uploads are ignored.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from operator import attrgetter
from typing import Final

from agents.jobs.changes import change, earliest, latest, stage
from agents.jobs.letters import base_topic
from streams import topics
from streams.records import (
    ChunkAnalysed,
    ChunkCut,
    DeadLettered,
    DeadLetterReplayed,
    Event,
    GraphUpdated,
    JobDeadLetter,
    JobState,
    JobStatus,
    MomentEmbedded,
    UploadProgress,
    VideoUploaded,
)

__all__ = ["CONSUMER", "RECORDS", "STAGES", "fold", "is_complete", "is_open", "settle", "stage"]

STAGES: Final = ("chunking", "analysis", "embedding", "graph")
# The stage that consumes each pipeline topic (its dead letters name that topic).
CONSUMER: Final = {
    topics.VIDEOS_UPLOADED: "chunking",
    topics.CHUNKS: "analysis",
    topics.ANALYSES: "embedding",
    topics.EMBEDDINGS: "graph",
    topics.GRAPH_UPDATES: "graph-sink",
}
RECORDS: Final[dict[str, type[Event]]] = {
    topics.VIDEOS_UPLOADED: VideoUploaded,
    topics.CHUNKS: ChunkCut,
    topics.ANALYSES: ChunkAnalysed,
    topics.EMBEDDINGS: MomentEmbedded,
    topics.GRAPH_UPDATES: GraphUpdated,
    **{topics.dead_letter_topic(name): DeadLettered for name in topics.PIPELINE},
    topics.DLQ_REPLAYS: DeadLetterReplayed,
}
MAX_OTHER_UPLOADS: Final = 4
MAX_SUPERSEDED: Final = 16


def fold(state: JobState | None, topic: str, record: Event, at: datetime) -> JobState | None:
    """The job after ``record``; None while nothing in it concerns a job (no state yet)."""
    if isinstance(record, DeadLettered) and record.video_id == "unknown":
        return state
    if isinstance(record, DeadLetterReplayed):
        if state is None:
            return None
        replayed = _mark_replayed(state, lambda lt: lt.letter_id == record.letter_id, at)
        return settle(replayed.model_copy(update={"occurred_at": max(state.occurred_at, at)}))
    base = state or JobState(video_id=record.video_id, event_id=record.video_id, occurred_at=at)
    if topic in CONSUMER:
        # A dead-lettered event seen again on its topic, after its letter, was sent back.
        base = _mark_replayed(
            base,
            lambda lt: (
                lt.original_event_id == record.event_id
                and base_topic(lt.original_topic) == topic
                and at > lt.at
            ),
            at,
        )
    found = change(record, at)
    if found is None:
        return None if state is None else settle(base)
    upload_id, apply = found
    if upload_id is not None and upload_id in base.superseded_uploads:
        return None if state is None else settle(base)
    uploads = [base.upload, *base.other_uploads]
    target = _find(uploads, upload_id)
    if target is None:
        target = uploads.pop(0) if base.upload.upload_id is None else UploadProgress()
        target = target.model_copy(update={"upload_id": upload_id})
    else:
        uploads.remove(target)
    updated = _touch(apply(target), at)
    current, others, dropped = _order([updated, *uploads])
    superseded = (*base.superseded_uploads, *dropped)[-MAX_SUPERSEDED:]
    occurred = max(base.occurred_at, at)
    return settle(
        base.model_copy(
            update={
                "upload": current,
                "other_uploads": others,
                "superseded_uploads": superseded,
                "occurred_at": occurred,
            }
        )
    )


def settle(state: JobState) -> JobState:
    """Status, error and finish time, derived from the shown upload's progress."""
    upload = state.upload
    open_letters = sorted(
        (lt for lt in upload.dead_letters if is_open(lt, upload)), key=attrgetter("at")
    )
    if is_complete(upload) and not open_letters:
        ends = [p.last_at for p in upload.stages.values() if p.last_at is not None]
        return _with_status(state, "completed", None, None, max(ends))
    if open_letters:
        newest = open_letters[-1]
        return _with_status(state, "failed", newest.reason, newest.stage, newest.at)
    started = (
        upload.chunks_planned is not None
        or any(p.chunks for p in upload.stages.values())
        or upload.dead_letters
    )
    return _with_status(state, "processing" if started else "queued", None, None, None)


def is_complete(upload: UploadProgress) -> bool:
    """Every planned chunk is through every stage."""
    if upload.chunks_planned is None:
        return False
    planned = set(range(upload.chunks_planned))
    return all(planned <= set(stage(upload, name).chunks) for name in STAGES)


def is_open(letter: JobDeadLetter, upload: UploadProgress) -> bool:
    """Whether a dead letter still holds its job back: not replayed since, and its stage has
    not published the chunk it failed on by other means (a redelivery, a retry, a replay)."""
    if letter.replayed_at is not None:
        return False
    consumer = CONSUMER.get(base_topic(letter.original_topic))
    if consumer == "chunking":
        return not _chunking_done(upload)
    if consumer in STAGES and letter.chunk_index is not None:
        return letter.chunk_index not in stage(upload, consumer).chunks
    return True


# Uploads of one video ---------------------------------------------------------------------


def _order(
    uploads: list[UploadProgress],
) -> tuple[UploadProgress, tuple[UploadProgress, ...], tuple[str, ...]]:
    """The upload to show, the others still in the running, and the ids of those known to be
    older. Upload times order the uploads that have them (their VideoUploaded was read); one
    whose VideoUploaded is still unread is newer than those when its first event is later."""
    known = [u for u in uploads if u.uploaded_at is not None]
    latest = max(known, key=_when) if known else None
    kept: list[UploadProgress] = []
    dropped: list[UploadProgress] = []
    for upload in uploads:
        older = latest is not None and upload is not latest and _when(upload) <= _when(latest)
        (dropped if older else kept).append(upload)
    kept.sort(key=_when, reverse=True)
    current, others = kept[0], kept[1:]
    dropped.extend(others[MAX_OTHER_UPLOADS:])
    ids = tuple(u.upload_id for u in dropped if u.upload_id is not None)
    return current, tuple(others[:MAX_OTHER_UPLOADS]), ids


def _when(upload: UploadProgress) -> datetime:
    moment = upload.uploaded_at or upload.started_at
    assert moment is not None  # every upload in a state has seen at least one event
    return moment


def _find(uploads: list[UploadProgress], upload_id: str | None) -> UploadProgress | None:
    if upload_id is None:
        return uploads[0]
    return next((u for u in uploads if u.upload_id == upload_id), None)


def _touch(upload: UploadProgress, at: datetime) -> UploadProgress:
    return upload.model_copy(
        update={
            "started_at": earliest(upload.started_at, at),
            "updated_at": latest(upload.updated_at, at),
        }
    )


def _mark_replayed(
    state: JobState, replays: Callable[[JobDeadLetter], bool], at: datetime
) -> JobState:
    """Letters whose event was sent back (replayed) at ``at`` no longer hold the job back."""

    def mark(upload: UploadProgress) -> UploadProgress:
        if not any(lt.replayed_at is None and replays(lt) for lt in upload.dead_letters):
            return upload
        letters = tuple(
            lt.model_copy(update={"replayed_at": at})
            if lt.replayed_at is None and replays(lt)
            else lt
            for lt in upload.dead_letters
        )
        return upload.model_copy(update={"dead_letters": letters})

    return state.model_copy(
        update={
            "upload": mark(state.upload),
            "other_uploads": tuple(mark(u) for u in state.other_uploads),
        }
    )


# Small helpers ----------------------------------------------------------------------------


def _with_status(
    state: JobState,
    status: JobStatus,
    error: str | None,
    failed_stage: str | None,
    finished_at: datetime | None,
) -> JobState:
    return state.model_copy(
        update={
            "status": status,
            "error": error,
            "failed_stage": failed_stage,
            "finished_at": finished_at,
        }
    )


def _chunking_done(upload: UploadProgress) -> bool:
    planned = upload.chunks_planned
    return planned is not None and set(range(planned)) <= set(stage(upload, "chunking").chunks)
