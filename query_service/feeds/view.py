"""The feeds view: every feed's registration and latest status, read from the compacted
``feeds`` and ``feeds.status`` topics.

A topic follower (agents/shared/topic_follower) reads every partition of both from its start
and then follows them. Like the
jobs view it joins no consumer group, so every API replica holds every feed and answers the
same. Until it has read up to the ends the topics had when it started, it says it is loading
rather than answer "no such feed". A replica that wrote a record waits until it has read it
back (:meth:`FeedsView.wait_until_read`), so a client sees its own writes.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from agents.shared.topic_follower import TopicFollower
from streams.records import FeedRegistered, FeedStatusChanged
from vip.feeds.log import FeedTopics, read_record

Feed = tuple[FeedRegistered, FeedStatusChanged | None]


class FeedsView:
    def __init__(self, bootstrap: str, names: FeedTopics = FeedTopics()) -> None:  # noqa: B008
        self._registry_topic = names.registry
        self._status_topic = names.status
        self._feeds: dict[str, FeedRegistered] = {}
        self._statuses: dict[str, FeedStatusChanged] = {}
        self._read_to: dict[tuple[str, int], int] = {}
        self._changed = threading.Condition()
        self._follower = TopicFollower(
            bootstrap, (names.registry, names.status), self._apply, "beginning", "feeds-view"
        )

    # Life cycle ------------------------------------------------------------------------------
    def start(self) -> None:
        """Start reading in a daemon thread; returns at once (Kafka may be down for now)."""
        self._follower.start()

    def close(self, timeout_s: float = 10.0) -> None:
        self._follower.close(timeout_s)

    @property
    def loaded(self) -> bool:
        return self._follower.caught_up

    @property
    def last_error(self) -> str | None:
        return self._follower.last_error

    # Reads -----------------------------------------------------------------------------------
    def get(self, feed_id: str) -> Feed | None:
        with self._changed:
            registration = self._feeds.get(feed_id)
            return None if registration is None else (registration, self._statuses.get(feed_id))

    def status(self, feed_id: str) -> FeedStatusChanged | None:
        """The latest status a runner gave the feed, registered or not (a deleted feed's last
        status says how it stopped)."""
        with self._changed:
            return self._statuses.get(feed_id)

    def page(self, skip: int = 0, limit: int = 50) -> tuple[list[Feed], int]:
        """Feeds, most recently registered first, and how many there are."""
        with self._changed:
            feeds = [(r, self._statuses.get(f)) for f, r in self._feeds.items()]
        feeds.sort(key=lambda feed: (feed[0].occurred_at, feed[0].video_id), reverse=True)
        return feeds[skip : skip + limit], len(feeds)

    def wait_until_read(self, topic: str, partition: int, offset: int, timeout_s: float) -> bool:
        """Wait until the record at ``offset`` has been read (and applied)."""
        with self._changed:
            return self._changed.wait_for(
                lambda: self._read_to.get((topic, partition), 0) > offset, timeout_s
            )

    # The follower's thread -------------------------------------------------------------------
    def _apply(self, messages: Sequence[Any]) -> None:
        with self._changed:
            for message in messages:
                topic = message.topic()
                self._read_to[(topic, message.partition())] = message.offset() + 1
                if topic == self._registry_topic:
                    self._apply_registration(message)
                else:
                    self._apply_status(message)
            self._changed.notify_all()

    def _apply_registration(self, message: Any) -> None:
        read = read_record(message.key(), message.value(), FeedRegistered)
        if read is None:
            return
        feed_id, record = read
        if record is None:
            self._feeds.pop(feed_id, None)
        else:
            self._feeds[feed_id] = record

    def _apply_status(self, message: Any) -> None:
        read = read_record(message.key(), message.value(), FeedStatusChanged)
        if read is None:
            return
        feed_id, status = read
        if status is None:
            self._statuses.pop(feed_id, None)
        else:
            self._statuses[feed_id] = status
