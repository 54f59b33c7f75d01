"""Answer generators, chosen by ``Settings.answer_generator``: "extractive" (the default),
"local" (the llama.cpp server of `vip stack up llm`) or "openai" (any OpenAI-compatible
endpoint at ``answer_llm_url``)."""

from __future__ import annotations

from query_service.answer.generators.base import AnswerGenerator, Context, GeneratorName
from query_service.answer.generators.errors import (
    GeneratorError,
    GeneratorRejected,
    GeneratorUnavailable,
)
from query_service.answer.generators.extractive import ExtractiveGenerator
from query_service.answer.generators.openai_compat import OpenAICompatGenerator
from vip.settings import Settings

__all__ = [
    "AnswerGenerator",
    "Context",
    "ExtractiveGenerator",
    "GeneratorError",
    "GeneratorName",
    "GeneratorRejected",
    "GeneratorUnavailable",
    "OpenAICompatGenerator",
    "build_generator",
]


def build_generator(settings: Settings) -> AnswerGenerator:
    base_url = settings.answer_llm_base_url
    if settings.answer_generator == "extractive" or base_url is None:
        return ExtractiveGenerator()
    return OpenAICompatGenerator(
        settings.answer_generator,
        base_url,
        settings.answer_llm_model,
        api_key=settings.answer_llm_api_key if settings.answer_generator == "openai" else None,
        timeout_s=settings.answer_llm_timeout_s,
        max_tokens=settings.answer_llm_max_tokens,
    )
