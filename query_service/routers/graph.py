"""``POST /v1/graph/query``: typed traversals of the knowledge graph."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Body, Depends, HTTPException

from query_service import security
from query_service.deps import StoresDep
from query_service.graph_queries import GraphReader, UnknownEntity, UnknownMoment
from query_service.graph_schemas import (
    AppearsQuery,
    AroundQuery,
    GraphQuery,
    GraphResult,
    PathQuery,
    WithQuery,
)
from query_service.schemas import ErrorPublic

router = APIRouter(prefix="/v1/graph", tags=["graph"])


def get_reader(stores: StoresDep) -> GraphReader:
    # The adapter in agents/shared owns the one Neo4j driver (its connection pool); the query
    # side reads through it rather than opening a second pool.
    return GraphReader(stores.graph().driver)


ReaderDep = Annotated[GraphReader, Depends(get_reader)]

EXAMPLES = {
    "appears": {"value": {"kind": "appears", "entity": "bicycle"}},
    "with": {"value": {"kind": "with", "entity": {"name": "bicycle", "kind": "object"}}},
    "path": {"value": {"kind": "path", "from": "bicycle", "to": "car", "max_hops": 6}},
    "around": {"value": {"kind": "around", "video_id": "v0123456789abcdef", "time": 3.5}},
}


@router.post(
    "/query",
    response_model=GraphResult,
    dependencies=[security.body_as("application/json")],
    responses={
        404: {"model": ErrorPublic, "description": "unknown entity, video or moment"},
        415: {"model": ErrorPublic, "description": "a body that is not JSON"},
    },
)
async def graph_query(
    query: Annotated[GraphQuery, Body(openapi_examples=EXAMPLES)], reader: ReaderDep
) -> GraphResult:
    def run() -> GraphResult:
        match query:
            case AppearsQuery():
                return reader.appears(query)
            case WithQuery():
                return reader.appears_with(query)
            case PathQuery():
                return reader.path(query)
            case AroundQuery():
                return reader.around(query)

    try:
        return await asyncio.to_thread(run)
    except (UnknownEntity, UnknownMoment) as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from exc
