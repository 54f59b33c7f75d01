"""Chat follow-up resolution, sessions and narration (pure parts of /v1/chat)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from query_service.chat.followup import resolve
from query_service.chat.schemas import ChatTurn
from query_service.chat.service import narrate
from query_service.chat.sessions import SessionStore, UnknownSession
from query_service.schemas import MomentPublic


def moment(
    video: str, start: float, end: float, text: str = "A scene.", score: float = 0.5
) -> MomentPublic:
    return MomentPublic(
        id=f"{video}:{int(start):05d}",
        video_id=video,
        source=f"/media/{video}.mp4",
        start=start,
        end=end,
        score=score,
        text=text,
        labels=[],
        retrievers=["vector"],
    )


def turn(n: int, question: str, citations: list[MomentPublic]) -> ChatTurn:
    return ChatTurn(
        turn=n,
        message=question,
        resolved_question=question,
        follow_up="none",
        answer="…",
        citations=citations,
        grounded=bool(citations),
        generator="extractive",
        at=datetime.now(UTC),
    )


BIKES = [moment("bikes", 0, 10), moment("bikes", 10, 20, score=0.9), moment("gif", 0, 3.4)]


@pytest.mark.parametrize(
    "message",
    ["And what happens after that?", "what happens next?", "and then?", "What comes afterwards"],
)
def test_after_anchors_on_the_best_cited_moment(message: str) -> None:
    resolution = resolve(message, [turn(1, "who rides a bicycle?", BIKES)])
    assert resolution.kind == "after"
    assert resolution.anchor == BIKES[1]  # the best-scored citation, wherever it is listed
    assert resolution.question == "What happens after bikes.mp4 10.0-20.0s?"


@pytest.mark.parametrize("message", ["what happened before that?", "and earlier?"])
def test_before_follow_ups_anchor_on_the_same_moment(message: str) -> None:
    resolution = resolve(message, [turn(1, "who rides a bicycle?", BIKES)])
    assert resolution.kind == "before"
    assert resolution.anchor == BIKES[1]


def test_equal_scores_anchor_on_the_earliest() -> None:
    even = [moment("bikes", 10, 20), moment("bikes", 0, 10)]
    assert resolve("what happens next?", [turn(1, "bicycles?", even)]).anchor == even[1]


def test_the_anchor_comes_from_the_last_turn_that_cited_something() -> None:
    history = [turn(1, "bicycles?", BIKES[:1]), turn(2, "a unicorn?", [])]
    assert resolve("what happens next?", history).anchor == BIKES[0]


@pytest.mark.parametrize(
    "message",
    [
        "what happens after the car passes the cyclists?",  # says what it is after
        "what is next to the bicycle?",
        "where is a bottle?",
    ],
)
def test_standalone_questions_are_left_alone(message: str) -> None:
    resolution = resolve(message, [turn(1, "who rides a bicycle?", BIKES)])
    assert resolution.kind == "none"
    assert resolution.question == message
    assert resolution.anchor is None


def test_a_reference_is_read_with_the_previous_question_in_its_videos() -> None:
    resolution = resolve("what colour is it?", [turn(1, "who rides a bicycle?", BIKES)])
    assert resolution.kind == "reference"
    assert resolution.question == "what colour is it? (who rides a bicycle?)"
    assert resolution.video_ids == ("bikes", "gif")


def test_the_first_message_of_a_session_stands_alone() -> None:
    assert resolve("and what happens after that?", []).kind == "none"
    # Nothing cited yet: a temporal follow-up has no anchor and is searched as said.
    assert resolve("what happens next?", [turn(1, "a unicorn?", [])]).anchor is None


def test_narration_quotes_each_moment_and_cites_it_in_order() -> None:
    text = narrate("after", [moment("bikes", 10, 20, "A car. More."), moment("bikes", 20, 25)])
    assert text == (
        "Next, at 10.0-20.0 s of bikes.mp4: A car. [1] Then, at 20.0-25.0 s of bikes.mp4: "
        "A scene. [2]"
    )


def test_sessions_keep_recent_turns_and_forget_deleted_ones() -> None:
    store = SessionStore(max_sessions=10, ttl_s=60, max_turns=2)
    session = store.start()
    for n in (1, 2, 3):
        store.append(session, turn(store.next_turn(session), f"q{n}", []))
    assert [t.turn for t in store.history(session)] == [2, 3]
    store.delete(session)
    with pytest.raises(UnknownSession):
        store.history(session)


def test_idle_sessions_expire() -> None:
    clock = [0.0]
    store = SessionStore(max_sessions=10, ttl_s=5, max_turns=5, clock=lambda: clock[0])
    session = store.start()
    clock[0] = 4.0
    store.history(session)  # reading refreshes it
    clock[0] = 8.0
    assert store.history(session) == []
    clock[0] = 14.0
    with pytest.raises(UnknownSession, match="unknown or has expired"):
        store.history(session)
