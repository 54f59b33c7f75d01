"""Multi-turn chat through the running query API over a real clip cut into short chunks."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import wait_for_job
from tests.integration.media_copies import unique_copy
from vip.settings import Settings
from vip.upload import build_event, publish

pytestmark = pytest.mark.stack

MEDIA = Path(__file__).resolve().parents[2].parent / "shared" / "media" / "video"
CHUNK_S = 2.5


@pytest.fixture(scope="module")
def bikes(
    running_stack: Settings, api: httpx.Client, tmp_path_factory: pytest.TempPathFactory
) -> str:
    copy = unique_copy(MEDIA / "bikes.mp4", tmp_path_factory.mktemp("chat"))
    event = build_event(str(copy), running_stack, chunk_seconds=CHUNK_S)
    publish(event, running_stack)
    assert wait_for_job(api, event.video_id)["status"] == "completed"
    return event.video_id


def _ask(api: httpx.Client, message: str, video: str, session: str | None = None) -> dict:
    body: dict = {"message": message, "filters": {"video_ids": [video]}}
    if session is not None:
        body["session_id"] = session
    response = api.post("/v1/chat", json=body)
    assert response.status_code == 200, response.text
    result: dict = response.json()
    return result


def test_a_follow_up_is_answered_from_the_moments_after_the_cited_one(
    api: httpx.Client, bikes: str
) -> None:
    first = _ask(api, "two cars, a bicycle and a person", bikes)
    assert first["turn"] == 1 and first["follow_up"] == "none" and first["grounded"]
    cited = first["citations"]
    assert cited and all(c["video_id"] == bikes for c in cited)
    anchor = min(cited, key=lambda c: (-c["score"], c["start"]))
    if anchor["end"] >= 10.0 - CHUNK_S / 2:  # nothing after it to ask about
        pytest.fail(f"the first answer is about the last chunk ({anchor}); ask another question")

    then = _ask(api, "And what happens after that?", bikes, first["session_id"])
    assert then["session_id"] == first["session_id"] and then["turn"] == 2
    assert then["follow_up"] == "after" and then["anchor"]["id"] == anchor["id"]
    assert then["grounded"] and then["citations"] and "[1]" in then["answer"]
    starts = [c["start"] for c in then["citations"]]
    assert starts == sorted(starts) and starts[0] == pytest.approx(anchor["end"], abs=0.05)
    assert all(c["video_id"] == bikes for c in then["citations"])

    before = _ask(api, "what happened before that?", bikes, first["session_id"])
    assert before["follow_up"] == "before"
    new_anchor = min(then["citations"], key=lambda c: (-c["score"], c["start"]))
    assert before["anchor"]["id"] == new_anchor["id"]
    assert before["citations"], before
    assert all(c["end"] <= new_anchor["start"] + 0.05 for c in before["citations"])

    history = api.get(f"/v1/chat/{first['session_id']}").json()
    assert [t["turn"] for t in history["turns"]] == [1, 2, 3]
    assert history["turns"][1]["resolved_question"] == then["resolved_question"]


def test_sessions_can_be_forgotten_and_unknown_ones_are_404(api: httpx.Client, bikes: str) -> None:
    session = _ask(api, "a taxi", bikes)["session_id"]
    assert api.delete(f"/v1/chat/{session}").status_code == 204
    gone = api.post("/v1/chat", json={"message": "and then?", "session_id": session})
    assert gone.status_code == 404 and "unknown or has expired" in gone.json()["detail"]
    assert api.get(f"/v1/chat/{session}").status_code == 404
    assert api.get("/v1/chat/not-a-session").status_code == 422
    blank = api.post("/v1/chat", json={"message": "   "})
    assert blank.status_code == 422 and "message" in blank.text  # must hold a non-space
