"""What GET /v1/jobs shows of a JobState: counts per stage, timings, errors."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from agents.jobs.core import STAGES, is_open, stage
from streams.records import JobState, JobStatus


class ChunkCounts(BaseModel):
    planned: int | None = Field(description="Chunks the cut plan has; null until known")
    planned_known: bool = Field(
        description="The plan is known from the first chunk cut (the whole video is probed "
        "before cutting); a truncated video may end with fewer chunks cut than planned"
    )
    cut: int
    analysed: int
    embedded: int
    graphed: int


class StagePublic(BaseModel):
    name: str
    done: int = Field(description="Chunks this stage has published output for")
    first_at: datetime | None
    last_at: datetime | None
    duration_s: float | None = Field(
        description="From the first input this stage could see (the upload, or the previous "
        "stage's first output) to its latest output"
    )


class DeadLetterPublic(BaseModel):
    stage: str
    reason: str
    error_type: str
    attempts: int
    topic: str
    partition: int | None
    offset: int | None
    chunk_index: int | None
    at: datetime
    replayed_at: datetime | None
    open: bool = Field(description="Still holds the job back")


class JobPublic(BaseModel):
    video_id: str
    upload_id: str | None
    status: JobStatus
    source: str | None
    providers: list[str]
    error: str | None
    failed_stage: str | None
    video_duration: float | None
    uploaded_at: datetime | None
    updated_at: datetime | None
    finished_at: datetime | None
    elapsed_s: float | None = Field(description="Upload to finish, or to the latest event")
    chunks: ChunkCounts
    stages: list[StagePublic]
    analysis_cache_hits: int
    dead_letters: list[DeadLetterPublic]


class JobsPublic(BaseModel):
    data: list[JobPublic]
    count: int


def job_public(state: JobState) -> JobPublic:
    upload = state.upload
    begun = upload.uploaded_at or upload.started_at
    stages = []
    previous_first = begun
    for name in STAGES:
        progress = stage(upload, name)
        duration = (
            (progress.last_at - previous_first).total_seconds()
            if progress.last_at is not None and previous_first is not None
            else None
        )
        stages.append(
            StagePublic(
                name=name,
                done=len(progress.chunks),
                first_at=progress.first_at,
                last_at=progress.last_at,
                duration_s=duration,
            )
        )
        previous_first = progress.first_at
    end = state.finished_at or upload.updated_at
    counts = {s.name: s.done for s in stages}
    return JobPublic(
        video_id=state.video_id,
        upload_id=upload.upload_id,
        status=state.status,
        source=upload.source,
        providers=list(upload.providers),
        error=state.error,
        failed_stage=state.failed_stage,
        video_duration=upload.video_duration,
        uploaded_at=upload.uploaded_at,
        updated_at=upload.updated_at,
        finished_at=state.finished_at,
        elapsed_s=(end - begun).total_seconds() if end and begun else None,
        chunks=ChunkCounts(
            planned=upload.chunks_planned,
            planned_known=upload.chunks_planned is not None,
            cut=counts["chunking"],
            analysed=counts["analysis"],
            embedded=counts["embedding"],
            graphed=counts["graph"],
        ),
        stages=stages,
        analysis_cache_hits=len(upload.cache_hits),
        dead_letters=[
            DeadLetterPublic(
                stage=letter.stage,
                reason=letter.reason,
                error_type=letter.error_type,
                attempts=letter.attempts,
                topic=letter.original_topic,
                partition=letter.original_partition,
                offset=letter.original_offset,
                chunk_index=letter.chunk_index,
                at=letter.at,
                replayed_at=letter.replayed_at,
                open=is_open(letter, upload),
            )
            for letter in upload.dead_letters
        ],
    )
