"""The feed registry's two compacted topics as records: ``feeds`` (FeedRegistered per feed id,
a tombstone deletes the feed) and ``feeds.status`` (FeedStatusChanged per feed id), read by
the API's view and the runner, written by the API (registrations) and the runners (statuses)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from agents.shared.delivery import NotDelivered, deliver, keyed_producer
from streams import topics
from streams.errors import EventError
from streams.records import E, Event, decode, encode
from vip.feeds.errors import RegistryUnavailable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FeedTopics:
    """The topics the registry uses (tests give each run its own)."""

    registry: str = topics.FEEDS
    status: str = topics.FEED_STATUS


def read_record(
    key: bytes | None, value: bytes | None, record: type[E]
) -> tuple[str, E | None] | None:
    """(feed id, record) of one message, the record None for a tombstone; None when the
    message is unreadable (logged and skipped: one bad record must not stop a reader)."""
    if not key:
        return None
    feed_id = key.decode("utf-8", errors="replace")
    if value is None:
        return feed_id, None
    try:
        return feed_id, decode(value, record)
    except EventError as exc:
        log.warning("feeds: skipped an unreadable %s of %s: %s", record.__name__, feed_id, exc)
        return None


class RecordWriter:
    """Writes records (or tombstones) keyed by feed id and waits until Kafka has each one;
    thread-safe. RegistryUnavailable says why a write did not happen."""

    def __init__(self, bootstrap: str, timeout_s: float = 10.0) -> None:
        self._bootstrap = bootstrap
        self._timeout_s = timeout_s
        self._producer = keyed_producer(bootstrap, timeout_s)

    def write(self, topic: str, feed_id: str, event: Event | None) -> tuple[int, int]:
        """Send one record (None: a tombstone); its (partition, offset) once stored."""
        value = encode(event) if event is not None else None
        try:
            return deliver(self._producer, topic, feed_id, value, self._timeout_s + 2)
        except NotDelivered as exc:
            reason = f"cannot write to {topic} at {self._bootstrap}: {exc}"
            raise RegistryUnavailable(reason) from exc

    def close(self) -> None:
        self._producer.flush(self._timeout_s)
