"""Grounded answers through the running query API, over a real clip with speech."""

from __future__ import annotations

from pathlib import Path

import httpx
import orjson
import pytest

from tests.integration.conftest import wait_for_job
from tests.integration.media_copies import unique_copy
from vip.settings import Settings
from vip.upload import build_event, publish

pytestmark = pytest.mark.stack

MEDIA = Path(__file__).resolve().parents[2].parent / "shared" / "media" / "video"


@pytest.fixture(scope="module")
def grid_video(
    running_stack: Settings, api: httpx.Client, tmp_path_factory: pytest.TempPathFactory
) -> str:
    copy = unique_copy(MEDIA / "id2_vcd_swwp2s.mpg", tmp_path_factory.mktemp("answer"))
    event = build_event(str(copy), running_stack)
    publish(event, running_stack)
    assert wait_for_job(api, event.video_id)["status"] == "completed"
    return event.video_id


def test_an_answer_in_the_speech_is_cited_to_its_moment(api: httpx.Client, grid_video: str) -> None:
    response = api.post(
        "/v1/answer",
        json={"question": "set white with p two soon", "filters": {"video_ids": [grid_video]}},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["grounded"] is True and body["generator"] == "extractive"
    assert "white" in body["answer"].lower() and "[1]" in body["answer"]
    [cited] = body["citations"]
    assert cited["video_id"] == grid_video and cited["start"] == 0.0 and cited["end"] > 2.5


def test_a_question_the_videos_do_not_answer_gets_i_dont_know(
    api: httpx.Client, grid_video: str
) -> None:
    response = api.post(
        "/v1/answer",
        json={"question": "What is the capital of France?", "filters": {"video_ids": [grid_video]}},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["grounded"] is False and body["citations"] == []
    assert "don't know" in body["answer"]


def test_the_answer_streams_as_server_sent_events(api: httpx.Client, grid_video: str) -> None:
    with api.stream(
        "POST",
        "/v1/answer",
        json={
            "question": "set white with p two soon",
            "filters": {"video_ids": [grid_video]},
            "stream": True,
        },
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [block for block in response.read().decode().split("\n\n") if block.strip()]
    names = [block.split("\n")[0].removeprefix("event: ") for block in events]
    assert names[0] == "citations" and names[-1] == "done" and "answer" in names
    done = orjson.loads(events[-1].split("\n")[1].removeprefix("data: "))
    pieces = [
        orjson.loads(block.split("\n")[1].removeprefix("data: "))
        for block, name in zip(events, names, strict=True)
        if name == "answer"
    ]
    assert " ".join(pieces) == done["answer"] and done["grounded"] is True


def test_a_blank_or_huge_question_is_refused(api: httpx.Client) -> None:
    assert api.post("/v1/answer", json={"question": "   "}).status_code == 422
    assert api.post("/v1/answer", json={"question": "x" * 5000}).status_code == 422
