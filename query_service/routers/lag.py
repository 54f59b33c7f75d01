"""``GET /v1/lag``: consumer lag and Burrow-style status per group, topic and partition, from
the API's background sampler (:mod:`query_service.lag_sampler`); docs/operations.md."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from query_service.lag_sampler import LagSampler
from vip.lag_status import LagReport

router = APIRouter(prefix="/v1/lag", tags=["lag"])

# How long a request made just after start-up waits for the sampler's first sample.
FIRST_SAMPLE_WAIT_S = 5.0


def get_lag_sampler(request: Request) -> LagSampler | None:
    sampler: LagSampler | None = getattr(request.app.state, "lag", None)
    return sampler


LagSamplerDep = Annotated[LagSampler | None, Depends(get_lag_sampler)]


@router.get("", response_model=LagReport)
async def lag(
    sampler: LagSamplerDep,
    group: Annotated[
        list[str] | None, Query(max_length=20, description="Only these consumer groups")
    ] = None,
) -> LagReport:
    """The latest sample's offsets, lag and time lag, with each partition's and group's
    status over the sliding window (OK, WARN, STALL, STOP, ERR). ``error`` says why the
    report is empty or stale (sampling off, Kafka unreachable)."""
    if sampler is None:
        return LagReport(
            sampled_at=None, window_s=0, samples=0, groups=[],
            error="consumer-lag sampling is off (VIP_LAG_SAMPLER_ENABLED)",
        )  # fmt: skip
    await asyncio.to_thread(sampler.wait_for_sample, FIRST_SAMPLE_WAIT_S)
    report = sampler.report()
    if group:
        wanted = set(group)
        report = report.model_copy(
            update={"groups": [g for g in report.groups if g.group in wanted]}
        )
    return report
