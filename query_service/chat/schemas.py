"""Request and response schemas of /v1/chat: sessions of question-and-answer turns."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from query_service.schemas import MAX_QUERY_CHARS, Integer, MomentPublic, SearchFilters

# Server-made ids (uuid4 hex); anything else is refused before a session is looked up.
SESSION_ID_PATTERN = r"^[0-9a-f]{32}$"

FollowUp = Literal["none", "after", "before", "reference"]


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    message: str = Field(min_length=1, max_length=MAX_QUERY_CHARS, pattern=r"\S")
    session_id: str | None = Field(
        default=None,
        pattern=SESSION_ID_PATTERN,
        description="A session from an earlier response; leave it out to start one.",
    )
    top_k: Integer = Field(default=8, ge=1, le=50, description="Moments retrieved as context")
    filters: SearchFilters = Field(default_factory=SearchFilters)

    @field_validator("message")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("message is blank")
        return value


class ChatTurn(BaseModel):
    turn: int = Field(description="1 for the first question of the session")
    message: str
    resolved_question: str = Field(
        description="The message made standalone from the earlier turns (what was answered)."
    )
    follow_up: FollowUp = Field(
        description="How the message leaned on earlier turns: 'after' or 'before' a cited "
        "moment, 'reference' (it, they, that…) to an earlier question, or 'none'."
    )
    anchor: MomentPublic | None = Field(
        default=None, description="For 'after' and 'before': the earlier moment it refers to."
    )
    answer: str
    citations: list[MomentPublic]
    grounded: bool
    generator: str
    at: datetime


class ChatResponse(ChatTurn):
    session_id: str


class ChatSession(BaseModel):
    session_id: str
    turns: list[ChatTurn]
    count: int
