"""POST /v1/answer: a grounded answer with citations, as JSON or server-sent events."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse

from query_service.answer.schemas import AnswerRequest, AnswerResponse
from query_service.answer.service import AnswerService

router = APIRouter(prefix="/v1", tags=["answer"])


def get_answers(request: Request) -> AnswerService:
    service: AnswerService = request.app.state.answers
    return service


@router.post(
    "/answer",
    response_model=AnswerResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def answer(
    request: AnswerRequest, service: Annotated[AnswerService, Depends(get_answers)]
) -> Any:
    """Extractive by default: the retrieved moments' sentences that answer the question, each
    cited; "I don't know" when none does. With ``stream``, events ``citations``, then
    ``answer`` (pieces of the text), then ``done`` (the whole response)."""
    result = await asyncio.to_thread(service.answer, request)
    if not request.stream:
        return result
    return StreamingResponse(_events(result), media_type="text/event-stream")


async def _events(result: AnswerResponse) -> AsyncIterator[bytes]:
    citations = [c.model_dump(mode="json") for c in result.citations]
    yield _event("citations", citations)
    words = result.answer.split(" ")
    for start in range(0, len(words), 8):
        yield _event("answer", " ".join(words[start : start + 8]))
    yield _event("done", result.model_dump(mode="json"))


def _event(name: str, data: object) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"
