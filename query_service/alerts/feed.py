"""Raised alerts as this replica sees them: the ``alerts`` topic, followed from its end (no
consumer group: every replica serves every subscriber of its own), fanned out to the SSE
subscribers whose filters they pass."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from agents.alerts.public import alert_public
from agents.shared.topic_follower import TopicFollower
from streams import topics
from streams.errors import EventError
from streams.records import AlertRaised, decode

log = logging.getLogger(__name__)

QUEUE_SIZE = 1000


@dataclass(eq=False)
class Subscription:
    loop: asyncio.AbstractEventLoop
    feed_id: str | None
    rule_id: str | None
    queue: asyncio.Queue[dict[str, Any]] = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))
    dropped: int = 0

    def wants(self, alert: AlertRaised) -> bool:
        return (self.feed_id is None or alert.video_id == self.feed_id) and (
            self.rule_id is None or alert.rule_id == self.rule_id
        )

    def offer(self, item: dict[str, Any]) -> None:
        """On the subscriber's loop: a subscriber that stopped reading loses alerts, not
        memory."""
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self.dropped += 1


class AlertFeed:
    def __init__(self, bootstrap: str, topic: str = topics.ALERTS) -> None:
        self._subscriptions: set[Subscription] = set()
        self._lock = threading.Lock()
        self._follower = TopicFollower(bootstrap, topic, self._read, "end", "alert-feed")

    def start(self) -> None:
        self._follower.start()

    def close(self) -> None:
        self._follower.close()

    @property
    def ready(self) -> bool:
        """Whether alerts raised from now on reach subscribers."""
        return self._follower.assigned

    def wait_ready(self, timeout_s: float) -> bool:
        return self._follower.wait_assigned(timeout_s)

    @property
    def last_error(self) -> str | None:
        return self._follower.last_error

    def subscribe(self, feed_id: str | None, rule_id: str | None) -> Subscription:
        subscription = Subscription(asyncio.get_running_loop(), feed_id, rule_id)
        with self._lock:
            self._subscriptions.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            self._subscriptions.discard(subscription)
        if subscription.dropped:
            log.warning("alert feed: a slow subscriber lost %d alerts", subscription.dropped)

    def _read(self, messages: Sequence[Any]) -> None:
        for message in messages:
            try:
                alert = decode(message.value(), AlertRaised)
            except EventError as exc:
                log.warning("alert feed: skipped an unreadable alert: %s", exc)
                continue
            with self._lock:
                wanting = [s for s in self._subscriptions if s.wants(alert)]
            if not wanting:
                continue
            public = alert_public(alert)
            for subscription in wanting:
                try:
                    subscription.loop.call_soon_threadsafe(subscription.offer, public)
                except RuntimeError:  # its loop is closed: the request is gone
                    self.unsubscribe(subscription)
