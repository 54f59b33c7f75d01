"""Jobs: every video's ingestion progress, materialised from the pipeline's topics.

Read from the jobs view (query_service/jobs), never from Neo4j: while the view is still
reading the topic after the API started, answers are 503 with Retry-After rather than a
partial list or a wrong "not found".
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query

from query_service.jobs import JobPublic, JobsDep, JobsPublic, JobsView, job_public
from query_service.schemas import VIDEO_ID_PATTERN
from streams.records import JobStatus

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])
LOADING: dict[int | str, dict[str, Any]] = {
    503: {"description": "the jobs view is still reading the jobs topic"}
}


def _loaded(view: JobsView) -> None:
    if not view.loaded:
        detail = "the jobs view is still loading"
        if view.last_error:
            detail += f" ({view.last_error})"
        raise HTTPException(status_code=503, detail=detail, headers={"Retry-After": "1"})


@router.get("", response_model=JobsPublic, responses=LOADING)
async def list_jobs(
    view: JobsDep,
    status: Annotated[JobStatus | None, Query(description="Only jobs with this status")] = None,
    skip: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> JobsPublic:
    """Most recently uploaded first."""
    _loaded(view)
    jobs, total = view.page(status, skip, limit)
    return JobsPublic(data=[job_public(job) for job in jobs], count=total)


@router.get(
    "/{video_id}",
    response_model=JobPublic,
    responses={404: {"description": "no job for this video"}, **LOADING},
)
async def get_job(
    video_id: Annotated[str, Path(pattern=VIDEO_ID_PATTERN)], view: JobsDep
) -> JobPublic:
    job = view.get(video_id)
    if job is None:
        _loaded(view)
        raise HTTPException(status_code=404, detail=f"no job for video {video_id}")
    return job_public(job)
