"""Image search and bad image uploads through the running query API, on real media."""

from __future__ import annotations

import io
from pathlib import Path

import av
import httpx
import pytest

from tests.integration.conftest import wait_for_job
from tests.integration.media_copies import unique_copy
from vip.settings import Settings
from vip.upload import build_event, publish

pytestmark = pytest.mark.stack

MEDIA = Path(__file__).resolve().parents[2].parent / "shared" / "media"


def frame_jpeg(path: Path, at_s: float) -> bytes:
    """One frame of the video as a JPEG, as a user would screenshot it (full size)."""
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            if frame.time is not None and frame.time >= at_s:
                buffer = io.BytesIO()
                frame.to_image().save(buffer, format="JPEG", quality=90)
                return buffer.getvalue()
    raise AssertionError(f"no frame at {at_s}s in {path}")


def test_a_screenshot_finds_its_video_by_image(
    running_stack: Settings, api: httpx.Client, tmp_path: Path
) -> None:
    ids = {}
    for name in ("bikes.mp4", "bottle-detection.mp4"):
        event = build_event(str(unique_copy(MEDIA / "video" / name, tmp_path)), running_stack)
        publish(event, running_stack)
        ids[name] = event.video_id
    for video_id in ids.values():
        assert wait_for_job(api, video_id)["status"] == "completed"

    shot = frame_jpeg(MEDIA / "video" / "bikes.mp4", 4.1)  # between two sampled keyframes
    response = api.post(
        "/v1/search/image",
        files={"image": ("shot.jpg", shot, "image/jpeg")},
        data={
            "top_k": "3",
            "filters": f'{{"video_ids": ["{ids["bikes.mp4"]}", "{ids["bottle-detection.mp4"]}"]}}',
        },
    )

    assert response.status_code == 200, response.text
    best = response.json()["data"][0]
    assert best["video_id"] == ids["bikes.mp4"]
    assert 2.0 <= best["start"] <= 6.0 and best["start"] == best["end"]
    assert 0 < best["score"] <= 1


def test_an_upload_that_is_not_an_image_is_refused(api: httpx.Client) -> None:
    response = api.post(
        "/v1/search/image", files={"image": ("x.jpg", b"not an image at all", "image/jpeg")}
    )
    assert response.status_code == 422
    assert "image" in response.text.lower()
