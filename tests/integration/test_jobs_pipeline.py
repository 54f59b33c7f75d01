"""Jobs on the real stack: `vip upload --wait`, `vip batch`, and GET /v1/jobs showing what the
jobs stage materialised from the pipeline's topics."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from agents.jobs.log import read_jobs
from streams import topics
from tests.integration.media_copies import truncated_copy, unique_copy
from vip.settings import Settings

pytestmark = pytest.mark.stack


def vip(*args: str, timeout_s: float = 400) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vip", *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


def test_upload_wait_follows_the_job_and_the_job_shows_every_stage(
    running_stack: Settings, api: httpx.Client, tmp_path: Path, media: Path
):
    video = unique_copy(media / "video" / "counter.mp4", tmp_path)

    result = vip("upload", str(video), "--chunk-seconds", "2", "--wait", "--timeout", "300")

    assert result.returncode == 0, result.stderr
    video_id = result.stdout.strip().splitlines()[-1]
    assert f"{video_id} completed in" in result.stderr
    response = api.get(f"/v1/jobs/{video_id}")
    assert response.status_code == 200, response.text
    job = response.json()
    assert job["status"] == "completed"
    assert job["source"] == str(video.resolve())
    assert job["chunks"] == {
        "planned": 2,
        "planned_known": True,
        "cut": 2,
        "analysed": 2,
        "embedded": 2,
        "graphed": 2,
    }
    assert job["video_duration"] == pytest.approx(3.0, abs=0.05)
    assert job["error"] is None and job["dead_letters"] == []
    uploaded = datetime.fromisoformat(job["uploaded_at"])
    finished = datetime.fromisoformat(job["finished_at"])
    for stage in job["stages"]:
        first, last = (
            datetime.fromisoformat(stage["first_at"]),
            datetime.fromisoformat(stage["last_at"]),
        )
        assert uploaded <= first <= last <= finished, stage
        assert stage["done"] == 2 and stage["duration_s"] > 0, stage
    assert job["elapsed_s"] == pytest.approx((finished - uploaded).total_seconds(), abs=0.01)

    listed = api.get("/v1/jobs", params={"status": "completed", "limit": 200}).json()
    assert video_id in {j["video_id"] for j in listed["data"]}
    assert all(j["status"] == "completed" for j in listed["data"])
    # What a restarted jobs stage starts from: the compacted jobs topic holds the same state.
    stored = read_jobs(running_stack.kafka_bootstrap)[video_id].state
    assert stored.status == "completed" and stored.upload.upload_id == job["upload_id"]

    shown = vip("status", video_id, "--json")
    assert shown.returncode == 0, shown.stderr
    assert '"status": "completed"' in shown.stdout


def test_unknown_jobs_and_unknown_statuses_are_refused(api: httpx.Client):
    assert api.get("/v1/jobs/vnosuchvideo0000").status_code == 404
    assert api.get("/v1/jobs", params={"status": "exploded"}).status_code == 422
    result = vip("status", "vnosuchvideo0000")
    assert result.returncode == 2 and "no job for video vnosuchvideo0000" in result.stderr


@pytest.mark.allow_error_logs
def test_a_truncated_upload_fails_its_job_with_the_dead_letter_and_wait_exits_1(
    running_stack: Settings, api: httpx.Client, tmp_path: Path, media: Path
):
    broken = truncated_copy(media / "video" / "car-detection.mp4", tmp_path, keep_fraction=0.4)

    result = vip("upload", str(broken), "--wait", "--timeout", "300")

    assert result.returncode == 1, result.stderr
    video_id = result.stdout.strip().splitlines()[-1]
    job = api.get(f"/v1/jobs/{video_id}").json()
    assert (job["status"], job["failed_stage"]) == ("failed", "chunking")
    assert "truncated" in job["error"] and "of a declared 30.16s" in job["error"]
    assert f"chunking failed: {job['error']}" in result.stderr
    (letter,) = job["dead_letters"]
    assert letter["topic"] == topics.VIDEOS_UPLOADED and letter["offset"] is not None
    assert letter["error_type"] == "agents.chunking.decoder.TruncatedVideo"
    assert letter["open"] is True
    # The probe finds the truncation before any cut is planned.
    assert job["chunks"] == {
        "planned": None,
        "planned_known": False,
        "cut": 0,
        "analysed": 0,
        "embedded": 0,
        "graphed": 0,
    }


def test_batch_over_a_directory_uploads_its_videos_and_sums_up(
    running_stack: Settings, api: httpx.Client, tmp_path: Path, media: Path
):
    clips = [
        unique_copy(media / "video" / "counter.mp4", tmp_path),
        unique_copy(media / "video" / "classroom.gif", tmp_path),
    ]
    (tmp_path / "notes.txt").write_text("not a video")

    result = vip("batch", str(tmp_path), "--concurrency", "2", "--wait", "--timeout", "300")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "batch: 2 ok, 0 failed, 1 skipped" in result.stdout
    assert "not a video file name" in result.stdout
    jobs = api.get("/v1/jobs", params={"limit": 200}).json()["data"]
    sources = {j["source"]: j for j in jobs}
    for clip in clips:
        job = sources[str(clip.resolve())]
        assert job["status"] == "completed"
        assert job["chunks"]["graphed"] == job["chunks"]["planned"] == 1
