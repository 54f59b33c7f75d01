"""The per-event loop every stage shares: decode, handle, retry transient failures, and route
permanent ones to the stage's dead-letter topic (with a failed-status delta for the job)."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import faust

from agents.analysis.providers.base import ProviderUnavailable
from agents.shared.errors import InferenceUnavailable
from agents.shared.failures import dead_letter, video_failed
from streams.records import encode

log = logging.getLogger(__name__)

Handler = Callable[[bytes | None, bytes | None], Awaitable[None]]


def is_transient(exc: BaseException) -> bool:
    """Failures that a retry can cure: a dependency that is down or slow, not bad input."""
    if isinstance(exc, ConnectionError | TimeoutError | InferenceUnavailable | ProviderUnavailable):
        return True
    try:
        from neo4j.exceptions import ServiceUnavailable, SessionExpired, TransientError
    except ImportError:  # pragma: no cover - neo4j is a hard dependency
        return False
    if isinstance(exc, ServiceUnavailable | SessionExpired | TransientError):
        return True
    try:
        from pymilvus.exceptions import MilvusUnavailableException
    except ImportError:  # pragma: no cover
        return False
    return isinstance(exc, MilvusUnavailableException)


@dataclass(frozen=True)
class Stage:
    name: str
    topic: str
    dead_letters: faust.TopicT
    graph_updates: faust.TopicT
    attempts: int = 3
    backoff_s: float = 0.5
    # The graph sink consumes graph.updates itself, so it must not answer its own failures
    # with another delta on that topic.
    report_job_failure: bool = True

    async def run(self, events: AsyncIterator[Any], handle: Handler) -> None:
        async for event in events:
            await self.process(event, handle)

    async def process(self, event: Any, handle: Handler) -> None:
        key: bytes | None = event.key
        value: bytes | None = event.value
        for attempt in range(1, self.attempts + 1):
            try:
                await handle(key, value)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if is_transient(exc) and attempt < self.attempts:
                    delay = self.backoff_s * 2 ** (attempt - 1) * (1 + random.random())  # noqa: S311
                    log.warning(
                        "%s: transient failure (%s), retry %d in %.1fs",
                        self.name,
                        exc,
                        attempt,
                        delay,
                    )
                    await asyncio.sleep(delay)
                    continue
                await self._route_failure(event, exc, attempt)
                return

    async def _route_failure(self, event: Any, exc: BaseException, attempts: int) -> None:
        key: bytes | None = event.key
        video_id = key.decode("utf-8", errors="replace") if key else None
        message = event.message
        letter = dead_letter(
            stage=self.name,
            video_id=video_id,
            error=exc,
            topic=self.topic,
            partition=message.partition,
            offset=message.offset,
            key=key,
            value=event.value,
            attempts=attempts,
        )
        log.error(
            "%s: dead-lettered %s@%s/%s: %s",
            self.name,
            video_id,
            message.partition,
            message.offset,
            letter.reason,
        )
        await self.dead_letters.send(key=key, value=encode(letter))
        if self.report_job_failure and letter.video_id != "unknown":
            status = video_failed(letter.video_id, self.name, letter.reason)
            await self.graph_updates.send(key=key, value=encode(status))
