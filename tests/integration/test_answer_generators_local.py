"""POST /v1/answer with the local LLM (`vip stack up llm`: llama.cpp serving SmolLM2-135M) over a
real ingested clip with speech, through an in-process API configured with
VIP_ANSWER_GENERATOR=local (the shared API on :8080 stays extractive)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi.testclient import TestClient

from query_service.main import create_app
from tests.integration.conftest import wait_for_job
from tests.integration.media_copies import unique_copy
from vip.settings import Settings
from vip.stack import stack
from vip.upload import build_event, publish

pytestmark = pytest.mark.stack

MEDIA = Path(__file__).resolve().parents[2].parent / "shared" / "media" / "video"


@pytest.fixture(scope="module")
def llm(running_stack: Settings) -> Iterator[Settings]:
    """The local LLM server, started for these tests (and stopped after) unless it ran already."""
    manager = stack.manager(running_stack, echo=lambda _: None)
    started = manager.up(["llm"])
    yield running_stack.model_copy(update={"answer_generator": "local"})
    if started:
        manager.down(started)


@pytest.fixture(scope="module")
def grid_video(
    running_stack: Settings, api: httpx.Client, tmp_path_factory: pytest.TempPathFactory
) -> str:
    copy = unique_copy(MEDIA / "id2_vcd_swwp2s.mpg", tmp_path_factory.mktemp("local-llm"))
    event = build_event(str(copy), running_stack)
    publish(event, running_stack)
    assert wait_for_job(api, event.video_id)["status"] == "completed"
    return event.video_id


@pytest.fixture(scope="module")
def local_api(llm: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(llm)) as client:
        yield client


def ask(client: TestClient, question: str, video_id: str, **extra: Any) -> dict[str, Any]:
    response = client.post(
        "/v1/answer", json={"question": question, "filters": {"video_ids": [video_id]}, **extra}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_the_local_llm_answers_from_the_speech_citing_its_moment(
    local_api: TestClient, grid_video: str
) -> None:
    body = ask(local_api, "What does the speaker say?", grid_video)
    assert (body["generator"], body["fallback_from"], body["grounded"]) == ("local", None, True)
    assert "set white with p2 soon" in body["answer"].lower() and "[1]" in body["answer"]
    [cited] = body["citations"]
    assert cited["video_id"] == grid_video and cited["start"] == 0.0 and cited["end"] > 2.5


def test_a_question_the_video_does_not_answer_gets_dont_know_whatever_the_llm_says(
    local_api: TestClient, grid_video: str
) -> None:
    body = ask(local_api, "What is the capital of France?", grid_video)
    assert "don't know" in body["answer"] and body["grounded"] is False
    assert body["citations"] == []
    # The LLM was asked: either it said it does not know, or its draft was rejected.
    assert body["generator"] == "local" or body["fallback_from"] == "local"


def test_the_local_llm_streams_its_words_then_the_citations_and_done(
    local_api: TestClient, grid_video: str
) -> None:
    response = local_api.post(
        "/v1/answer",
        json={
            "question": "What does the speaker say?",
            "filters": {"video_ids": [grid_video]},
            "stream": True,
        },
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = [
        (block.split("\n")[0].removeprefix("event: "), block.split("\n")[1].removeprefix("data: "))
        for block in response.text.split("\n\n")
        if block.strip()
    ]
    names = [name for name, _ in events]
    assert names[0] == "answer" and names[-2:] == ["citations", "done"]
    assert "retract" not in names
    done = orjson.loads(events[-1][1])
    pieces = [orjson.loads(data) for name, data in events if name == "answer"]
    assert " ".join(pieces) == done["answer"] and done["generator"] == "local"
    assert orjson.loads(events[-2][1]) == done["citations"]
    assert [c["video_id"] for c in done["citations"]] == [grid_video]
