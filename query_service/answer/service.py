"""Answers grounded in retrieved moments: hybrid retrieval, context preparation, extraction."""

from __future__ import annotations

from agents.wiring import Dependencies
from query_service.answer.extractive import extract, passages, prepare_context
from query_service.answer.schemas import AnswerRequest, AnswerResponse
from query_service.retrieval.service import SearchService
from query_service.schemas import HybridSearchRequest

CONTEXT_BUDGET_CHARS = 6000  # about 1,500 tokens of moment text


class AnswerService:
    def __init__(self, search: SearchService, stores: Dependencies) -> None:
        self._search = search
        self._stores = stores

    def answer(self, request: AnswerRequest) -> AnswerResponse:
        found = self._search.hybrid(
            HybridSearchRequest(
                query=request.question, top_k=request.top_k, filters=request.filters
            )
        )
        context = prepare_context(found.data, CONTEXT_BUDGET_CHARS)
        candidates = passages(context)
        texts = [request.question, *(p.text for p in candidates)]
        vectors = self._stores.triton().embed_texts(texts)
        result = extract(vectors[0], candidates, vectors[1:])
        return AnswerResponse(
            answer=result.answer, citations=result.citations, grounded=result.grounded
        )
