from __future__ import annotations

import asyncio

from fastapi import APIRouter

from query_service.deps import StoresDep
from query_service.schemas import MomentPublic, MomentsPublic, SearchRequest

router = APIRouter(prefix="/v1/search", tags=["search"])


@router.post("", response_model=MomentsPublic)
async def search(request: SearchRequest, stores: StoresDep) -> MomentsPublic:
    def run() -> MomentsPublic:
        vector = stores.triton().embed_texts([request.query])[0]
        hits = stores.milvus().search([float(v) for v in vector], request.top_k, request.video_ids)
        data = [
            MomentPublic(
                video_id=h.video_id,
                source=h.source,
                start=h.start,
                end=h.end,
                score=round(h.score, 4),
                text=h.text,
                labels=list(h.labels),
            )
            for h in hits
        ]
        return MomentsPublic(data=data, count=len(data))

    return await asyncio.to_thread(run)
