"""Jobs on the query side: a view of the compacted ``jobs`` topic and its public schemas.

The app starts it in its lifespan (``app.state.jobs = start_jobs_view(settings)``) and
closes it on the way out; query_service/routers/jobs.py serves it.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from query_service.jobs.schemas import JobPublic, JobsPublic, job_public
from query_service.jobs.view import JobsView, start_jobs_view

__all__ = ["JobPublic", "JobsDep", "JobsPublic", "JobsView", "job_public", "start_jobs_view"]


def get_jobs(request: Request) -> JobsView:
    view: JobsView = request.app.state.jobs
    return view


JobsDep = Annotated[JobsView, Depends(get_jobs)]
