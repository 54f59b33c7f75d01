"""Retries and dead letters, the pure parts: the backoff schedule, where a failed try goes, the
records a failure becomes, and the stage loop routing them (with in-memory topics)."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import grpc
import orjson
import pytest
from geventhttpclient.response import HTTPConnectionClosed
from neo4j.exceptions import ServiceUnavailable
from pymilvus.exceptions import MilvusException

from agents.shared.errors import InferenceRejected, InferenceUnavailable
from agents.shared.failures import Delivery, dead_letter, is_transient, retry_scheduled
from agents.shared.retries import DEAD_LETTER, RetryPolicy, RetryStep, next_step, policy_for
from agents.shared.retries import retry_levels as levels_needed
from agents.shared.stage import Stage
from streams import topics
from streams.errors import MalformedEvent
from streams.records import DeadLettered, GraphUpdated, RetryScheduled, decode, encode
from vip.dlq import Letter, parse_since, select
from vip.settings import Settings

NOW = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)


# The schedule -------------------------------------------------------------------------------
def test_each_retry_waits_twice_as_long_as_the_one_before_until_the_cap():
    policy = RetryPolicy(attempts=8, backoff_s=5, max_backoff_s=30)
    assert [policy.ceiling_s(n) for n in range(1, 8)] == [5, 10, 20, 30, 30, 30, 30]


def test_jitter_keeps_a_wait_between_half_and_all_of_its_ceiling():
    policy = RetryPolicy(attempts=4, backoff_s=2, max_backoff_s=60)
    assert policy.delay_s(3, 0.0) == 4.0
    assert policy.delay_s(3, 1.0) == 8.0
    draws = [policy.delay_s(2, random.Random(seed).random()) for seed in range(200)]
    assert all(2.0 <= d <= 4.0 for d in draws)
    assert max(draws) - min(draws) > 1.5  # spread out, not one instant for every event


def test_a_policy_is_refused_when_it_cannot_try_at_all():
    with pytest.raises(ValueError, match="attempts must be at least 1, got 0"):
        RetryPolicy(attempts=0)
    with pytest.raises(ValueError, match="jitter must be in"):
        RetryPolicy().delay_s(1, 1.5)


def test_a_policy_needs_one_level_per_retry_until_its_wait_reaches_the_cap():
    assert RetryPolicy(attempts=1).levels == 0
    assert RetryPolicy(attempts=3, backoff_s=5, max_backoff_s=60).levels == 2
    assert RetryPolicy(attempts=12, backoff_s=5, max_backoff_s=30).levels == 4
    assert RetryPolicy(attempts=5, backoff_s=10, max_backoff_s=3).levels == 1


# Routing ------------------------------------------------------------------------------------
def test_a_transient_failure_goes_to_the_level_of_its_retry_until_the_tries_run_out():
    policy = RetryPolicy(attempts=3)
    assert next_step(policy, 1, transient=True) == RetryStep(retry=1, level=1)
    assert next_step(policy, 2, transient=True) == RetryStep(retry=2, level=2)
    assert next_step(policy, 3, transient=True) == DEAD_LETTER


def test_retries_past_the_cap_share_the_last_level():
    policy = RetryPolicy(attempts=12, backoff_s=5, max_backoff_s=30)
    assert next_step(policy, 9, transient=True) == RetryStep(retry=9, level=4)


def test_a_permanent_failure_is_dead_lettered_on_its_first_try():
    assert next_step(RetryPolicy(attempts=3), 1, transient=False) == DEAD_LETTER


@pytest.mark.parametrize(
    "error",
    [
        InferenceUnavailable("Triton unreachable"),
        ConnectionRefusedError(111, "refused"),
        TimeoutError("slow"),
        HTTPConnectionClosed("connection closed."),
        ServiceUnavailable("neo4j down"),
        MilvusException(
            code=grpc.StatusCode.UNAVAILABLE, message="Retry run out of 75 retry times"
        ),
        MilvusException(code=2, message="Fail connecting to server on 127.0.0.1:19530"),
    ],
)
def test_unavailable_or_slow_dependencies_are_transient(error: Exception):
    assert is_transient(error)


@pytest.mark.parametrize(
    "error",
    [
        MalformedEvent("value is not JSON"),
        InferenceRejected("bad image"),
        ValueError("no such file"),
        MilvusException(code=1100, message="invalid parameter"),
    ],
)
def test_bad_input_is_permanent(error: Exception):
    assert not is_transient(error)


def test_settings_override_the_policy_per_stage_and_topics_cover_the_largest():
    settings = Settings(
        retry_attempts=3,
        retry_backoff_s=5,
        retry_by_stage={"analysis": {"attempts": 6, "backoff_s": 1}},
    )
    assert policy_for(settings, "analysis") == RetryPolicy(6, 1.0, 60.0)
    assert policy_for(settings, "graph") == RetryPolicy(3, 5.0, 60.0)
    assert levels_needed(settings) == 5
    assert topics.retry_topics(topics.CHUNKS, 2) == ("chunks.retry.1", "chunks.retry.2")
    every = topics.all_topics(2)
    assert {"videos.uploaded.retry.2", "graph.updates.dlq", "dlq.replays"} <= set(every)
    assert "videos.uploaded.retry.3" not in every


def test_per_stage_retry_settings_are_read_from_json_in_the_environment(monkeypatch):
    monkeypatch.setenv("VIP_RETRY_BY_STAGE", '{"graph-sink": {"max_backoff_s": 20}}')
    settings = Settings()
    assert policy_for(settings, "graph-sink").max_backoff_s == 20


# Records ------------------------------------------------------------------------------------
def _delivery(value: bytes = b'{"type": "ChunkCut"}', **fields: Any) -> Delivery:
    return Delivery(b"vid123", value, topics.CHUNKS, 1, 42, **fields)


def test_a_dead_letter_carries_reason_type_tries_origin_and_the_original_bytes():
    letter = dead_letter(stage="analysis", delivery=_delivery(attempt=3), error=TimeoutError("x"))
    assert (letter.video_id, letter.stage, letter.reason) == ("vid123", "analysis", "x")
    assert letter.error_type == "builtins.TimeoutError"
    assert letter.attempts == 3
    assert (letter.original_topic, letter.original_partition, letter.original_offset) == (
        "chunks",
        1,
        42,
    )
    assert letter.original_key == "vid123"
    assert decode(encode(letter), DeadLettered).original_value() == b'{"type": "ChunkCut"}'


def test_bytes_that_are_not_utf8_survive_a_dead_letter_exactly():
    raw = b"\xff\x00binary\xfe"
    letter = dead_letter(stage="chunking", delivery=_delivery(raw), error=MalformedEvent("bad"))
    assert letter.payload_encoding == "base64"
    assert decode(encode(letter), DeadLettered).original_value() == raw


def test_a_retried_event_keeps_its_first_failure_and_counts_its_tries():
    first = retry_scheduled(
        stage="analysis",
        delivery=_delivery(),
        error=InferenceUnavailable("down"),
        now=NOW,
        not_before=NOW + timedelta(seconds=5),
    )
    assert (first.attempts, first.first_failed_at, first.first_reason) == (1, NOW, "down")
    again = Delivery.from_retry(decode(encode(first), RetryScheduled))
    assert (again.key, again.value, again.offset, again.attempt) == (
        b"vid123",
        b'{"type": "ChunkCut"}',
        42,
        2,
    )
    later = NOW + timedelta(seconds=9)
    second = retry_scheduled(
        stage="analysis",
        delivery=again,
        error=InferenceUnavailable("still down"),
        now=later,
        not_before=later,
    )
    assert (second.attempts, second.first_failed_at, second.reason) == (2, NOW, "still down")


# The stage loop, on in-memory topics ---------------------------------------------------------
@dataclass
class MemoryTopic:
    name: str

    def __post_init__(self) -> None:
        self.sent: list[tuple[bytes | None, bytes]] = []

    def get_topic_name(self) -> str:
        return self.name

    async def send(self, *, key: bytes | None, value: bytes) -> None:
        self.sent.append((key, value))


def _stage(attempts: int = 3) -> Stage:
    return Stage(
        name="analysis",
        topic=topics.CHUNKS,
        dead_letters=MemoryTopic("chunks.dlq"),
        graph_updates=MemoryTopic("graph.updates"),
        policy=RetryPolicy(attempts=attempts, backoff_s=1, max_backoff_s=2),
        retry_levels=tuple(MemoryTopic(f"chunks.retry.{n}") for n in (1, 2)),
    )


def _event(value: bytes, topic: str = topics.CHUNKS, offset: int = 7) -> Any:
    message = SimpleNamespace(topic=topic, partition=0, offset=offset)
    return SimpleNamespace(key=b"vid123", value=value, message=message)


def _failing(error: Exception):
    async def handle(key: bytes | None, value: bytes | None) -> None:
        raise error

    return handle


def _sent(topic: Any) -> list[dict[str, Any]]:
    return [orjson.loads(value) for _, value in topic.sent]


def test_a_transient_failure_leaves_the_partition_for_the_first_retry_level():
    stage = _stage()
    asyncio.run(stage.process(_event(b"{}"), _failing(InferenceUnavailable("down"))))

    [envelope] = _sent(stage.retry_levels[0])
    assert envelope["type"] == "RetryScheduled" and envelope["attempts"] == 1
    assert envelope["original_offset"] == 7 and envelope["payload"] == "{}"
    wait = datetime.fromisoformat(envelope["not_before"]) - datetime.fromisoformat(
        envelope["first_failed_at"]
    )
    assert timedelta(seconds=0.5) <= wait <= timedelta(seconds=1)
    assert stage.dead_letters.sent == [] and stage.graph_updates.sent == []


@pytest.mark.allow_error_logs
def test_the_last_try_of_a_retried_event_is_dead_lettered_with_its_original_offset():
    stage = _stage()
    asyncio.run(stage.process(_event(b"{}"), _failing(InferenceUnavailable("down"))))
    envelope = stage.retry_levels[0].sent[0][1]
    asyncio.run(stage.retry(_event(envelope, "chunks.retry.1", 0), _failing(TimeoutError("slow"))))
    envelope = stage.retry_levels[1].sent[0][1]
    asyncio.run(stage.retry(_event(envelope, "chunks.retry.2", 0), _failing(TimeoutError("slow"))))

    [letter] = _sent(stage.dead_letters)
    assert (letter["attempts"], letter["original_topic"], letter["original_offset"]) == (
        3,
        "chunks",
        7,
    )
    assert (letter["reason"], letter["first_reason"]) == ("slow", "down")
    [status] = [decode(value, GraphUpdated) for _, value in stage.graph_updates.sent]
    assert status.nodes[0].props == {
        "status": "failed",
        "error": "slow",
        "failed_stage": "analysis",
    }


def test_a_retried_event_that_succeeds_sends_nothing_more():
    stage = _stage()
    asyncio.run(stage.process(_event(b"{}"), _failing(InferenceUnavailable("down"))))
    envelope = stage.retry_levels[0].sent[0][1]
    handled: list[tuple[bytes | None, bytes | None]] = []

    async def handle(key: bytes | None, value: bytes | None) -> None:
        handled.append((key, value))

    asyncio.run(stage.retry(_event(envelope, "chunks.retry.1", 0), handle))

    assert handled == [(b"vid123", b"{}")]
    assert stage.retry_levels[1].sent == [] and stage.dead_letters.sent == []


@pytest.mark.allow_error_logs
def test_a_permanent_failure_is_dead_lettered_at_once(caplog: pytest.LogCaptureFixture):
    stage = _stage()
    asyncio.run(stage.process(_event(b"nope"), _failing(MalformedEvent("value is not JSON"))))

    assert caplog.messages == ["analysis: dead-lettered vid123@0/7 after 1 try: value is not JSON"]
    [letter] = _sent(stage.dead_letters)
    assert (letter["attempts"], letter["error_type"]) == (1, "streams.errors.MalformedEvent")
    assert stage.retry_levels[0].sent == []


@pytest.mark.allow_error_logs
def test_an_unreadable_retry_envelope_is_dead_lettered_as_it_is():
    stage = _stage()
    asyncio.run(stage.retry(_event(b"garbage", "chunks.retry.1", 3), _failing(AssertionError())))

    [letter] = _sent(stage.dead_letters)
    assert (letter["original_topic"], letter["original_offset"]) == ("chunks.retry.1", 3)
    assert letter["payload"] == "garbage"


# `vip dlq` filters ---------------------------------------------------------------------------
def test_since_reads_a_duration_back_from_now_or_an_iso_time():
    assert parse_since("90s", NOW) == NOW - timedelta(seconds=90)
    assert parse_since("2h", NOW) == NOW - timedelta(hours=2)
    assert parse_since("2026-01-30T08:00:00", NOW) == datetime(2026, 1, 30, 8, tzinfo=UTC)
    with pytest.raises(ValueError, match="neither an ISO time"):
        parse_since("yesterday", NOW)


def test_letters_are_chosen_by_stage_time_and_video():
    def letter(stage: str, video: str, age_s: float) -> Letter:
        record = dead_letter(
            stage=stage,
            delivery=Delivery(video.encode(), b"{}", topics.CHUNKS, 0, 1),
            error=ValueError("x"),
        ).model_copy(update={"occurred_at": NOW - timedelta(seconds=age_s)})
        return Letter(record, "chunks.dlq", 0, 0)

    letters = [
        letter("analysis", "a", 10),
        letter("chunking", "a", 10),
        letter("analysis", "b", 99),
    ]
    chosen = select(letters, stage="analysis", since=NOW - timedelta(seconds=60))
    assert [(x.record.stage, x.record.video_id) for x in chosen] == [("analysis", "a")]
    assert [x.record.stage for x in select(letters, video="a")] == ["analysis", "chunking"]
