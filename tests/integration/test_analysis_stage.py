"""The analysis stage on the real stack: every local model's output in the analyses topic, the
model versions and unavailable slots recorded, and a re-upload answered from the cache."""

from __future__ import annotations

from pathlib import Path

import httpx
import orjson
import pytest

from agents.analysis.local import MODELS
from streams import topics
from tests.integration.conftest import wait_for_job
from tests.integration.media_copies import unique_copy
from tests.integration.test_pipeline_end_to_end import read_topic, upload, vip
from vip.settings import Settings

pytestmark = pytest.mark.stack


def analyses_of(settings: Settings, video_id: str) -> list[dict[str, object]]:
    return [
        orjson.loads(value)
        for key, value in read_topic(settings, topics.ANALYSES)
        if key == video_id.encode()
    ]


def test_a_speaking_face_is_seen_heard_and_cut_into_shots(
    running_stack: Settings, api: httpx.Client, tmp_path: Path, media: Path
):
    # GRID corpus clip: one man facing the camera says "set white with p two soon".
    # MPEG-PS cannot carry the tag that makes a copy unique, so the streams go into Matroska.
    video = unique_copy(media / "video" / "id2_vcd_swwp2s.mpg", tmp_path, suffix=".mkv")
    video_id = upload(video)
    job = wait_for_job(api, video_id)
    assert job["status"] == "completed", job

    [analysis] = analyses_of(running_stack, video_id)
    assert analysis["cache_hit"] is False
    assert set(analysis["models"]) == set(MODELS)
    assert all(analysis["models"].values())
    assert set(analysis["unavailable"]) == {"image_text_embedding", "captioner"}
    assert all("not" in reason or "no " in reason for reason in analysis["unavailable"].values())
    words = " ".join(s["text"] for s in analysis["transcript"]).lower()
    assert "white" in words and "soon" in words
    segment = analysis["transcript"][0]
    assert 0 <= segment["start"] < segment["end"] <= 3.1 and segment["words"]
    assert len(analysis["faces"]) >= 1
    assert [(s["start"], s["end"]) for s in analysis["shots"]] == [(0.0, pytest.approx(3.0))]
    assert analysis["shots"][0]["keyframe"]["uri"].startswith("file://")
    assert "A face is visible." in job["chunks"][0]["text"]
    assert "Speech: Set white with P2 soon." in job["chunks"][0]["text"]


def test_reuploading_the_same_video_is_answered_from_the_cache(
    running_stack: Settings, api: httpx.Client, tmp_path: Path, media: Path
):
    video = unique_copy(media / "video" / "bikes.mp4", tmp_path)
    first = upload(video)
    assert wait_for_job(api, first)["analysis_cache_hits"] == 0

    second = upload(video)

    def answered_from_cache() -> dict[str, object] | None:
        detail: dict[str, object] = api.get(f"/v1/videos/{second}").json()
        hits = detail.get("analysis_cache_hits")
        return detail if detail["status"] == "completed" and hits else None

    from tests.integration.conftest import poll

    detail = poll(answered_from_cache, 120, "the re-upload to complete from the cache")
    assert detail["analysis_cache_hits"] == detail["chunk_count"]
    fresh, cached = analyses_of(running_stack, first)[-2:]
    assert (fresh["cache_hit"], cached["cache_hit"]) == (False, True)
    assert cached["objects"] == fresh["objects"] and cached["shots"] == fresh["shots"]


def test_an_unconfigured_provider_is_refused_at_upload(running_stack: Settings, media: Path):
    result = vip("upload", "--provider", "local,vila", str(media / "video" / "bikes.mp4"))
    assert result.returncode == 1
    assert "provider 'vila' is not configured: set VIP_VILA_BASE_URL" in result.stderr
