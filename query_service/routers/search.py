from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, HTTPException, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from query_service import security
from query_service.retrieval.errors import ImageRejected, ImageTooLarge
from query_service.retrieval.service import SearchService
from query_service.schemas import (
    MAX_TOP_K,
    ErrorPublic,
    HybridSearchRequest,
    MomentsPublic,
    SearchFilters,
    SearchRequest,
)

router = APIRouter(prefix="/v1/search", tags=["search"])
_AS_JSON = [security.body_as("application/json")]
UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {
        "model": ErrorPublic,
        "description": "Milvus or Neo4j (with Retry-After), or Triton, timed out or is "
        "unreachable: the request may succeed when sent again",
        "headers": {"Retry-After": {"description": "seconds", "schema": {"type": "integer"}}},
    }
}
_NOT_JSON: dict[int | str, dict[str, Any]] = {
    415: {"model": ErrorPublic, "description": "a body that is not JSON"},
    **UNAVAILABLE,
}
_READ_BLOCK = 64 * 1024


def get_search(request: Request) -> SearchService:
    service: SearchService = request.app.state.search
    return service


SearchDep = Annotated[SearchService, Depends(get_search)]


@router.post("", response_model=MomentsPublic, dependencies=_AS_JSON, responses=_NOT_JSON)
async def search(request: SearchRequest, service: SearchDep) -> MomentsPublic:
    """Text and multimodal vectors; a moment both find keeps its best cosine."""
    return await asyncio.to_thread(service.search, request)


@router.post("/hybrid", response_model=MomentsPublic, dependencies=_AS_JSON, responses=_NOT_JSON)
async def hybrid_search(request: HybridSearchRequest, service: SearchDep) -> MomentsPublic:
    """Vector, graph and keyword results fused by weighted reciprocal-rank fusion."""
    return await asyncio.to_thread(service.hybrid, request)


def _invalid(field: str, message: str) -> RequestValidationError:
    """A 422 shaped like FastAPI's own (HTTPValidationError), for a form field checked here."""
    return RequestValidationError(
        [{"type": "value_error", "loc": ("body", field), "msg": message, "input": None}]
    )


def _filters(raw: str | None) -> SearchFilters:
    """The form's filters: SearchFilters as JSON; absent, empty or ``null`` for none."""
    text = (raw or "").strip()
    if text in ("", "null"):
        return SearchFilters()
    try:
        return SearchFilters.model_validate_json(text)
    except ValidationError as exc:
        raise RequestValidationError(
            [
                {**error, "loc": ("body", "filters", *error["loc"])}
                for error in exc.errors(include_url=False)
            ]
        ) from exc


@router.post(
    "/image",
    response_model=MomentsPublic,
    dependencies=[security.body_as("multipart/form-data")],
    responses={
        413: {"model": ErrorPublic, "description": "the image is over the size limit"},
        415: {"model": ErrorPublic, "description": "a body that is not multipart/form-data"},
        **UNAVAILABLE,
    },
)
async def image_search(
    image: Annotated[UploadFile, File(description="A JPEG, PNG or WebP image")],
    service: SearchDep,
    top_k: Annotated[int, Form(ge=1, le=MAX_TOP_K)] = 5,
    filters: Annotated[
        str | None, Form(description="SearchFilters as JSON (see POST /v1/search)")
    ] = None,
) -> MomentsPublic:
    """Keyframes that look like the image, the best one per moment."""
    parsed = _filters(filters)
    limit = service.max_image_bytes
    data = bytearray()
    while block := await image.read(_READ_BLOCK):
        data.extend(block)
        if len(data) > limit:
            raise HTTPException(status_code=413, detail=f"the image is over {limit} bytes")
    try:
        return await asyncio.to_thread(service.search_image, bytes(data), top_k, parsed)
    except ImageTooLarge as exc:
        raise HTTPException(status_code=413, detail=str(exc)) from exc
    except ImageRejected as exc:
        raise _invalid("image", str(exc)) from exc
