"""The jobs view: every video's latest JobState, read from the compacted ``jobs`` topic.

A topic follower (agents/shared/topic_follower) reads every partition from its start and then
follows it, keeping the newest state per video in memory. Like the change feed
(query_service/events) it joins no consumer group: every API replica needs every job. Until it
has read up to the end offsets the topic had when it started, the view says it is loading
rather than answer "no such job".
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from agents.jobs.log import read_job
from agents.shared.topic_follower import TopicFollower
from streams import topics
from streams.records import JobState, JobStatus
from vip.settings import Settings


class JobsView:
    def __init__(self, bootstrap: str, topic: str = topics.JOBS) -> None:
        self._jobs: dict[str, JobState] = {}
        self._lock = threading.Lock()
        self._follower = TopicFollower(bootstrap, topic, self._apply, "beginning", "jobs-view")

    # Life cycle ------------------------------------------------------------------------------
    def start(self) -> None:
        """Start reading in a daemon thread; returns at once (Kafka may be down for now)."""
        self._follower.start()

    def close(self, timeout_s: float = 10.0) -> None:
        self._follower.close(timeout_s)

    @property
    def loaded(self) -> bool:
        """Whether everything the topic held when the view started has been read."""
        return self._follower.caught_up

    @property
    def last_error(self) -> str | None:
        return self._follower.last_error

    def wait_loaded(self, timeout_s: float) -> bool:
        return self._follower.wait_caught_up(timeout_s)

    # Reads -----------------------------------------------------------------------------------
    def get(self, video_id: str) -> JobState | None:
        with self._lock:
            return self._jobs.get(video_id)

    def page(
        self, status: JobStatus | None = None, skip: int = 0, limit: int = 50
    ) -> tuple[list[JobState], int]:
        """Jobs with ``status`` (any when None), most recently uploaded first, and how many."""
        with self._lock:
            jobs = [j for j in self._jobs.values() if status is None or j.status == status]
        jobs.sort(
            key=lambda j: (
                j.upload.uploaded_at or j.upload.started_at or j.occurred_at,
                j.video_id,
            ),
            reverse=True,
        )
        return jobs[skip : skip + limit], len(jobs)

    # The follower's thread -------------------------------------------------------------------
    def _apply(self, messages: Sequence[Any]) -> None:
        with self._lock:
            for message in messages:
                read = read_job(message.key(), message.value())
                if read is None:
                    continue
                video_id, state = read
                if state is None:
                    self._jobs.pop(video_id, None)
                else:
                    self._jobs[video_id] = state


def _newest_first(job: JobState) -> tuple[float, str]:
    upload = job.upload
    return (-(upload.uploaded_at or upload.started_at or job.occurred_at).timestamp(), job.video_id)


def start_jobs_view(settings: Settings) -> JobsView:
    """A started view of the jobs topic; ``close()`` it when the app stops."""
    view = JobsView(settings.kafka_bootstrap)
    view.start()
    return view
