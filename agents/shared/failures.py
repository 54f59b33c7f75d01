"""Turning a failed event into a dead letter and a job-status delta.

Faust acks a message whose agent raised, so each agent catches failures per event and routes
them here instead: nothing is lost and the reason travels with the original bytes.
"""

from __future__ import annotations

import re

from streams.records import DeadLettered, GraphUpdated, NodeDelta

_VIDEO_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


def safe_video_id(candidate: str | None) -> str | None:
    """The video id from a message key, or None when the key is not a valid id."""
    return candidate if candidate and _VIDEO_ID.match(candidate) else None


def dead_letter(
    *,
    stage: str,
    video_id: str | None,
    error: BaseException,
    topic: str,
    partition: int | None,
    offset: int | None,
    key: bytes | None,
    value: bytes | None,
    attempts: int = 1,
) -> DeadLettered:
    return DeadLettered(
        video_id=safe_video_id(video_id) or "unknown",
        stage=stage,
        reason=str(error) or type(error).__name__,
        error_type=f"{type(error).__module__}.{type(error).__qualname__}",
        attempts=attempts,
        original_topic=topic,
        original_partition=partition,
        original_offset=offset,
        original_key=key.decode("utf-8", errors="replace") if key is not None else None,
        payload=(value or b"").decode("utf-8", errors="replace"),
    )


def video_failed(video_id: str, stage: str, reason: str) -> GraphUpdated:
    return GraphUpdated(
        video_id=video_id,
        nodes=(
            NodeDelta(
                label="Video",
                key=video_id,
                props={"status": "failed", "error": reason, "failed_stage": stage},
            ),
        ),
    )
