"""Whether the pipeline's stages have caught up: each stage's consumer group (one per stage,
streams.app.app_id_for) has committed everything on the topics it consumes."""

from __future__ import annotations

from collections.abc import Iterable

from streams.app import STAGE_INPUTS, app_id_for
from vip.lag import caught_up

__all__ = ["pipeline_caught_up"]


def pipeline_caught_up(bootstrap: str, stages: Iterable[str] = tuple(STAGE_INPUTS)) -> bool:
    """Whether every one of ``stages`` (by default the four pipeline stages) has committed
    everything on its input topics."""
    return all(caught_up(bootstrap, app_id_for(s), STAGE_INPUTS[s]) for s in stages)
