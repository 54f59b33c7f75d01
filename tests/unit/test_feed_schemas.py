"""What POST /v1/feeds takes, and how a feed and its runner's status are shown."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from query_service.feeds.schemas import FeedCreate, feed_public, new_feed_id
from streams.records import FeedRegistered, FeedStatusChanged, decode, encode

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def registration(event_id: str = "reg-2") -> FeedRegistered:
    return FeedRegistered(
        video_id="lobby",
        event_id=event_id,
        occurred_at=T0,
        source="rtsp://admin:hunter2@camera.example.com/s",
        segment_seconds=4.0,
        name="Lobby",
        labels={"site": "hq"},
    )


def status(registration_id: str) -> FeedStatusChanged:
    return FeedStatusChanged(
        video_id="lobby",
        occurred_at=T0,
        registration_id=registration_id,
        state="running",
        segments_published=7,
        last_segment_at=T0,
        runner="host-a:1",
    )


def test_a_feed_without_a_status_is_registered_and_its_password_is_masked():
    shown = feed_public(registration(), None)

    assert shown.status == "registered"
    assert shown.source == "rtsp://admin:***@camera.example.com/s"
    assert (shown.feed_id, shown.name, shown.labels, shown.segments_published) == (
        "lobby",
        "Lobby",
        {"site": "hq"},
        0,
    )


def test_a_feed_shows_its_runners_status():
    shown = feed_public(registration(), status("reg-2"))

    assert (shown.status, shown.segments_published, shown.runner) == ("running", 7, "host-a:1")


def test_a_status_left_from_an_earlier_registration_of_the_id_is_not_shown():
    shown = feed_public(registration(), status("reg-1"))

    assert (shown.status, shown.segments_published, shown.runner) == ("registered", 0, None)


def test_generated_feed_ids_are_f_and_16_hex_digits():
    assert re.fullmatch(r"f[0-9a-f]{16}", new_feed_id())


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"source": "rtsp://h/s", "feed_id": "v0123456789abcdef"}, "uploaded video's id"),
        ({"source": "rtsp://h/s", "feed_id": "a/b"}, "String should match pattern"),
        ({"source": "rtsp://h/s", "feed_id": "cam:1"}, "String should match pattern"),
        ({"source": "rtsp://h/s", "feed_id": ".."}, "is not a feed id"),
        ({"source": "rtsp://h/s", "segment_seconds": "5"}, "Input should be a valid number"),
        ({"source": "rtsp://h/s", "segment_seconds": 0.5}, "greater than or equal to 1"),
        ({"source": "rtsp://h/s", "labels": {"Site": "hq"}}, "String should match pattern"),
        ({"source": "rtsp://h/s", "owner": "me"}, "Extra inputs are not permitted"),
        ({}, "Field required"),
    ],
)
def test_invalid_feeds_are_refused_with_the_reason(body: dict[str, object], message: str):
    with pytest.raises(ValidationError, match=message):
        FeedCreate.model_validate(body)


def test_feed_records_round_trip_through_their_topic_encoding():
    record, said = registration(), status("reg-2")

    assert decode(encode(record), FeedRegistered) == record
    assert decode(encode(said), FeedStatusChanged) == said
