"""FastAPI dependencies: the adapters (agents.wiring.Dependencies) live on app.state."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from agents.wiring import Dependencies


def get_stores(request: Request) -> Dependencies:
    stores: Dependencies = request.app.state.stores
    return stores


StoresDep = Annotated[Dependencies, Depends(get_stores)]
