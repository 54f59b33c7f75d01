"""What every answer generator is given and what it returns."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from query_service.answer.extractive import Passage
from query_service.answer.schemas import GeneratorName
from query_service.schemas import MomentPublic


@dataclass(frozen=True)
class Context:
    """The prepared context of one question: passage ``[n]`` is ``moments[n - 1]``.

    ``sentences`` are the moments' sentences and ``sentence_vectors`` their L2-normalised
    MiniLM embeddings (row i is sentence i), computed once and shared by the extractive
    generator, the grounding check and the fallback."""

    question: str
    moments: list[MomentPublic]
    sentences: list[Passage]
    question_vector: np.ndarray
    sentence_vectors: np.ndarray


class AnswerGenerator(Protocol):
    """Writes an answer from a context, citing passage ``[n]`` for ``context.moments[n - 1]``."""

    name: GeneratorName
    # False when the text is the context's own sentences (grounded by construction).
    needs_grounding_check: bool

    def generate(self, context: Context, *, stream: bool) -> Iterator[str]:
        """The answer text in pieces (one piece unless ``stream``); raises GeneratorError."""
        ...
