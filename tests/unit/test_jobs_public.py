"""What GET /v1/jobs shows of a job, and how `vip status` / `vip upload --wait` follow one."""

from __future__ import annotations

from typing import Any

import pytest

from query_service.jobs import job_public
from streams import topics
from tests.unit.test_jobs_core import at, cut, letter, run, uploaded, whole_video
from vip.status import StatusError, follow_job, headline


def test_a_completed_job_shows_counts_stage_durations_and_elapsed_time():
    job = job_public(run(whole_video(count=2)))

    assert job.status == "completed"
    assert job.chunks.model_dump() == {
        "planned": 2,
        "planned_known": True,
        "cut": 2,
        "analysed": 2,
        "embedded": 2,
        "graphed": 2,
    }
    # Each stage from the first input it could see (upload at 0 s, first cut at 1 s, first
    # analysis at 11 s, first embedding at 21 s) to its last output.
    assert [(s.name, s.done, s.duration_s) for s in job.stages] == [
        ("chunking", 2, 2.0),
        ("analysis", 2, 11.0),
        ("embedding", 2, 11.0),
        ("graph", 2, 11.0),
    ]
    assert job.elapsed_s == 32.0
    assert job.finished_at == at(32)
    assert job.providers == ["local", "vila"]
    assert job.dead_letters == []


def test_a_failed_job_shows_its_open_letter_and_no_plan_yet():
    state = run(
        [
            (topics.VIDEOS_UPLOADED, uploaded(), at(0)),
            (
                topics.dead_letter_topic(topics.VIDEOS_UPLOADED),
                letter(uploaded(), topics.VIDEOS_UPLOADED, "chunking", "not a video"),
                at(2),
            ),
        ]
    )

    job = job_public(state)

    assert (job.status, job.error, job.failed_stage) == ("failed", "not a video", "chunking")
    assert job.chunks.planned is None and job.chunks.planned_known is False
    (dead,) = job.dead_letters
    assert (dead.topic, dead.offset, dead.attempts, dead.open) == (
        topics.VIDEOS_UPLOADED,
        7,
        3,
        True,
    )
    assert job.elapsed_s == 2.0
    assert headline(job.model_dump(mode="json")) == (
        "v-jobs failed in 2.0s: 0/? chunks; chunking failed: not a video"
    )


class ScriptedJobs:
    """Answers GET /v1/jobs/{id} from a script, one answer per call (the last one repeats)."""

    def __init__(self, answers: list[dict[str, Any] | None]) -> None:
        self.answers = answers
        self.calls = 0

    def get(self, video_id: str) -> dict[str, Any] | None:
        answer = self.answers[min(self.calls, len(self.answers) - 1)]
        self.calls += 1
        return answer


def as_json(steps: list) -> dict[str, Any]:
    return job_public(run(steps)).model_dump(mode="json")


def test_waiting_ignores_an_earlier_uploads_job_and_reports_each_change_once():
    earlier = as_json(whole_video(count=1, upload_id="up-0"))
    queued = as_json([(topics.VIDEOS_UPLOADED, uploaded("up-1"), at(100))])
    cutting = as_json(
        [(topics.VIDEOS_UPLOADED, uploaded("up-1"), at(100)), (topics.CHUNKS, cut(0, 1), at(101))]
    )
    done = as_json(whole_video(count=1, upload_id="up-1", start=100))
    jobs = ScriptedJobs([None, earlier, queued, queued, cutting, done])
    seen: list[str] = []

    final = follow_job(jobs, "v-jobs", lambda j: seen.append(j["status"]), "up-1", poll_s=0)

    assert final == done
    assert seen == ["queued", "processing", "completed"]
    assert jobs.calls == 6


def test_waiting_gives_up_at_the_deadline_saying_how_far_the_job_got():
    queued = as_json([(topics.VIDEOS_UPLOADED, uploaded(), at(0))])

    with pytest.raises(StatusError, match=r"job v-jobs still queued after 0s"):
        follow_job(ScriptedJobs([queued]), "v-jobs", lambda j: None, timeout_s=0, poll_s=0)
