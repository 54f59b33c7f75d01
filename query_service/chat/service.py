"""Multi-turn chat over the answer service: each message is resolved against the session's
earlier turns (query_service.chat.followup), answered from retrieved or neighbouring moments,
and remembered."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Final

from query_service.answer.schemas import AnswerRequest, AnswerResponse
from query_service.answer.service import AnswerService
from query_service.chat.followup import Resolution, resolve
from query_service.chat.neighbours import Neighbours
from query_service.chat.schemas import ChatRequest, ChatResponse, ChatSession, ChatTurn
from query_service.chat.sessions import SessionStore
from query_service.schemas import MomentPublic, SearchFilters

NEIGHBOUR_CHUNKS: Final = 2
_SENTENCE_END: Final = re.compile(r"(?<=[.!?])\s+")


def narrate(direction: str, moments: Sequence[MomentPublic]) -> str:
    """What the neighbouring moments show, in their own words, each cited: the answer to
    "what happens next?" when the generator found no sentence that matches the question."""
    parts = []
    for n, moment in enumerate(moments, start=1):
        first = _SENTENCE_END.split(moment.text.strip())[0]
        name = PurePosixPath(moment.source).name or moment.video_id
        lead = "Then" if n > 1 else ("Next" if direction == "after" else "Before that")
        parts.append(f"{lead}, at {moment.start:.1f}-{moment.end:.1f} s of {name}: {first} [{n}]")
    return " ".join(parts)


def nothing_there(direction: str, anchor: MomentPublic) -> str:
    name = PurePosixPath(anchor.source).name or anchor.video_id
    span = f"{anchor.start:.1f}-{anchor.end:.1f} s"
    return f"I don't know: nothing is indexed {direction} {span} of {name}."


class ChatService:
    def __init__(
        self, answers: AnswerService, neighbours: Neighbours, sessions: SessionStore
    ) -> None:
        self._answers = answers
        self._neighbours = neighbours
        self.sessions = sessions

    def chat(self, request: ChatRequest) -> ChatResponse:
        if request.session_id is None:
            session_id = self.sessions.start()
            history: list[ChatTurn] = []
        else:
            session_id = request.session_id
            history = self.sessions.history(session_id)
        resolution = resolve(request.message, history)
        result = self._answer(resolution, request)
        turn = ChatTurn(
            turn=self.sessions.next_turn(session_id),
            message=request.message,
            resolved_question=resolution.question,
            follow_up=resolution.kind,
            anchor=resolution.anchor,
            answer=result.answer,
            citations=result.citations,
            grounded=result.grounded,
            generator=result.generator,
            at=datetime.now(UTC),
        )
        self.sessions.append(session_id, turn)
        return ChatResponse(session_id=session_id, **turn.model_dump())

    def session(self, session_id: str) -> ChatSession:
        turns = self.sessions.history(session_id)
        return ChatSession(session_id=session_id, turns=turns, count=len(turns))

    def _answer(self, resolution: Resolution, request: ChatRequest) -> AnswerResponse:
        if resolution.anchor is not None and resolution.kind in ("after", "before"):
            direction = resolution.kind
            moments = self._neighbours.of(resolution.anchor, direction, NEIGHBOUR_CHUNKS)
            if not moments:
                return AnswerResponse(
                    answer=nothing_there(direction, resolution.anchor),
                    citations=[],
                    grounded=False,
                )
            result = self._answers.answer_over(resolution.question, moments)
            if result.grounded:
                return result
            return AnswerResponse(
                answer=narrate(direction, moments), citations=list(moments), grounded=True
            )
        filters = request.filters
        if resolution.video_ids and filters.video_ids is None:
            filters = SearchFilters.model_validate(
                {**filters.model_dump(exclude_none=True), "video_ids": list(resolution.video_ids)}
            )
        return self._answers.answer(
            AnswerRequest(question=resolution.question, top_k=request.top_k, filters=filters)
        )
