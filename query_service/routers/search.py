from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, HTTPException, Request, UploadFile

from query_service.retrieval.errors import ImageRejected, ImageTooLarge
from query_service.retrieval.service import SearchService
from query_service.schemas import (
    MAX_TOP_K,
    HybridSearchRequest,
    MomentsPublic,
    SearchFilters,
    SearchRequest,
)

router = APIRouter(prefix="/v1/search", tags=["search"])
_READ_BLOCK = 64 * 1024


def get_search(request: Request) -> SearchService:
    service: SearchService = request.app.state.search
    return service


SearchDep = Annotated[SearchService, Depends(get_search)]


@router.post("", response_model=MomentsPublic)
async def search(request: SearchRequest, service: SearchDep) -> MomentsPublic:
    """Text and multimodal vectors; a moment both find keeps its best cosine."""
    return await asyncio.to_thread(service.search, request)


@router.post("/hybrid", response_model=MomentsPublic)
async def hybrid_search(request: HybridSearchRequest, service: SearchDep) -> MomentsPublic:
    """Vector, graph and keyword results fused by weighted reciprocal-rank fusion."""
    return await asyncio.to_thread(service.hybrid, request)


def _filters(raw: str | None) -> SearchFilters:
    if not raw:
        return SearchFilters()
    try:
        return SearchFilters.model_validate_json(raw)
    except ValueError as exc:
        raise HTTPException(status_code=422, detail=f"filters: {exc}") from exc


@router.post("/image", response_model=MomentsPublic)
async def image_search(
    image: Annotated[UploadFile, File(description="A JPEG, PNG or WebP image")],
    service: SearchDep,
    top_k: Annotated[int, Form(ge=1, le=MAX_TOP_K)] = 5,
    filters: Annotated[str | None, Form(description="SearchFilters as JSON")] = None,
) -> MomentsPublic:
    """Keyframes that look like the image, the best one per moment."""
    limit = service.max_image_bytes
    data = bytearray()
    while block := await image.read(_READ_BLOCK):
        data.extend(block)
        if len(data) > limit:
            raise HTTPException(status_code=413, detail=f"the image is over {limit} bytes")
    parsed = _filters(filters)
    try:
        return await asyncio.to_thread(service.search_image, bytes(data), top_k, parsed)
    except ImageTooLarge as exc:
        raise HTTPException(status_code=413, detail=str(exc)) from exc
    except ImageRejected as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from exc
