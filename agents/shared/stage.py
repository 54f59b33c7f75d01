"""The per-event loop every stage shares: decode, handle, and route each failure without ever
holding the stage's partition: a transient one to the next retry level (a topic of its own,
tried again when due), a permanent one, or the last try, to the stage's dead-letter topic (with
a failed-status delta for the job). See docs/operations.md, "Retries and dead letters"."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import faust

from agents.shared import metrics
from agents.shared.failures import (
    Delivery,
    dead_letter,
    is_transient,
    retry_scheduled,
    video_failed,
)
from agents.shared.retries import RetryPolicy, RetryStep, next_step, policy_for
from streams.app import retry_topics
from streams.errors import MalformedEvent, UnknownEventVersion
from streams.records import RetryScheduled, decode, encode
from vip.settings import Settings

__all__ = ["Handler", "Stage", "is_transient", "with_retries"]

log = logging.getLogger(__name__)

Handler = Callable[[bytes | None, bytes | None], Awaitable[None]]

# A stage whose retry levels were never attached dead-letters every failure at once.
NO_RETRIES = RetryPolicy(attempts=1)


@dataclass(frozen=True)
class Stage:
    name: str
    topic: str
    dead_letters: faust.TopicT
    graph_updates: faust.TopicT
    # The graph sink consumes graph.updates itself, so it must not answer its own failures
    # with another delta on that topic.
    report_job_failure: bool = True
    policy: RetryPolicy = NO_RETRIES
    # Level n's topic is retry_levels[n - 1]; see with_retries.
    retry_levels: tuple[faust.TopicT, ...] = ()

    async def run(self, events: AsyncIterator[Any], handle: Handler) -> None:
        async for event in events:
            await self.process(event, handle)

    async def process(self, event: Any, handle: Handler) -> None:
        """An event from the stage's topic: its first try."""
        message = event.message
        first = Delivery(event.key, event.value, self.topic, message.partition, message.offset)
        await self.attempt(first, handle)

    async def run_retries(self, events: AsyncIterator[Any], handle: Handler) -> None:
        async for event in events:
            await self.retry(event, handle)

    async def retry(self, event: Any, handle: Handler) -> None:
        """An event from one of the stage's retry levels: wait until it is due, then try again.
        The wait holds only this level, whose later events are due later still."""
        try:
            scheduled = decode(event.value, RetryScheduled)
        except (MalformedEvent, UnknownEventVersion) as exc:
            message = event.message
            raw = Delivery(event.key, event.value, message.topic, message.partition, message.offset)
            await self._dead_letter(raw, exc)
            return
        wait_s = (scheduled.not_before - datetime.now(UTC)).total_seconds()
        if wait_s > 0:
            await asyncio.sleep(wait_s)
        await self.attempt(Delivery.from_retry(scheduled), handle)

    async def attempt(self, delivery: Delivery, handle: Handler) -> None:
        with metrics.track_event(self.name):  # duration, in flight, processed or failed
            try:
                await handle(delivery.key, delivery.value)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                metrics.failed(self.name, metrics.reason_of(exc))
                await self._failed(delivery, exc)
                return
        self._succeeded(delivery)

    def _succeeded(self, delivery: Delivery) -> None:
        if delivery.attempt > 1:
            log.info(
                "%s: %s@%s/%s succeeded on try %d (first failure: %s)",
                self.name,
                delivery.video_id,
                delivery.partition,
                delivery.offset,
                delivery.attempt,
                delivery.first_reason,
            )

    async def _failed(self, delivery: Delivery, exc: Exception) -> None:
        step = next_step(self.policy, delivery.attempt, is_transient(exc))
        if isinstance(step, RetryStep):
            await self._schedule_retry(delivery, exc, step)
        else:
            await self._dead_letter(delivery, exc)

    async def _schedule_retry(self, delivery: Delivery, exc: Exception, step: RetryStep) -> None:
        now = datetime.now(UTC)
        delay_s = self.policy.delay_s(step.retry, random.random())  # noqa: S311 - jitter
        envelope = retry_scheduled(
            stage=self.name,
            delivery=delivery,
            error=exc,
            now=now,
            not_before=now + timedelta(seconds=delay_s),
        )
        target = self.retry_levels[step.level - 1]
        log.warning(
            "%s: %s@%s/%s failed on try %d of %d (%s: %s); again in %.1fs via %s",
            self.name,
            delivery.video_id,
            delivery.partition,
            delivery.offset,
            delivery.attempt,
            self.policy.attempts,
            type(exc).__name__,
            envelope.reason,
            delay_s,
            target.get_topic_name(),
        )
        await target.send(key=delivery.key, value=encode(envelope))

    async def _dead_letter(self, delivery: Delivery, exc: Exception) -> None:
        letter = dead_letter(stage=self.name, delivery=delivery, error=exc)
        log.error(
            "%s: dead-lettered %s@%s/%s after %d tr%s: %s",
            self.name,
            letter.video_id,
            delivery.partition,
            delivery.offset,
            letter.attempts,
            "y" if letter.attempts == 1 else "ies",
            letter.reason,
        )
        await self.dead_letters.send(key=delivery.key, value=encode(letter))
        if self.report_job_failure and letter.video_id != "unknown":
            status = video_failed(letter.video_id, self.name, letter.reason)
            await self.graph_updates.send(key=delivery.key, value=encode(status))


def with_retries(stage: Stage, app: faust.App, settings: Settings, handle: Handler) -> Stage:
    """``stage`` with its retry levels (``settings``' policy for it), and one agent per level
    that tries the level's events again with ``handle`` when they are due. Call it once per
    stage, before the app starts, and run the stage's own agent with the stage it returns."""
    policy = policy_for(settings, stage.name)
    levels = retry_topics(app, stage.topic, policy.levels)
    retrying = replace(stage, policy=policy, retry_levels=levels)
    agent_name = stage.name.replace("-", "_")
    for level, topic in enumerate(retrying.retry_levels, start=1):
        agent = _retry_agent(retrying, handle, f"{agent_name}_retry{level}")
        app.agent(topic, name=f"vip.{agent_name}.retry{level}")(agent)
    return retrying


def _retry_agent(
    stage: Stage, handle: Handler, label: str
) -> Callable[[faust.StreamT], Awaitable[None]]:
    async def retry_when_due(stream: faust.StreamT) -> None:
        await stage.run_retries(stream.events(), handle)

    retry_when_due.__qualname__ = label  # what Faust's logs call the agent
    return retry_when_due
