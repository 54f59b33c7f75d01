"""``/v1/chat``: multi-turn questions over the indexed videos, with sessions."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Request, Response

from query_service.chat.schemas import SESSION_ID_PATTERN, ChatRequest, ChatResponse, ChatSession
from query_service.chat.service import ChatService
from query_service.chat.sessions import UnknownSession
from query_service.schemas import ErrorPublic

router = APIRouter(prefix="/v1/chat", tags=["chat"])

SessionId = Annotated[str, Path(pattern=SESSION_ID_PATTERN, description="uuid4 hex")]
UNKNOWN_SESSION: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorPublic, "description": "Unknown or expired session"}
}


def get_chat(request: Request) -> ChatService:
    service: ChatService = request.app.state.chat
    return service


ChatDep = Annotated[ChatService, Depends(get_chat)]


@router.post("", response_model=ChatResponse, responses=UNKNOWN_SESSION)
async def chat(request: ChatRequest, service: ChatDep) -> ChatResponse:
    """Ask a question; send the returned ``session_id`` with the next one. A follow-up such as
    "and what happens after that?" is answered from the moments next to the previous answer's
    citation; one that says "it" or "they" is read together with the previous question."""
    try:
        return await asyncio.to_thread(service.chat, request)
    except UnknownSession as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from exc


@router.get("/{session_id}", response_model=ChatSession, responses=UNKNOWN_SESSION)
async def history(session_id: SessionId, service: ChatDep) -> ChatSession:
    try:
        return service.session(session_id)
    except UnknownSession as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from exc


@router.delete("/{session_id}", status_code=204, responses=UNKNOWN_SESSION)
async def forget(session_id: SessionId, service: ChatDep) -> Response:
    try:
        service.sessions.delete(session_id)
    except UnknownSession as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from exc
    return Response(status_code=204)
