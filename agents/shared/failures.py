"""Failed events: which failures a retry can cure, and the records a failure becomes (a
scheduled retry, a dead letter, the job's status deltas).

Faust acks a message whose agent raised, so each agent catches failures per event and routes
them here instead: nothing is lost and the reason travels with the original bytes.
"""

from __future__ import annotations

import http.client
import re
from dataclasses import dataclass
from datetime import datetime

from agents.analysis.providers.base import ProviderUnavailable
from agents.shared.errors import InferenceUnavailable
from streams.records import (
    DeadLettered,
    GraphUpdated,
    NodeDelta,
    RetryScheduled,
    payload_fields,
)

_VIDEO_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


def safe_video_id(candidate: str | None) -> str | None:
    """The video id from a message key, or None when the key is not a valid id."""
    return candidate if candidate and _VIDEO_ID.match(candidate) else None


def is_transient(exc: BaseException) -> bool:
    """Failures that a retry can cure: a dependency that is down or slow, not bad input."""
    if isinstance(exc, ConnectionError | TimeoutError | InferenceUnavailable | ProviderUnavailable):
        return True
    # An HTTP exchange cut short: the server went away mid-response (Triton's HTTP client
    # raises geventhttpclient's HTTPConnectionClosed, an http.client.HTTPException, when
    # the server is killed during a request).
    if isinstance(exc, http.client.HTTPException):
        return True
    from neo4j.exceptions import ServiceUnavailable, SessionExpired, TransientError

    if isinstance(exc, ServiceUnavailable | SessionExpired | TransientError):
        return True
    return _milvus_unavailable(exc)


def _milvus_unavailable(exc: BaseException) -> bool:
    import grpc
    from pymilvus.client.types import Status
    from pymilvus.exceptions import ConnectError, MilvusException, MilvusUnavailableException

    unreachable = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}
    if isinstance(exc, grpc.RpcError):
        return exc.code() in unreachable
    if not isinstance(exc, MilvusException):
        return False
    # pymilvus gives up on an unreachable server with the gRPC status code as the error code.
    return (
        isinstance(exc, MilvusUnavailableException | ConnectError)
        or exc.retriable
        or exc.code in unreachable
        or exc.code == Status.CONNECT_FAILED
    )


@dataclass(frozen=True)
class Delivery:
    """One try at an event: its original key, value and coordinates, and how it fared before.
    ``attempt`` counts tries, this one included."""

    key: bytes | None
    value: bytes | None
    topic: str
    partition: int | None
    offset: int | None
    attempt: int = 1
    first_failed_at: datetime | None = None
    first_reason: str | None = None

    @classmethod
    def from_retry(cls, scheduled: RetryScheduled) -> Delivery:
        key = scheduled.original_key
        return cls(
            key=key.encode("utf-8") if key is not None else None,
            value=scheduled.original_value(),
            topic=scheduled.original_topic,
            partition=scheduled.original_partition,
            offset=scheduled.original_offset,
            attempt=scheduled.attempts + 1,
            first_failed_at=scheduled.first_failed_at,
            first_reason=scheduled.first_reason,
        )

    @property
    def video_id(self) -> str:
        key = self.key.decode("utf-8", errors="replace") if self.key else None
        return safe_video_id(key) or "unknown"


def reason_of(error: BaseException) -> str:
    return str(error) or type(error).__name__


def _failure_fields(stage: str, delivery: Delivery, error: BaseException) -> dict[str, object]:
    return {
        "video_id": delivery.video_id,
        "stage": stage,
        "reason": reason_of(error),
        "error_type": f"{type(error).__module__}.{type(error).__qualname__}",
        "attempts": delivery.attempt,
        "original_topic": delivery.topic,
        "original_partition": delivery.partition,
        "original_offset": delivery.offset,
        "original_key": (
            delivery.key.decode("utf-8", errors="replace") if delivery.key is not None else None
        ),
        "first_failed_at": delivery.first_failed_at,
        "first_reason": delivery.first_reason,
        **payload_fields(delivery.value),
    }


def dead_letter(*, stage: str, delivery: Delivery, error: BaseException) -> DeadLettered:
    return DeadLettered.model_validate(_failure_fields(stage, delivery, error))


def retry_scheduled(
    *, stage: str, delivery: Delivery, error: BaseException, now: datetime, not_before: datetime
) -> RetryScheduled:
    """The envelope of an event waiting for its next try; its first failure is this one
    unless an earlier try already failed."""
    fields = _failure_fields(stage, delivery, error)
    if delivery.first_failed_at is None:
        fields |= {"first_failed_at": now, "first_reason": fields["reason"]}
    return RetryScheduled.model_validate({**fields, "not_before": not_before})


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


def video_resumed(video_id: str) -> GraphUpdated:
    """Undoes :func:`video_failed` when a dead letter is replayed: the job is processing
    again, and completes once its chunks are all indexed (the sink refreshes the status)."""
    return GraphUpdated(
        video_id=video_id,
        nodes=(
            NodeDelta(
                label="Video",
                key=video_id,
                props={"status": "processing", "error": None, "failed_stage": None},
            ),
        ),
    )
