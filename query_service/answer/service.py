"""Answers grounded in retrieved moments: hybrid retrieval, context preparation, a generator
(extractive by default, or an LLM behind an OpenAI-compatible endpoint) and, for generated
text, the grounding check (query_service.answer.grounding), with the extractive answer as the
fallback when a draft fails it or the endpoint fails."""

from __future__ import annotations

import logging
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass

from agents.wiring import Dependencies
from query_service.answer.extractive import DONT_KNOW, passages, prepare_context
from query_service.answer.generators import (
    AnswerGenerator,
    Context,
    ExtractiveGenerator,
    GeneratorError,
    build_generator,
)
from query_service.answer.generators.prompt import passage_lines
from query_service.answer.grounding import (
    Evidence,
    Renumbering,
    Verdict,
    cited_sentences,
    judge,
    numbers_in,
    renumber,
    says_dont_know,
)
from query_service.answer.schemas import AnswerRequest, AnswerResponse
from query_service.retrieval.service import SearchService
from query_service.schemas import HybridSearchRequest, MomentPublic

CONTEXT_BUDGET_CHARS = 6000  # about 1,500 tokens of moment text
EXTRACTIVE_PIECE_WORDS = 8

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AnswerPiece:
    """More words of the answer being written (pieces joined by single spaces)."""

    text: str


@dataclass(frozen=True)
class DraftRejected:
    """The pieces sent so far were a draft that failed the check; the fallback follows."""

    reason: str


@dataclass(frozen=True)
class CitationsFound:
    citations: list[MomentPublic]


@dataclass(frozen=True)
class Answered:
    response: AnswerResponse


AnswerEvent = AnswerPiece | DraftRejected | CitationsFound | Answered


