"""Request and response of POST /v1/answer."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from query_service.schemas import MAX_QUERY_CHARS, Integer, MomentPublic, SearchFilters

# Who writes an answer: quotes of the moments, the local LLM server or a hosted endpoint.
GeneratorName = Literal["extractive", "local", "openai"]


class AnswerRequest(BaseModel):
    # Strict like the search requests: "5" is not a top_k nor 0 a boolean.
    model_config = ConfigDict(extra="forbid", strict=True)

    question: str = Field(min_length=1, max_length=MAX_QUERY_CHARS, pattern=r"\S")
    top_k: Integer = Field(default=8, ge=1, le=50, description="Moments retrieved as context")
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
    generator: GeneratorName = Field(
        default="extractive", description="The generator that wrote this answer"
    )
    fallback_from: Literal["local", "openai"] | None = Field(
        default=None,
        description="The configured generator whose draft failed the grounding check (or "
        "could not be had); the answer is then the extractive one.",
    )
    fallback_reason: str | None = Field(default=None, description="Why the draft was rejected")
