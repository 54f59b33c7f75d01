"""The extractive generator: the context's sentences closest to the question, quoted and cited
(query_service.answer.extractive), or "I don't know" when none is close enough."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Final

from query_service.answer.extractive import extract
from query_service.answer.generators.base import Context, GeneratorName

_MARKER: Final = re.compile(r"\[(\d+)\]")


class ExtractiveGenerator:
    name: GeneratorName = "extractive"
    needs_grounding_check = False

    def generate(self, context: Context, *, stream: bool = False) -> Iterator[str]:
        result = extract(context.question_vector, context.sentences, context.sentence_vectors)
        # extract() numbers its own citations; the context numbers every moment.
        position = {moment.id: n for n, moment in enumerate(context.moments, start=1)}
        numbers = [position[moment.id] for moment in result.citations]

        def renumber(marker: re.Match[str]) -> str:
            k = int(marker[1])
            return f"[{numbers[k - 1]}]" if 1 <= k <= len(numbers) else marker[0]

        yield _MARKER.sub(renumber, result.answer)
