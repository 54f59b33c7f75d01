"""Request and response of POST /v1/answer."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from query_service.schemas import MAX_QUERY_CHARS, MomentPublic, SearchFilters


class AnswerRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: str = Field(min_length=1, max_length=MAX_QUERY_CHARS)
    top_k: int = Field(default=8, ge=1, le=50, description="Moments retrieved as context")
    filters: SearchFilters = Field(default_factory=SearchFilters)
    stream: bool = Field(default=False, description="Answer as server-sent events")

    @field_validator("question")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("question is blank")
        return value


class AnswerResponse(BaseModel):
    answer: str
    citations: list[MomentPublic] = Field(
        description="The moments the answer is taken from; [n] in the answer is citation n."
    )
    grounded: bool = Field(description="False when the context did not hold the answer")
    generator: Literal["extractive"] = "extractive"
