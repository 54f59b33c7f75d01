"""Answers grounded in retrieved moments: hybrid retrieval, context preparation, extraction."""

from __future__ import annotations

from collections.abc import Sequence

from agents.wiring import Dependencies
from query_service.answer.extractive import extract, passages, prepare_context
from query_service.answer.schemas import AnswerRequest, AnswerResponse
from query_service.retrieval.service import SearchService
from query_service.schemas import HybridSearchRequest, MomentPublic

CONTEXT_BUDGET_CHARS = 6000  # about 1,500 tokens of moment text


class AnswerService:
    def __init__(self, search: SearchService, stores: Dependencies) -> None:
        self._search = search
        self._stores = stores

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
        context = prepare_context(moments, CONTEXT_BUDGET_CHARS)
        candidates = passages(context)
        texts = [question, *(p.text for p in candidates)]
        vectors = self._stores.triton().embed_texts(texts)
        result = extract(vectors[0], candidates, vectors[1:])
        return AnswerResponse(
            answer=result.answer, citations=result.citations, grounded=result.grounded
        )
