"""POST /v1/answer: a grounded answer with citations, as JSON or server-sent events."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Generator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import iterate_in_threadpool

from query_service.answer.schemas import AnswerRequest, AnswerResponse
from query_service.answer.service import (
    Answered,
    AnswerEvent,
    AnswerPiece,
    AnswerService,
    CitationsFound,
    DraftRejected,
)
from query_service.cache import CachedAnswers
from query_service.routers.search import UNAVAILABLE

router = APIRouter(prefix="/v1", tags=["answer"])


def get_answers(request: Request) -> AnswerService | CachedAnswers:
    service: AnswerService | CachedAnswers = request.app.state.answers
    return service


@router.post(
    "/answer",
    response_model=AnswerResponse,
    responses={200: {"content": {"text/event-stream": {}}}, **UNAVAILABLE},
)
async def answer(
    request: AnswerRequest, service: Annotated[AnswerService | CachedAnswers, Depends(get_answers)]
) -> Any:
    """Extractive by default: the retrieved moments' sentences that answer the question, each
    cited; "I don't know" when none does. An LLM generator (``VIP_ANSWER_GENERATOR``) writes
    the answer instead, kept only when it passes the grounding check (docs/answers.md).

    With ``stream``, server-sent events: ``answer`` (more words; join the pieces with single
    spaces), ``retract`` (``{"reason"}``: the words so far were a draft that failed the check;
    the fallback answer follows), ``citations`` (the cited moments: before the text for
    extractive answers, after it for generated ones) and ``done`` (the whole response, which is
    authoritative)."""
    if not request.stream:
        return await asyncio.to_thread(service.answer, request)
    events = service.stream(request)
    # Retrieval and the first piece happen before the 200, so their failures keep their status.
    first = await asyncio.to_thread(next, events)
    return StreamingResponse(_sse(first, events), media_type="text/event-stream")


async def _sse(
    first: AnswerEvent, events: Generator[AnswerEvent, None, None]
) -> AsyncIterator[bytes]:
    try:
        yield _encode(first)
        async for event in iterate_in_threadpool(events):
            yield _encode(event)
    finally:
        with contextlib.suppress(ValueError):  # still running in a worker thread
            events.close()


def _encode(event: AnswerEvent) -> bytes:
    match event:
        case AnswerPiece(text):
            return _event("answer", text)
        case DraftRejected(reason):
            return _event("retract", {"reason": reason})
        case CitationsFound(citations):
            return _event("citations", [c.model_dump(mode="json") for c in citations])
        case Answered(response):
            return _event("done", response.model_dump(mode="json"))


def _event(name: str, data: object) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"
