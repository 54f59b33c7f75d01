"""`vip dlq list | replay`: read the dead-letter topics, and send letters' original events back.

Every ``<topic>.dlq`` is read from its first retained offset to the end it had when the command
began. A replay republishes each chosen letter's original key and value to its original topic
(a stage's retry levels never appear there: a letter names the topic its event first came from)
and then records one ``DeadLetterReplayed`` per letter on ``dlq.replays``. Letters recorded
there are skipped by the next replay, whatever filters it uses; a letter whose event fails again
becomes a new letter, which a later replay sends again. The marks are written after the
originals are delivered, so a replay that dies in between sends those originals twice at worst
(at least once; every sink upserts).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from confluent_kafka import Consumer, KafkaException, Message, Producer, TopicPartition

from agents.shared.failures import video_resumed
from streams import topics
from streams.errors import MalformedEvent, UnknownEventVersion
from streams.records import DeadLettered, DeadLetterReplayed, decode, encode
from vip.settings import Settings

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_POLL_S = 5.0


class DlqError(Exception):
    """The dead-letter topics could not be read, or a replay could not be delivered."""


@dataclass(frozen=True)
class Letter:
    """A dead letter and where it lies; ``replayed`` once a replay has sent it back."""

    record: DeadLettered
    topic: str
    partition: int
    offset: int
    replayed: bool = False

    def as_json(self) -> dict[str, Any]:
        r = self.record
        return {
            "letter_id": r.event_id,
            "time": r.occurred_at.isoformat(),
            "stage": r.stage,
            "video_id": r.video_id,
            "reason": r.reason,
            "error_type": r.error_type,
            "attempts": r.attempts,
            "original_topic": r.original_topic,
            "original_partition": r.original_partition,
            "original_offset": r.original_offset,
            "original_key": r.original_key,
            "first_failed_at": r.first_failed_at.isoformat() if r.first_failed_at else None,
            "first_reason": r.first_reason,
            "payload_bytes": len(r.original_value()),
            "dlq_topic": self.topic,
            "dlq_partition": self.partition,
            "dlq_offset": self.offset,
            "replayed": self.replayed,
        }


@dataclass(frozen=True)
class Letters:
    letters: list[Letter]
    unreadable: int  # messages on a .dlq topic that are not DeadLettered records


def parse_since(text: str, now: datetime) -> datetime:
    """``--since``: an ISO 8601 time (UTC unless it names an offset) or a duration back from
    ``now`` such as ``90s``, ``15m``, ``2h``, ``3d``, ``1w``."""
    match = _DURATION.match(text)
    if match:
        return now - timedelta(seconds=float(match[1]) * _UNIT_S[match[2]])
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"--since {text!r} is neither an ISO time (2025-01-31T12:00:00) nor a duration "
            "(90s, 15m, 2h, 3d, 1w)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def select(
    letters: Iterable[Letter],
    *,
    stage: str | None = None,
    since: datetime | None = None,
    video: str | None = None,
) -> list[Letter]:
    return [
        letter
        for letter in letters
        if (stage is None or letter.record.stage == stage)
        and (since is None or letter.record.occurred_at >= since)
        and (video is None or letter.record.video_id == video)
    ]


def read_letters(settings: Settings) -> Letters:
    """Every dead letter on every ``.dlq`` topic, oldest first, marked when already replayed."""
    replayed = {
        mark.letter_id
        for _, value in _read_to_end(settings, [topics.DLQ_REPLAYS])
        if (mark := _decoded(value, DeadLetterReplayed)) is not None
    }
    letters: list[Letter] = []
    unreadable = 0
    for message, value in _read_to_end(settings, list(topics.dead_letter_topics())):
        record = _decoded(value, DeadLettered)
        if record is None:
            unreadable += 1
            continue
        letters.append(
            Letter(
                record,
                str(message.topic()),
                int(message.partition() or 0),
                int(message.offset() or 0),
                replayed=record.event_id in replayed,
            )
        )
    letters.sort(key=lambda letter: letter.record.occurred_at)
    return Letters(letters, unreadable)


def replay(settings: Settings, letters: Sequence[Letter]) -> list[Letter]:
    """Send the letters' original events back, skipping those already replayed; returns the
    letters sent. Jobs that had failed are marked processing again first, so that they
    complete once their events are through."""
    todo = [letter for letter in letters if not letter.replayed]
    if not todo:
        return []
    sender = _Sender(settings.kafka_bootstrap)
    resumed = sorted(
        {
            letter.record.video_id
            for letter in todo
            if letter.record.original_topic != topics.GRAPH_UPDATES
            and letter.record.video_id != "unknown"
        }
    )
    for video_id in resumed:
        sender.send(topics.GRAPH_UPDATES, video_id.encode(), encode(video_resumed(video_id)))
    for letter in todo:
        r = letter.record
        key = r.original_key.encode("utf-8") if r.original_key is not None else None
        sender.send(r.original_topic, key, r.original_value())
    sender.flush("the original events")
    for letter in todo:
        mark = DeadLetterReplayed(
            video_id=letter.record.video_id,
            letter_id=letter.record.event_id,
            dead_letter_topic=letter.topic,
            dead_letter_partition=letter.partition,
            dead_letter_offset=letter.offset,
            replayed_to=letter.record.original_topic,
        )
        sender.send(topics.DLQ_REPLAYS, mark.video_id.encode(), encode(mark))
    sender.flush("the replay marks")
    return todo


class _Sender:
    """A producer that says which message failed when a flush does not deliver them all."""

    def __init__(self, bootstrap: str, timeout_s: float = 30.0) -> None:
        self._timeout_s = timeout_s
        self._failures: list[str] = []
        self._producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "acks": "all",
                "enable.idempotence": True,
                "message.timeout.ms": int(timeout_s * 1000),
                "log_level": 3,
            }
        )

    def send(self, topic: str, key: bytes | None, value: bytes) -> None:
        def delivered(err: Any, _msg: Any) -> None:
            if err is not None:
                self._failures.append(f"{topic}: {err}")

        try:
            self._producer.produce(topic, key=key, value=value, on_delivery=delivered)
        except (KafkaException, BufferError) as exc:
            raise DlqError(f"could not publish to {topic}: {exc}") from exc

    def flush(self, what: str) -> None:
        remaining = self._producer.flush(self._timeout_s + 2)
        if remaining or self._failures:
            reason = self._failures[0] if self._failures else f"{remaining} not delivered"
            raise DlqError(f"replay failed while sending {what}: {reason}")


def _decoded(value: bytes | None, record: type[Any]) -> Any:
    try:
        return decode(value, record)
    except (MalformedEvent, UnknownEventVersion):
        return None


def _read_to_end(
    settings: Settings, names: Sequence[str]
) -> Iterator[tuple[Message, bytes | None]]:
    """Every message the topics hold now, each partition from its first retained offset."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"vip-dlq-{uuid.uuid4().hex}",  # never commits: leaves no trace
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "log_level": 3,
        }
    )
    try:
        ends: dict[tuple[str, int], int] = {}
        starts: list[TopicPartition] = []
        for name in names:
            metadata = consumer.list_topics(name, timeout=10).topics.get(name)
            if metadata is None or metadata.error is not None:
                continue  # not created yet: nothing was ever dead-lettered there
            for partition in sorted(metadata.partitions):
                low, high = consumer.get_watermark_offsets(TopicPartition(name, partition), 10)
                if high > low:
                    ends[(name, partition)] = high
                    starts.append(TopicPartition(name, partition, low))
        if not starts:
            return
        consumer.assign(starts)
        while ends:
            message = consumer.poll(_POLL_S)
            if message is None:
                raise DlqError(f"reading {sorted(ends)} stalled before their end offsets")
            if message.error():
                raise DlqError(f"reading the dead letters failed: {message.error()}")
            where = (str(message.topic()), int(message.partition() or 0))
            if where not in ends:
                continue
            if (message.offset() or 0) + 1 >= ends[where]:
                del ends[where]
            yield message, message.value()
    except KafkaException as exc:
        raise DlqError(f"cannot read from Kafka at {settings.kafka_bootstrap}: {exc}") from exc
    finally:
        consumer.close()


def format_table(letters: Sequence[Letter]) -> str:
    """One line per letter: time, stage, video, tries, where it came from, why, replayed."""
    header = (
        f"{'time (UTC)':<19}  {'stage':<10}  {'video':<18}  {'tries':>5}  "
        f"{'original offset':<24}  {'replayed':<8}  error"
    )
    lines = [header]
    for letter in letters:
        r = letter.record
        origin = f"{r.original_topic}[{r.original_partition}]@{r.original_offset}"
        lines.append(
            f"{r.occurred_at.astimezone(UTC):%Y-%m-%d %H:%M:%S}  {r.stage:<10}  "
            f"{r.video_id:<18}  {r.attempts:>5}  {origin:<24}  "
            f"{'yes' if letter.replayed else 'no':<8}  {r.error_type}: {_one_line(r.reason)}"
        )
    return "\n".join(lines)


def _one_line(text: str, limit: int = 160) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