class AnswerService:
    def __init__(
        self,
        search: SearchService,
        stores: Dependencies,
        generator: AnswerGenerator | None = None,
    ) -> None:
        """``generator`` defaults to the one ``stores.settings.answer_generator`` names."""
        self._search = search
        self._stores = stores
        self.generator = generator or build_generator(stores.settings)
        self._extractive = ExtractiveGenerator()

    def answer(self, request: AnswerRequest) -> AnswerResponse:
        return self.answer_over(request.question, self.retrieve(request))

    def retrieve(self, request: AnswerRequest) -> list[MomentPublic]:
        """The moments a question is answered from: hybrid retrieval under the filters."""
        found = self._search.hybrid(
            HybridSearchRequest(
                query=request.question, top_k=request.top_k, filters=request.filters
            )
        )
        return found.data

    def answer_over(self, question: str, moments: Sequence[MomentPublic]) -> AnswerResponse:
        """An answer to ``question`` from ``moments`` only (context preparation, then the
        generator); "I don't know" when they do not hold it."""
        for event in self.events_over(question, moments, stream=False):
            if isinstance(event, Answered):
                return event.response
        raise AssertionError("events_over ends with Answered")  # pragma: no cover

    def stream(self, request: AnswerRequest) -> Generator[AnswerEvent, None, None]:
        """:meth:`answer` as events, the text piece by piece as the generator writes it.
        Nothing runs (not even retrieval) until the first event is asked for."""
        yield from self.events_over(request.question, self.retrieve(request), stream=True)

    def events_over(
        self, question: str, moments: Sequence[MomentPublic], *, stream: bool
    ) -> Iterator[AnswerEvent]:
        """Pieces of the answer (LLM drafts only while ``stream``), ``DraftRejected`` when a
        draft fails, then ``CitationsFound`` and ``Answered`` (extractive answers send their
        citations first, as they are known before the text)."""
        context = self._context(question, moments)
        generator = self.generator
        if not generator.needs_grounding_check:
            yield from self._extractive_events(context)
            return
        if not context.moments:
            yield from _final(_dont_know(generator.name))
            return
        numbering = Renumbering(len(context.moments))
        words: list[str] = []
        try:
            for piece in generator.generate(context, stream=stream):
                added = numbering.feed(piece)
                words += added
                if stream and added:
                    yield AnswerPiece(" ".join(added))
            added = numbering.finish()
            words += added
            if stream and added:
                yield AnswerPiece(" ".join(added))
            verdict = self._review(context, " ".join(words), numbering)
        except GeneratorError as exc:
            log.warning("answer generator %s failed: %s", generator.name, exc)
            verdict = Verdict(False, f"the {generator.name} generator failed: {exc}")
        if verdict.accepted:
            yield from _final(self._generated(context, " ".join(words), numbering))
            return
        reason = verdict.reason or "rejected"
        log.info("answer draft rejected (%s): %s", reason, " ".join(words)[:300])
        if stream:
            yield DraftRejected(reason)
        yield from self._extractive_events(
            context, fallback_from=generator.name, fallback_reason=reason
        )

    # Steps ----------------------------------------------------------------------------------
    def _context(self, question: str, moments: Sequence[MomentPublic]) -> Context:
        prepared = prepare_context(moments, CONTEXT_BUDGET_CHARS)
        sentences = passages(prepared)
        vectors = self._stores.triton().embed_texts([question, *(p.text for p in sentences)])
        return Context(question, prepared, sentences, vectors[0], vectors[1:])

    def _review(self, context: Context, draft: str, numbering: Renumbering) -> Verdict:
        """Accepted when the draft says it does not know (and cites nothing: "I don't know"
        quoted from a cited moment is an answer), or passes the grounding rule."""
        if not numbering.cited and says_dont_know(draft):
            return Verdict(True)
        if not numbering.cited:
            dropped = f" (dropped {sorted(set(numbering.dropped))})" if numbering.dropped else ""
            return Verdict(False, f"the answer cites no passage of the context{dropped}")
        sentences = cited_sentences(draft)
        if not sentences:
            return Verdict(False, "the answer is empty")
        vectors = self._stores.triton().embed_texts([s.text for s in sentences])
        lines = passage_lines(context.moments)
        evidence = []
        for index in numbering.cited:
            moment = context.moments[index]
            rows = [r for r, p in enumerate(context.sentences) if p.moment.id == moment.id]
            evidence.append(Evidence(rows, frozenset(numbers_in(lines[index]))))
        return judge(
            sentences,
            vectors,
            evidence,
            context.sentence_vectors,
            context.question,
            context.question_vector,
        )

    def _generated(self, context: Context, text: str, numbering: Renumbering) -> AnswerResponse:
        if not numbering.cited:  # accepted without citations: it does not know
            return _dont_know(self.generator.name)
        return AnswerResponse(
            answer=text,
            citations=[context.moments[i] for i in numbering.cited],
            grounded=True,
            generator=self.generator.name,
        )

    def _extractive_events(
        self,
        context: Context,
        fallback_from: str | None = None,
        fallback_reason: str | None = None,
    ) -> Iterator[AnswerEvent]:
        text, numbering = renumber(
            "".join(self._extractive.generate(context, stream=False)), len(context.moments)
        )
        response = AnswerResponse.model_validate(
            {
                "answer": text,
                "citations": [context.moments[i] for i in numbering.cited],
                "grounded": bool(numbering.cited),  # extract() cites nothing when it does not know
                "generator": "extractive",
                "fallback_from": fallback_from,
                "fallback_reason": fallback_reason if fallback_from else None,
            }
        )
        yield CitationsFound(response.citations)
        words = text.split(" ")
        for start in range(0, len(words), EXTRACTIVE_PIECE_WORDS):
            yield AnswerPiece(" ".join(words[start : start + EXTRACTIVE_PIECE_WORDS]))
        yield Answered(response)


def _dont_know(generator: str) -> AnswerResponse:
    return AnswerResponse.model_validate(
        {"answer": DONT_KNOW, "citations": [], "grounded": False, "generator": generator}
    )


def _final(response: AnswerResponse) -> Iterator[AnswerEvent]:
    yield CitationsFound(response.citations)
    yield Answered(response)
